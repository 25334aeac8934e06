"""spark-submit entry for `stream`: `spark-submit jobs/stream.py --env cluster --trigger processing_time`."""

from __future__ import annotations

import sys

from audiencelake.cli.main import main

if __name__ == "__main__":
    main(["stream", *sys.argv[1:]])
