"""spark-submit entry for `attribution` (journeys and channel attribution):

spark-submit jobs/attribution.py --env cluster [--as-of DATE] [--run-id ID]
"""

from __future__ import annotations

import sys

from audiencelake.cli.main import main

if __name__ == "__main__":
    main(["attribution", *sys.argv[1:]])
