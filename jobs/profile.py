"""spark-submit entry for `profile`: `spark-submit jobs/profile.py --env cluster [--as-of DATE] [--run-id ID]`."""

from __future__ import annotations

import sys

from audiencelake.cli import main

if __name__ == "__main__":
    main(["profile", *sys.argv[1:]])
