"""``python -m vibemuse.conformance``: runs the conformance suite (``vibemuse_conformance``), nothing else."""
from vibemuse_conformance.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
