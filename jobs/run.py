"""spark-submit entry for `run`: `spark-submit jobs/run.py --env cluster [--as-of DATE] [--run-id ID]`."""

from __future__ import annotations

import sys

from audiencelake.cli.main import main

if __name__ == "__main__":
    main(["run", *sys.argv[1:]])
