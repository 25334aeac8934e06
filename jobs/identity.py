"""spark-submit entry for `identity`: `spark-submit jobs/identity.py --env cluster [--as-of DATE] [--run-id ID]`."""

from __future__ import annotations

import sys

from audiencelake.cli.main import main

if __name__ == "__main__":
    main(["identity", *sys.argv[1:]])
