"""The whole pipeline at several world sizes: seconds, events per second and peak memory per stage, and each
stage's scaling exponent (slope of log seconds against log events). Printed, and written as JSON and as the
markdown table of docs/benchmarks.md (with the machine, versions and command). Never asserted.

    .venv/bin/python benchmarks/run.py --scale 825 3300 13200 --days 120   # docs/benchmarks.md: 0.26, 1, 4 M events
    .venv/bin/python benchmarks/run.py --render docs/benchmarks.json --note "..."   # the markdown again, no run

`--scale` lists world sizes in users (events grow with users; the default, about 1, 4 and 16 M events, takes over
three hours on 2 cores). Memory is sampled every 0.2 s while a stage runs:
the driver's resident set (this Python process), the JVM's resident set and its used heap.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

import numpy as np  # noqa: E402
import pyspark  # noqa: E402

from audiencelake.core.config import load_settings  # noqa: E402
from audiencelake.core.lake import Lake  # noqa: E402
from audiencelake.core.runs import Run  # noqa: E402
from audiencelake.core.session import build_session  # noqa: E402
from audiencelake.stages.declaration import StageContext  # noqa: E402
from audiencelake.stages.registry import ordered  # noqa: E402
from audiencelake.stages.runner import run_stage  # noqa: E402
from audiencelake.synth.world import DEFAULT_END  # noqa: E402
from baselines import baselines  # noqa: E402
from eventlog import LABEL, by_pipeline_stage, spark_stages, table_files  # noqa: E402
from worlds import timed, workdir  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _rss_mb(pid: int | str = "self") -> float:
    """Resident set of a process in MB, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakMemory:
    """Peak driver RSS, JVM RSS and JVM used heap (MB) while the `with` block runs."""

    def __init__(self, spark) -> None:
        self.runtime = spark.sparkContext._jvm.java.lang.Runtime.getRuntime()
        self.jvm_pid = int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
        self.peak = {"driver_rss_mb": 0.0, "jvm_rss_mb": 0.0, "jvm_heap_mb": 0.0}
        self._stop = threading.Event()

    def _sample(self) -> None:
        heap = (self.runtime.totalMemory() - self.runtime.freeMemory()) / 2**20
        for key, value in (("driver_rss_mb", _rss_mb()), ("jvm_rss_mb", _rss_mb(self.jvm_pid)), ("jvm_heap_mb", heap)):
            self.peak[key] = max(self.peak[key], value)

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()

    def __enter__(self) -> PeakMemory:
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


