"""spark-submit entry for `measure` (measure uplift against the holdouts):

spark-submit jobs/measure.py --env cluster [--as-of DATE] [--run-id ID]
"""

from __future__ import annotations

import sys

from audiencelake.cli.main import main

if __name__ == "__main__":
    main(["measure", *sys.argv[1:]])
