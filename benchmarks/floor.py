"""The floor under a small ingest: what one Delta operation costs on this machine whatever the data, and a single
order export ingested by audiencelake beside a plain `read.csv -> write.format("delta")` of the same file, in one
session. Printed and written as JSON; never asserted.

    .venv/bin/python benchmarks/floor.py --users 400 --days 60 --out /tmp/floor.json

Part one times each operation on a 3-row Delta table (`--repeat` times after one warm-up; mean seconds and Spark jobs
per call). Part two concatenates the generated world's order files into one CSV (one header), as a shop's export
would be, and ingests it as the only source: seconds, Spark jobs and Delta commits of each side, their ratio, and
the ingest's commits times the mean cost of a small Delta write (append and overwrite), the part of the ingest that
does not shrink with the file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

from delta.tables import DeltaTable  # noqa: E402

from audiencelake.core.config import load_settings  # noqa: E402
from audiencelake.core.lake import Lake  # noqa: E402
from audiencelake.core.runs import Run  # noqa: E402
from audiencelake.core.session import build_session  # noqa: E402
from audiencelake.stages.declaration import StageContext  # noqa: E402
from audiencelake.stages.runner import run_stage  # noqa: E402
from audiencelake.synth import WorldSpec, generate_world  # noqa: E402
from audiencelake.synth.world import DEFAULT_END  # noqa: E402
from fixed_cost import commits, jobs_started  # noqa: E402
from worlds import workdir  # noqa: E402

OTHER_SOURCES = ("clickstream", "campaign_touches", "social", "crm_profiles")


def measured(spark, root: Path, fn) -> dict:
    """Seconds, Spark jobs and Delta commits (under `root`) of one call of `fn`."""
    jobs, written, started = jobs_started(spark), commits(root), time.perf_counter()
    fn()
    return {"seconds": round(time.perf_counter() - started, 2), "spark_jobs": jobs_started(spark) - jobs,
            "delta_commits": commits(root) - written}  # fmt: skip


def operation_floor(spark, root: Path, repeat: int) -> dict[str, dict]:
    """Mean seconds and Spark jobs per call of each Delta operation on a 3-row table."""
    path = str(root / "tiny")
    df = spark.createDataFrame([(i, f"v{i}") for i in range(3)], "k int, v string")
    operations = {
        "overwrite": lambda: df.write.format("delta").mode("overwrite").save(path),
        "append": lambda: df.write.format("delta").mode("append").save(path),
        "merge": lambda: DeltaTable.forPath(spark, path).alias("t").merge(df.alias("s"), "t.k = s.k")
        .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(),
        "count": lambda: spark.read.format("delta").load(path).count(),
        "version": lambda: DeltaTable.forPath(spark, path).history(1).select("version").first(),
        "localCheckpoint": lambda: df.localCheckpoint().count(),
    }  # fmt: skip
    out = {}
    for name, fn in operations.items():
        fn()
        runs = [measured(spark, root, fn) for _ in range(repeat)]
        out[name] = {"seconds": round(sum(r["seconds"] for r in runs) / repeat, 2),
                     "spark_jobs": sum(r["spark_jobs"] for r in runs) / repeat}  # fmt: skip
        print(f"{name:<16}{out[name]['seconds']:>7.2f} s{out[name]['spark_jobs']:>6.1f} jobs per call")
    return out


def one_export(landing: Path, target: Path) -> int:
    """The world's order files as one CSV with one header; returns its data lines."""
    files = sorted((landing / "orders").glob("*.csv"))
    lines = 0
    with target.open("w") as out:
        for i, path in enumerate(files):
            text = path.read_text().splitlines(keepends=True)
            body = text if i == 0 else text[1:]
            out.writelines(body)
            lines += len(text) - 1
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with workdir(args.workdir, "floor-") as work:
        generate_world(work / "world", WorldSpec(users=args.users, days=args.days, seed=args.seed))
        export = work / "landing" / "orders" / "orders_export.csv"
        export.parent.mkdir(parents=True, exist_ok=True)
        lines = one_export(work / "world" / "landing", export)
        others = [f"sources.{s}.path={work / 'none'}/*" for s in OTHER_SOURCES]
        settings = load_settings(
            "local",
            [f"lake.root={work / 'lake'}", f"lake.landing={work / 'landing'}",
             f"mlflow.tracking_uri=sqlite:///{work / 'mlflow.db'}", *others],
        )  # fmt: skip
        spark = build_session(settings)
        spark.sparkContext.setLogLevel("ERROR")
        print("one Delta operation on a 3-row table:")
        floor = operation_floor(spark, work / "scratch", args.repeat)
        lake = Lake(spark, settings)
        root = Path(settings.lake_root)

        def plain(name: str):
            path = str(work / "scratch" / name)
            spark.read.option("header", "true").csv(str(export)).write.format("delta").mode("overwrite").save(path)

        before = measured(spark, work / "scratch", lambda: plain("plain-1"))
        ctx = StageContext(lake, Run.create(as_of=DEFAULT_END, run_id="floor"), {})
        ingest = measured(spark, root, lambda: run_stage("ingest", ctx))
        after = measured(spark, work / "scratch", lambda: plain("plain-2"))
        baseline = (before["seconds"] + after["seconds"]) / 2
        write = (floor["append"]["seconds"] + floor["overwrite"]["seconds"]) / 2
        result = {
            "lines": lines, "operations": floor, "plain_before": before, "ingest": ingest, "plain_after": after,
            "ratio": round(ingest["seconds"] / baseline, 2),
            "commits_times_write_floor_s": round(ingest["delta_commits"] * write, 1),
        }  # fmt: skip
        print(f"one order export of {lines:,} lines:")
        for label in ("plain_before", "ingest", "plain_after"):
            r = result[label]
            print(f"  {label:<13}{r['seconds']:>7.1f} s{r['spark_jobs']:>5} jobs{r['delta_commits']:>4} commits")
        print(f"  ingest / plain read->write (mean of the two): {result['ratio']}x")
        print(f"  ingest's commits x a small write ({write:.2f} s): {result['commits_times_write_floor_s']} s")
        if args.out:
            args.out.write_text(json.dumps(result, indent=1))
        spark.stop()
        shutil.rmtree(work / "scratch", ignore_errors=True)


if __name__ == "__main__":
    main()
