import sys

from vibemuse.cli import main

sys.exit(main())
