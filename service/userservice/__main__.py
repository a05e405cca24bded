"""`python -m userservice ...` is `userservice ...`."""

import sys

from userservice.cli import main

sys.exit(main())
