"""Ingest throughput on about one million clickstream events, against a plain JSON -> Delta copy in the same run.

    make bench            # or: .venv/bin/python benchmarks/ingest.py --users 3200 --days 120

Prints rows per second for bronze (landing -> bronze) and silver (bronze -> silver: conform, hash, quality gate,
version resolution, MERGE, quarantine, audit), and the ratio of each to the baseline
`spark.read.json(files).write.format("delta")`. Nothing here is asserted: timings on shared machines are noisy.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

from audiencelake.core.config import load_settings  # noqa: E402
from audiencelake.core.lake import Lake  # noqa: E402
from audiencelake.core.runs import Run  # noqa: E402
from audiencelake.core.session import build_session  # noqa: E402
from audiencelake.ingest.bronze import ingest_bronze  # noqa: E402
from audiencelake.ingest.records import recording  # noqa: E402
from audiencelake.ingest.silver import BatchAudit, process_batch  # noqa: E402
from audiencelake.synth import WorldSpec, generate_world  # noqa: E402
from worlds import timed, workdir, world_arguments  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    world_arguments(parser, users=3200, copies=False)
    args = parser.parse_args()
    with workdir(args.workdir, "audiencelake-bench-") as work:
        _, gen_s = timed(lambda: generate_world(work, WorldSpec(users=args.users, days=args.days, seed=args.seed)))
        settings = load_settings("local", [f"lake.root={work / 'lake'}", f"lake.landing={work / 'landing'}"])
        spark = build_session(settings)
        spark.sparkContext.setLogLevel("ERROR")
        lake, run = Lake(spark, settings), Run.create()
        files = settings.source_path("clickstream")

        def baseline() -> int:
            spark.read.json(files).write.format("delta").mode("overwrite").save(str(work / "baseline"))
            return spark.read.format("delta").load(str(work / "baseline")).count()

        rows, base_s = timed(baseline)
        (batch, _pending), bronze_s = timed(lambda: ingest_bronze(lake, "clickstream", run))

        def silver() -> BatchAudit:
            with recording(lake) as records:
                return process_batch(lake, "clickstream", batch.batch_id, run, len(batch.files), records, batch.rows)

        audit, silver_s = timed(silver)
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


if __name__ == "__main__":
    main()
