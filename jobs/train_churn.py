"""spark-submit entry for `train_churn` (train the churn model and register it):

spark-submit jobs/train_churn.py --env cluster [--as-of DATE] [--run-id ID]
"""

from __future__ import annotations

import sys

from audiencelake.cli.main import main

if __name__ == "__main__":
    main(["train_churn", *sys.argv[1:]])
