"""Training (and scoring) seconds per model on about ten million events.

    make bench-models     # or: .venv/bin/python benchmarks/models.py --users 1000 --days 120 --copies 30

A world is generated and ingested once, its silver tables copied `--copies` times with suffixed ids (as in
benchmarks/tags.py), the profiles the models need are built (run date, and the snapshots 30 and 60 days before),
then every model is trained and scored with conf/models.yaml. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date, timedelta

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

from audiencelake.core.runs import Run  # noqa: E402
from audiencelake.models.catalog import MODELS  # noqa: E402
from audiencelake.stages.declaration import StageContext  # noqa: E402
from audiencelake.stages.runner import run_stage  # noqa: E402
from audiencelake.tags.profile import build_profile  # noqa: E402
from worlds import amplified_world, timed, workdir, world_arguments  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    world_arguments(parser, users=1000)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    args = parser.parse_args()
    with workdir(args.workdir, "audiencelake-bench-models-") as work:
        world = amplified_world(args, work, (f"mlflow.tracking_uri=sqlite:///{work / 'mlflow.db'}",))
        lake = world.lake
        as_of = date(2026, 10, 31)
        for days_before in (0, 30, 60):
            day = as_of - timedelta(days=days_before)
            _, secs = timed(lambda day=day: build_profile(lake, Run.create(day, "bench")))
            print(f"profile as of {day}: {secs:.1f} s", flush=True)
        ctx = StageContext(lake, Run.create(as_of, "bench-models"), {})
        results = []
        for model in args.models:
            counts, train_s = timed(lambda model=model: run_stage(f"train_{model}", ctx))
            scored, score_s = timed(lambda model=model: run_stage(f"score_{model}", ctx))
            results.append((model, train_s, score_s, counts, scored["rows"]))
            print(
                f"  {model}: train {train_s:.1f} s {counts}, score {score_s:.1f} s ({scored['rows']:,} rows)",
                flush=True,
            )
        print(f"\n{'model':<18}{'train s':>10}{'score s':>10}{'rows':>12}  primary metric")
        for model, train_s, score_s, counts, scored_rows in results:
            metric = {k: v for k, v in counts.items() if k not in ("version", "promoted")}
            print(f"{model:<18}{train_s:>10.1f}{score_s:>10.1f}{scored_rows:>12,}  {metric}")
        world.spark.stop()


if __name__ == "__main__":
    main()
