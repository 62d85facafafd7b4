"""``python -m cbagpu`` = the ``cbagpu`` command."""

import sys

from cbagpu.cli import main

sys.exit(main())
