"""spark-submit entry for `score_churn` (score with the churn model's champion):

spark-submit jobs/score_churn.py --env cluster [--as-of DATE] [--run-id ID]
"""

from __future__ import annotations

import sys

from audiencelake.cli.main import main

if __name__ == "__main__":
    main(["score_churn", *sys.argv[1:]])