class StepSeconds(logging.Handler):
    """Collects the steps a stage logs through `audiencelake.core.progress.Steps` (its records carry `step`)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if step := getattr(record, "step", None):
            label, name, seconds = step
            self.seen[f"{label}.{name}"] = round(seconds, 2)

    def take(self) -> dict[str, float]:
        seen, self.seen = self.seen, {}
        return seen


def run_size(spark, work: Path, users: int, days: int, seed: int) -> dict:
    """Every stage on a fresh lake holding a world of `users`; per stage: seconds and peak memory, and for the
    stages with a plain-Spark baseline (benchmarks/baselines.py) its seconds, run right after the stage."""
    root = work / f"users-{users}"
    settings = load_settings("local", [f"lake.root={root / 'lake'}", f"lake.landing={root / 'landing'}",
                                       f"mlflow.tracking_uri=sqlite:///{root / 'mlflow.db'}"])  # fmt: skip
    lake = Lake(spark, settings)
    # the world ends on DEFAULT_END: the run is as of that day (as of today, every customer would look churned)
    ctx = StageContext(lake, Run.create(as_of=DEFAULT_END), {"users": users, "days": days, "seed": seed})
    plain = baselines(lake, ctx.run, root / "baselines")
    stages, steps = {}, StepSeconds()
    logger = logging.getLogger("audiencelake")
    logger.setLevel(logging.INFO)
    logger.addHandler(steps)
    try:
        for s in ordered():
            spark.sparkContext.setLocalProperty(LABEL, f"{users} users: {s.name}")
            with PeakMemory(spark) as memory:
                run_stage(s.name, ctx)
            stages[s.name] = {"seconds": round(ctx.seconds[s.name], 2), **{k: round(v) for k, v in memory.peak.items()}}
            if seen := steps.take():
                stages[s.name]["steps"] = seen
            if s.name in plain:
                spark.sparkContext.setLocalProperty(LABEL, f"{users} users: baseline {s.name}")
                _, seconds = timed(plain[s.name])
                stages[s.name] |= {"baseline_seconds": round(seconds, 2),
                                   "x_baseline": round(ctx.seconds[s.name] / seconds, 2)}  # fmt: skip
            print(f"  {users} users: {s.name} {stages[s.name]}", flush=True)
    finally:
        spark.sparkContext.setLocalProperty(LABEL, None)
        logger.removeHandler(steps)
    events = lake.read(lake.ref("silver", "clickstream_events")).count()
    for row in stages.values():
        row["events_per_s"] = round(events / row["seconds"]) if row["seconds"] else None
    return {"users": users, "days": days, "events": events, "stages": stages,
            "delta_files": table_files(spark, root / "lake")}  # fmt: skip


def exponents(sizes: list[dict]) -> dict[str, float | None]:
    """Per stage: the least-squares slope of log seconds against log events (None with fewer than two sizes)."""
    if len(sizes) < 2:
        return {}
    events = np.log([s["events"] for s in sizes])
    names = sizes[0]["stages"]
    return {n: round(float(np.polyfit(events, np.log([s["stages"][n]["seconds"] for s in sizes]), 1)[0]), 3)
            for n in names}  # fmt: skip


def last_step_exponents(sizes: list[dict]) -> dict[str, float | None]:
    """Per stage: the slope between the two largest sizes only, where fixed costs weigh least."""
    return exponents(sizes[-2:])


def targets(result: dict) -> list[str]:
    """The issue's targets, each with the measured figure and whether it is met (at the largest size)."""
    largest, out = result["sizes"][-1]["stages"], []
    slopes = {n: v for n, v in result["exponents"].items() if v is not None}
    if slopes:
        worst = max(slopes, key=slopes.get)
        out.append(f"- every stage's scaling exponent at most 1.1: largest {slopes[worst]} ({worst}): "
                   f"{'met' if slopes[worst] <= 1.1 else 'NOT met'}")  # fmt: skip
    for stage, goal, text in (("ingest", 1 / 0.7, "ingest at least 0.7 of raw-copy throughput"),
                              ("profile", 1.5, "profile at most 1.5 times one aggregation pass")):  # fmt: skip
        ratio = largest.get(stage, {}).get("x_baseline")
        if ratio is not None:
            out.append(f"- {text}: throughput {1 / ratio:.2f} of the baseline ({ratio:.2f} times its time): "
                       f"{'met' if ratio <= goal else 'NOT met'}")  # fmt: skip
    return out


def steps_table(sizes: list[dict]) -> list[str]:
    """Markdown rows: the seconds of each step a stage logs (`Steps`) at every size, beside the stage's total and its
    plain-Spark baseline, so the steps that grow with the data stand apart from those that do not."""
    named = [n for n in sizes[-1]["stages"] if sizes[-1]["stages"][n].get("steps")]
    if not named:
        return []
    lines = ["", "## Steps of the stages that log them: seconds at each size", "",
             "| stage: step | " + " | ".join(f"{s['events']:,} events" for s in sizes) + " |",
             "|" + "---|" * (len(sizes) + 1)]  # fmt: skip
    for name in named:
        rows = {f"{name}: {step.partition('.')[2]}": [s["stages"][name].get("steps", {}).get(step) for s in sizes]
                for step in sizes[-1]["stages"][name]["steps"]}  # fmt: skip
        rows[f"{name}: **stage total**"] = [s["stages"][name]["seconds"] for s in sizes]
        rows[f"{name}: *plain-Spark baseline*"] = [s["stages"][name].get("baseline_seconds") for s in sizes]
        for label, cells in rows.items():
            lines.append(f"| {label} | " + " | ".join("-" if c is None else f"{c:.1f}" for c in cells) + " |")
    return lines


