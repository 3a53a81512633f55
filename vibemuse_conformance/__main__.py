"""``python -m vibemuse_conformance``: the same as the ``vibemuse-conformance`` command."""

from vibemuse_conformance.cli import main

raise SystemExit(main())
