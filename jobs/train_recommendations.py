"""spark-submit entry for `train_recommendations` (train the recommendations model and register it):

spark-submit jobs/train_recommendations.py --env cluster [--as-of DATE] [--run-id ID]
"""

from __future__ import annotations

import sys

from audiencelake.cli.main import main

if __name__ == "__main__":
    main(["train_recommendations", *sys.argv[1:]])
