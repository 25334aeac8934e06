"""spark-submit entry for `synth`: `spark-submit jobs/synth.py --env cluster [--as-of DATE] [--run-id ID]`."""

from __future__ import annotations

import sys

from audiencelake.cli.main import main

if __name__ == "__main__":
    main(["synth", *sys.argv[1:]])
