"""Streaming latency: a small clickstream file lands every `--every` seconds for `--minutes` into a processing-time
stream (`--trigger` seconds); for each file, the seconds from its landing to its rows in silver (the audit row of
its batch, written after silver). Prints p50 and p95 (and each micro-batch's duration); never asserted.

    .venv/bin/python benchmarks/stream.py                 # 3 minutes, a file every 10 s, 5 s trigger

The files are the lines of a generated world's clickstream, cut into equal parts; each is written beside the
landing folder and moved in with one rename, so the stream never sees a partial file.
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

from pyspark.sql import functions as F  # noqa: E402

from audiencelake.core.config import load_settings  # noqa: E402
from audiencelake.core.lake import Lake  # noqa: E402
from audiencelake.core.runs import Run  # noqa: E402
from audiencelake.core.session import build_session  # noqa: E402
from audiencelake.ingest.layout import AUTO_COMPACT  # noqa: E402
from audiencelake.ingest.stream import start_stream  # noqa: E402
from audiencelake.synth import WorldSpec, generate_world  # noqa: E402
from worlds import workdir  # noqa: E402


def clickstream_lines(world: Path) -> list[bytes]:
    lines: list[bytes] = []
    for path in sorted((world / "landing" / "clickstream").glob("*.jsonl.gz")):
        lines += gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    return lines


def land(lines: list[bytes], folder: Path, count: int, every: float, landed: dict[str, float]) -> None:
    """Write `count` parts of `lines` into `folder`, one every `every` seconds; record each file's landing time."""
    size = max(1, len(lines) // count)
    staging = folder.parent / ".staging"
    staging.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        started = time.monotonic()
        name = f"stream_{i:04d}.jsonl.gz"
        (staging / name).write_bytes(gzip.compress(b"".join(lines[i * size : (i + 1) * size])))
        os.replace(staging / name, folder / name)
        landed[(folder / name).resolve().as_uri()] = time.time()
        time.sleep(max(0.0, every - (time.monotonic() - started)))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between two landed files")
    parser.add_argument("--trigger", type=float, default=5.0, help="processing-time trigger, seconds")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    with workdir(args.workdir, "audiencelake-stream-") as work:
        generate_world(work / "world", WorldSpec(users=args.users, days=21, seed=4))
        lines = clickstream_lines(work / "world")
        compacting = f"spark.conf.{AUTO_COMPACT}=true"  # as `audiencelake stream` runs
        settings = load_settings(
            "local", [f"lake.root={work / 'lake'}", f"lake.landing={work / 'landing'}", compacting]
        )
        spark = build_session(settings)
        spark.sparkContext.setLogLevel("ERROR")
        lake = Lake(spark, settings)
        folder = Path(settings.source_path("clickstream")).parent
        folder.mkdir(parents=True, exist_ok=True)
        count = int(args.minutes * 60 / args.every)
        query = start_stream(lake, Run.create(run_id="stream-bench"), ["clickstream"], "processing_time",
                             f"{args.trigger:g} seconds")  # fmt: skip
        landed: dict[str, float] = {}
        lander = threading.Thread(target=land, args=(lines, folder, count, args.every, landed))
        started = datetime.now(UTC)
        lander.start()
        lander.join()
        deadline = time.time() + 120  # the last files' batches
        while time.time() < deadline:
            ledger = lake.read(lake.ref("ops", "ingest_files"))
            audited = ledger.join(lake.read(lake.ref("ops", "ingest_audit")), ["source", "batch_id"])
            if audited.where(F.col("file").isin(list(landed))).count() == count:
                break
            time.sleep(2)
        query.stop()
        done = {
            r["file"]: r["processed_at"].timestamp()
            for r in lake.read(lake.ref("ops", "ingest_files"))
            .join(lake.read(lake.ref("ops", "ingest_audit")), ["source", "batch_id"])
            .select("file", "processed_at")
            .collect()
        }
        latency = [done[f] - t for f, t in landed.items() if f in done]
        batches = [p["durationMs"]["triggerExecution"] / 1000 for p in query.recentProgress if p["numInputRows"]]
        print(f"stream benchmark from {started:%Y-%m-%d %H:%M} UTC: {count} files of ~{len(lines) // count} events, "
              f"one every {args.every:g} s, trigger {args.trigger:g} s, Spark {spark.version}, "
              f"{os.cpu_count()} cores")  # fmt: skip
        print(f"files in silver: {len(latency)} of {count}")
        if latency:
            p50, p95 = statistics.median(latency), percentile(latency, 0.95)
            print(f"landing -> silver seconds: p50 {p50:.1f}, p95 {p95:.1f}, max {max(latency):.1f}")
        if batches:
            print(f"micro-batches with data: {len(batches)}, seconds each: p50 {statistics.median(batches):.1f}, "
                  f"max {max(batches):.1f}")  # fmt: skip
        spark.stop()


if __name__ == "__main__":
    main()
