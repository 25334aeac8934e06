"""spark-submit entry for `profile`: `spark-submit jobs/profile_job.py --env cluster [--as-of DATE] [--run-id ID]`.

Not `jobs/profile.py`: spark-submit puts the script's folder first on the import path, where a `profile.py` would
shadow the standard library's `profile`, which PySpark imports (through cProfile).
"""

from __future__ import annotations

import sys

from audiencelake.cli.main import main

if __name__ == "__main__":
    main(["profile", *sys.argv[1:]])
