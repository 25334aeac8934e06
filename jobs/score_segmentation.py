"""spark-submit entry for `score_segmentation` (score with the segmentation model's champion):

spark-submit jobs/score_segmentation.py --env cluster [--as-of DATE] [--run-id ID]
"""

from __future__ import annotations

import sys

from audiencelake.cli.main import main

if __name__ == "__main__":
    main(["score_segmentation", *sys.argv[1:]])
