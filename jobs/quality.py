"""spark-submit entry for `quality`: `spark-submit jobs/quality.py --env cluster [--as-of DATE] [--run-id ID]`."""

from __future__ import annotations

import sys

from audiencelake.cli.main import main

if __name__ == "__main__":
    main(["quality", *sys.argv[1:]])
