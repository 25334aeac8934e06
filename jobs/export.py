"""spark-submit entry for `export` (write the run's audiences to their destinations):

spark-submit jobs/export.py --env cluster [--as-of DATE] [--run-id ID]
"""

from __future__ import annotations

import sys

from audiencelake.cli.main import main

if __name__ == "__main__":
    main(["export", *sys.argv[1:]])
