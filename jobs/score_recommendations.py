"""spark-submit entry for `score_recommendations` (score with the recommendations model's champion):

spark-submit jobs/score_recommendations.py --env cluster [--as-of DATE] [--run-id ID]
"""

from __future__ import annotations

import sys

from audiencelake.cli.main import main

if __name__ == "__main__":
    main(["score_recommendations", *sys.argv[1:]])
