"""spark-submit entry for `train_clv` (train the clv model and register it):

spark-submit jobs/train_clv.py --env cluster [--as-of DATE] [--run-id ID]
"""

from __future__ import annotations

import sys

from audiencelake.cli.main import main

if __name__ == "__main__":
    main(["train_clv", *sys.argv[1:]])