def markdown(result: dict) -> str:
    sizes, slopes, last = result["sizes"], result["exponents"], last_step_exponents(result["sizes"])
    head = ("| stage | " + " | ".join(f"{s['events']:,} events: s (events/s, heap MB)" for s in sizes)
            + " | exponent (all sizes) | exponent (two largest) |")  # fmt: skip
    lines = [
        "# Benchmarks", "",
        *([f"> {result['note']}", ""] if result.get("note") else []),
        f"Measured {result['measured_at']} on {result['machine']} with {result['versions']}.", "",
        f"Command: `{result['command']}`", "",
        "## Seconds per stage", "",
        head, "|" + "---|" * (len(sizes) + 3),
    ]  # fmt: skip
    for name in sizes[0]["stages"]:
        cells = [f"{s['stages'][name]['seconds']:.1f} ({s['stages'][name]['events_per_s'] or 0:,}, "
                 f"{s['stages'][name]['jvm_heap_mb']:,})" for s in sizes]  # fmt: skip
        fits = [("-" if f.get(name) is None else f[name]) for f in (slopes, last)]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {fits[0]} | {fits[1]} |")
    lines += ["", "## Against plain Spark (benchmarks/baselines.py): stage s / baseline s", "",
              "| stage | " + " | ".join(f"{s['events']:,} events" for s in sizes) + " |",
              "|" + "---|" * (len(sizes) + 1)]  # fmt: skip
    for name in [n for n in sizes[0]["stages"] if "baseline_seconds" in sizes[0]["stages"][n]]:
        cells = [f"{s['stages'][name]['seconds']:.1f} / {s['stages'][name]['baseline_seconds']:.1f} = "
                 f"{s['stages'][name]['x_baseline']:.2f}" for s in sizes]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += steps_table(sizes)
    largest = sizes[-1]
    lines += ["", "## Targets (issue 9)", "", *targets(result), ""]
    lines += [
        "",
        f"## Spark task seconds, shuffle and spill per pipeline stage at {largest['events']:,} events",
        "",
        "| pipeline stage | task s | shuffle read MB | shuffle write MB | spill MB |",
        "|---|---|---|---|---|",
    ]
    for name, t in sorted(largest.get("task_seconds_by_stage", {}).items(), key=lambda kv: -kv[1]["task_seconds"]):
        lines.append(f"| {name} | {t['task_seconds']} | {t['shuffle_read_mb']} | {t['shuffle_write_mb']} | "
                     f"{t['spill_mb']} |")  # fmt: skip
    lines += ["", f"## Most expensive Spark stages at {largest['events']:,} events (Spark event log)", "",
              "| pipeline stage | call site | tasks | task s | shuffle read MB | shuffle write MB | spill MB | skew |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in largest.get("top_spark_stages", []):
        site = re.sub(r"/\S*/(site-packages|lib)/", "", r["call_site"])
        lines.append(f"| {r['pipeline_stage']} | {site} | {r['tasks']} | {r['task_seconds']} | "
                     f"{r['shuffle_read_mb']} | {r['shuffle_write_mb']} | {r['spill_mb']} | {r['skew']} |")  # fmt: skip
    lines += ["", f"## Delta data files per table at {largest['events']:,} events", "",
              "| table | files | mean KB |", "|---|---|---|"]  # fmt: skip
    for table, f in largest.get("delta_files", {}).items():
        lines.append(f"| {table} | {f['files']} | {f['mean_kb']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, nargs="+", default=[3300, 13200, 52800], help="world sizes in users")
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder, removed after")
    parser.add_argument("--json", type=Path, default=ROOT / "docs" / "benchmarks.json")
    parser.add_argument("--markdown", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--top", type=int, default=5, help="most expensive Spark stages reported per size")
    parser.add_argument("--note", default=None, help="a remark printed under the title")
    parser.add_argument("--render", type=Path, default=None, help="only rewrite --markdown from this JSON; no run")
    args = parser.parse_args()
    if args.render:
        result = json.loads(args.render.read_text())
        result["note"] = args.note or result.get("note")
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        args.markdown.write_text(markdown(result))
        return
    with workdir(args.workdir, "audiencelake-bench-run-") as work:
        events_dir = work / "spark-events"
        events_dir.mkdir(parents=True, exist_ok=True)
        spark = build_session(load_settings("local", [
            f"lake.root={work / 'session'}", "spark.conf.spark.eventLog.enabled=true",
            f"spark.conf.spark.eventLog.dir={events_dir}", "spark.conf.spark.eventLog.compress=false"]))  # fmt: skip
        spark.sparkContext.setLogLevel("ERROR")
        result = {
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.node()}, {os.cpu_count()} cores, {platform.platform()}",
            "versions": f"Python {platform.python_version()}, PySpark {pyspark.__version__}, Delta jars "
                        f"{sorted(p.name for p in (ROOT / 'jars').glob('delta-spark_*.jar'))}, shuffle partitions "
                        f"{spark.conf.get('spark.sql.shuffle.partitions')}, driver memory "
                        f"{spark.conf.get('spark.driver.memory')}",
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "note": args.note,
            "sizes": [],
        }  # fmt: skip
        log = next(events_dir.iterdir())  # Spark writes one file per application, appended as it goes
        for users in sorted(args.scale):
            size = run_size(spark, work, users, args.days, args.seed)
            rows = [r for r in spark_stages(log) if r["pipeline_stage"].startswith(f"{users} users: ")]
            size["top_spark_stages"] = rows[: args.top]
            size["task_seconds_by_stage"] = by_pipeline_stage(rows)
            result["sizes"].append(size)
            result["exponents"] = exponents(result["sizes"])
            args.json.write_text(json.dumps(result, indent=2) + "\n")  # after every size: a long run keeps its part
            args.markdown.write_text(markdown(result))
        spark.stop()
    print(markdown(result))


if __name__ == "__main__":
    main()
