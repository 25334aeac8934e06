"""spark-submit entry for `score_propensity` (score with the propensity model's champion):

spark-submit jobs/score_propensity.py --env cluster [--as-of DATE] [--run-id ID]
"""

from __future__ import annotations

import sys

from audiencelake.cli.main import main

if __name__ == "__main__":
    main(["score_propensity", *sys.argv[1:]])
