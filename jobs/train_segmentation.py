"""spark-submit entry for `train_segmentation` (train the segmentation model and register it):

spark-submit jobs/train_segmentation.py --env cluster [--as-of DATE] [--run-id ID]
"""

from __future__ import annotations

import sys

from audiencelake.cli.main import main

if __name__ == "__main__":
    main(["train_segmentation", *sys.argv[1:]])
