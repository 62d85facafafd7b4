"""Entry point: ``python -m benchmarks {list,run} ...``."""

import sys

from benchmarks.harness import main

if __name__ == "__main__":
    sys.exit(main())
