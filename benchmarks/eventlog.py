"""Where the time goes, from Spark's own event log: per Spark stage, the pipeline stage that ran it, its call site,
the task time summed over tasks, shuffle bytes read and written, bytes spilled, and skew (the longest task over
the median task). Also the Delta layout: data files and their mean size per table.

    .venv/bin/python benchmarks/eventlog.py EVENT_LOG_FILE [--top 10]

benchmarks/run.py writes an event log per world size (Spark's `spark.eventLog.*`) and reports the top stages.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

LABEL = "audiencelake.stage"  # the local property benchmarks/run.py sets to the pipeline stage running


def _metric(task: dict, *path: str) -> int:
    node = task.get("Task Metrics") or {}
    for key in path:
        node = node.get(key, {}) if isinstance(node, dict) else {}
    return int(node) if isinstance(node, int | float) else 0


def _lines(log: Path) -> Iterator[str]:
    """The lines of an event log: one file, or Spark 4's rolling folder (`eventlog_v2_*/events_<n>_*`, in order)."""
    files = sorted(log.glob("events_*"), key=lambda p: int(p.name.split("_")[1])) if log.is_dir() else [log]
    for path in files:
        with path.open() as lines:
            yield from lines


def spark_stages(log: Path) -> list[dict]:
    """One row per completed Spark stage, with its pipeline stage, call site, task time, shuffle, spill and skew."""
    stage_label: dict[int, str] = {}
    stage_query: dict[int, str] = {}  # the SQL execution a stage served (AQE runs its stages from a thread pool)
    queries: dict[str, str] = {}  # SQL execution id -> its description: the call site of the action
    tasks: dict[int, list[dict]] = defaultdict(list)
    names: dict[int, str] = {}
    for line in _lines(log):
        try:
            event = json.loads(line)
        except json.JSONDecodeError:  # the last line of a log still being written
            continue
        kind = event.get("Event")
        if kind and kind.endswith("SparkListenerSQLExecutionStart"):
            queries[str(event["executionId"])] = event.get("description", "")
        elif kind == "SparkListenerJobStart":
            properties = event.get("Properties") or {}
            label = properties.get(LABEL, "-")
            query = properties.get("spark.sql.execution.root.id") or properties.get("spark.sql.execution.id")
            for stage_id in event.get("Stage IDs", []):
                stage_label.setdefault(stage_id, label)
                if query is not None:
                    stage_query.setdefault(stage_id, str(query))
        elif kind == "SparkListenerTaskEnd":
            tasks[event["Stage ID"]].append(event)
        elif kind == "SparkListenerStageCompleted":
            info = event["Stage Info"]
            names[info["Stage ID"]] = info.get("Stage Name", "")
    rows = []
    for stage_id, ends in tasks.items():
        durations = [_metric(t, "Executor Run Time") for t in ends]
        median = statistics.median(durations) if durations else 0
        rows.append({
            "spark_stage": stage_id,
            "pipeline_stage": stage_label.get(stage_id, "-"),
            "call_site": queries.get(stage_query.get(stage_id, ""), "") or names.get(stage_id, ""),
            "tasks": len(ends),
            "task_seconds": round(sum(durations) / 1000, 1),
            "shuffle_read_mb": round(sum(_metric(t, "Shuffle Read Metrics", "Remote Bytes Read")
                                         + _metric(t, "Shuffle Read Metrics", "Local Bytes Read") for t in ends)
                                     / 2**20, 1),
            "shuffle_write_mb": round(sum(_metric(t, "Shuffle Write Metrics", "Shuffle Bytes Written") for t in ends)
                                      / 2**20, 1),
            "spill_mb": round(sum(_metric(t, "Disk Bytes Spilled") for t in ends) / 2**20, 1),
            "skew": round(max(durations) / median, 1) if median else None,
        })  # fmt: skip
    return sorted(rows, key=lambda r: -r["task_seconds"])


def by_pipeline_stage(rows: list[dict]) -> dict[str, dict]:
    """Task seconds, shuffle and spill summed per pipeline stage."""
    out: dict[str, dict] = defaultdict(lambda: defaultdict(float))
    for row in rows:
        for key in ("task_seconds", "shuffle_read_mb", "shuffle_write_mb", "spill_mb"):
            out[row["pipeline_stage"]][key] += row[key]
    return {k: {m: round(v, 1) for m, v in d.items()} for k, d in out.items()}


def table_files(spark, lake_root: Path) -> dict[str, dict]:
    """Per Delta table under the lake: data files in its current version and their mean size in KB (DESCRIBE
    DETAIL: from the log, no data read)."""
    out = {}
    for log_dir in sorted(lake_root.glob("*/*/_delta_log")):
        detail = spark.sql(f"DESCRIBE DETAIL delta.`{log_dir.parent}`").first()
        files = int(detail["numFiles"] or 0)
        name = f"{log_dir.parent.parent.name}.{log_dir.parent.name}"
        out[name] = {"files": files, "mean_kb": round(int(detail["sizeInBytes"] or 0) / max(files, 1) / 1024, 1)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    rows = spark_stages(args.log)
    for row in rows[: args.top]:
        print(row)
    for name, totals in sorted(by_pipeline_stage(rows).items(), key=lambda kv: -kv[1]["task_seconds"]):
        print(f"{name:<24}{totals}")


if __name__ == "__main__":
    main()
