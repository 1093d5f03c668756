"""`python -m engine ...` is `cift-engine ...`."""

import sys

from engine.cli import main

sys.exit(main())
