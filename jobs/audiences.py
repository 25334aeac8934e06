"""spark-submit entry for `audiences` (build every audience into gold.audience_members):

spark-submit jobs/audiences.py --env cluster [--as-of DATE] [--run-id ID]
"""

from __future__ import annotations

import sys

from audiencelake.cli.main import main

if __name__ == "__main__":
    main(["audiences", *sys.argv[1:]])
