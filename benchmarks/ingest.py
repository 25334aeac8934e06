"""Ingest throughput on about one million clickstream events, against a plain JSON -> Delta copy in the same run.

    make bench            # or: .venv/bin/python benchmarks/ingest.py --users 3200 --days 120

Prints rows per second for bronze (landing -> bronze) and silver (bronze -> silver: conform, hash, quality gate,
version resolution, MERGE, quarantine, audit), and the ratio of each to the baseline
`spark.read.json(files).write.format("delta")`. Nothing here is asserted: timings on shared machines are noisy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

from audiencelake.config import load_settings  # noqa: E402
from audiencelake.ingest.bronze import ingest_bronze  # noqa: E402
from audiencelake.ingest.silver import process_batch  # noqa: E402
from audiencelake.lake import Lake  # noqa: E402
from audiencelake.runs import Run  # noqa: E402
from audiencelake.session import build_session  # noqa: E402
from audiencelake.synth import WorldSpec, generate_world  # noqa: E402


def _timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3200)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder, removed after")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="audiencelake-bench-"))
    try:
        _, gen_s = _timed(lambda: generate_world(work, WorldSpec(users=args.users, days=args.days, seed=args.seed)))
        settings = load_settings("local", [f"lake.root={work / 'lake'}", f"lake.landing={work / 'landing'}"])
        spark = build_session(settings)
        spark.sparkContext.setLogLevel("ERROR")
        lake, run = Lake(spark, settings), Run.create()
        files = settings.source_path("clickstream")

        def baseline() -> int:
            spark.read.json(files).write.format("delta").mode("overwrite").save(str(work / "baseline"))
            return spark.read.format("delta").load(str(work / "baseline")).count()

        rows, base_s = _timed(baseline)
        batch, bronze_s = _timed(lambda: ingest_bronze(lake, "clickstream", run))
        audit, silver_s = _timed(lambda: process_batch(lake, "clickstream", batch.batch_id, run))
        cores = os.cpu_count()
        print(
            f"world: {args.users} users x {args.days} days, generated in {gen_s:.1f} s; {rows:,} clickstream records"
            f" in {len(batch.files)} gzip JSON files; Spark {spark.version}, {cores} cores,"
            f" master {spark.sparkContext.master}"
        )
        print(f"{'step':<44}{'seconds':>9}{'rows/s':>12}{'x baseline time':>17}")
        for name, secs in [("baseline: read.json -> write delta", base_s), ("bronze: landing -> bronze", bronze_s),
                           ("silver: bronze -> silver (gate, merge...)", silver_s),
                           ("bronze + silver", bronze_s + silver_s)]:  # fmt: skip
            print(f"{name:<44}{secs:>9.1f}{rows / secs:>12,.0f}{secs / base_s:>17.2f}")
        print(f"accounting: {audit}")
        spark.stop()
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
