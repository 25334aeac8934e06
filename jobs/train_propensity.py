"""spark-submit entry for `train_propensity` (train the propensity model and register it):

spark-submit jobs/train_propensity.py --env cluster [--as-of DATE] [--run-id ID]
"""

from __future__ import annotations

import sys

from audiencelake.cli.main import main

if __name__ == "__main__":
    main(["train_propensity", *sys.argv[1:]])
