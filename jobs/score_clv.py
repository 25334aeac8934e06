"""spark-submit entry for `score_clv` (score with the clv model's champion):

spark-submit jobs/score_clv.py --env cluster [--as-of DATE] [--run-id ID]
"""

from __future__ import annotations

import sys

from audiencelake.cli.main import main

if __name__ == "__main__":
    main(["score_clv", *sys.argv[1:]])
