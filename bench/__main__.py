"""`python -m bench` is `make bench`: the side-by-side run against Eve (bench/harness.py)."""

import sys

from .harness import main

sys.exit(main())
