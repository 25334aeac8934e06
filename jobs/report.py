"""spark-submit entry for `report`: `spark-submit jobs/report.py --env cluster [--as-of DATE] [--run-id ID]`."""

from __future__ import annotations

import sys

from audiencelake.cli.main import main

if __name__ == "__main__":
    main(["report", *sys.argv[1:]])
