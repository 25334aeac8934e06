"""What the benchmarks share: timing, a generated world ingested once, and its silver tables copied many times."""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from audiencelake.core.config import load_settings
from audiencelake.core.contracts import contract
from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from audiencelake.core.session import build_session
from audiencelake.stages.declaration import StageContext
from audiencelake.stages.runner import run_pipeline

# id columns made unique per copy; everything else (times, amounts, categories) is copied as is
ID_COLUMNS = {
    "clickstream_events": ["event_id", "anonymous_id", "device_id", "customer_id", "user_id"],
    "orders": ["order_id", "customer_id", "user_id"],
    "crm_profiles": ["customer_id", "email_hash", "phone_hash", "user_id"],
    "campaign_touches": ["touch_id", "customer_id", "user_id"],
    "social_interactions": ["interaction_id", "customer_id", "user_id"],
}


def timed(fn, repeat: int = 1):
    """The result of `fn` and its fastest time over `repeat` runs (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return result, best


def amplify(source: Lake, target: Lake, copies: int) -> dict[str, int]:
    """Copy every silver table `copies` times into `target`, ids suffixed with the copy number (kept for a re-run
    with the same `--workdir` and `--copies`)."""
    marker = Path(target.settings.lake_root) / f"silver/.copies-{copies}"
    if marker.exists():
        return {t: target.read(target.ref("silver", t)).count() for t in ID_COLUMNS}
    rows = {}
    for table, ids in ID_COLUMNS.items():
        df = source.read(source.ref("silver", table))
        copy = source.spark.range(copies).withColumnRenamed("id", "_copy")
        out = df.crossJoin(F.broadcast(copy))
        for col in ids:
            out = out.withColumn(col, F.concat(F.col(col), F.lit("~"), F.col("_copy").cast("string")))
        parts = contract(table).partition_by  # one file per date partition, as silver lays them out
        out = out.drop("_copy").repartition(*parts) if parts else out.drop("_copy")
        target.overwrite(out, target.ref("silver", table), partition_by=parts)
        rows[table] = target.read(target.ref("silver", table)).count()
    marker.touch()
    return rows


def ingest_world(base: Lake, users: int, days: int, seed: int) -> float:
    """Generate and ingest a world into `base` (synth -> quality) unless done before; returns the seconds spent."""
    world = {"users": users, "days": days, "seed": seed}
    ingested = Path(base.settings.lake_root) / f".ingested-{users}-{days}-{seed}"
    _, seconds = timed(
        lambda: ingested.exists() or run_pipeline(StageContext(base, Run.create(), world), stop="quality")
    )
    ingested.parent.mkdir(parents=True, exist_ok=True)
    ingested.touch()
    return seconds


def world_arguments(parser: argparse.ArgumentParser, users: int, copies: bool = True) -> None:
    """The options every benchmark takes: the world's size and seed, copies, and a work folder."""
    parser.add_argument("--users", type=int, default=users)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seed", type=int, default=42)
    if copies:
        parser.add_argument("--copies", type=int, default=30)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder, removed after")


@contextmanager
def workdir(path: Path | None, prefix: str) -> Iterator[Path]:
    """`path`, or a temporary folder removed afterwards."""
    work = path or Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work
    finally:
        if path is None:
            shutil.rmtree(work, ignore_errors=True)


@dataclass
class Amplified:
    spark: SparkSession
    lake: Lake
    rows: dict[str, int]
    events: int


def amplified_world(args: argparse.Namespace, work: Path, overrides: tuple[str, ...] = ()) -> Amplified:
    """A world ingested under `work/base` and its silver copied `args.copies` times into `work/lake`; prints both."""
    base_settings = load_settings("local", [f"lake.root={work / 'base'}", f"lake.landing={work / 'landing'}"])
    spark = build_session(base_settings)
    spark.sparkContext.setLogLevel("ERROR")
    base = Lake(spark, base_settings)
    ingest_s = ingest_world(base, args.users, args.days, args.seed)
    lake = Lake(spark, load_settings("local", [f"lake.root={work / 'lake'}", *overrides]))
    rows, copy_s = timed(lambda: amplify(base, lake, args.copies))
    events = sum(v for k, v in rows.items() if k != "crm_profiles")
    print(f"world: {args.users} users x {args.days} days ingested in {ingest_s:.0f} s, copied x{args.copies} "
          f"in {copy_s:.0f} s: {events:,} events, {rows['crm_profiles']:,} customers; {rows}")  # fmt: skip
    print(f"Spark {spark.version}, {spark.sparkContext.defaultParallelism} cores, master {spark.sparkContext.master}")
    return Amplified(spark, lake, rows, events)
