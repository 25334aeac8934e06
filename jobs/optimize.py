"""spark-submit entry for `optimize`: `spark-submit jobs/optimize.py --env cluster [--as-of DATE] [--run-id ID]`."""

from __future__ import annotations

import sys

from audiencelake.cli.main import main

if __name__ == "__main__":
    main(["optimize", *sys.argv[1:]])
