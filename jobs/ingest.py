"""spark-submit entry for `ingest`: `spark-submit jobs/ingest.py --env cluster [--as-of DATE] [--run-id ID]`."""

from __future__ import annotations

import sys

from audiencelake.cli.main import main

if __name__ == "__main__":
    main(["ingest", *sys.argv[1:]])
