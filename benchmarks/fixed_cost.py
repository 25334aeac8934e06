"""Fixed cost per stage: every stage's seconds, Spark jobs and Delta commits on a small world, run three times in
one session: the first run (everything to do), a run with nothing new (no new files, no new rows), and a run with
one new landing file. Printed and written as JSON; never asserted.

    .venv/bin/python benchmarks/fixed_cost.py --users 200 --days 30 --out /tmp/fixed_cost.json
    .venv/bin/python benchmarks/fixed_cost.py --render /tmp/after.json --baseline /tmp/before.json   # markdown

Spark jobs are counted from the scheduler's job ids (every job of the session, whichever thread submitted it);
Delta commits are the commit files that appeared under the lake while the stage ran.
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

from audiencelake.core.config import load_settings  # noqa: E402
from audiencelake.core.lake import Lake  # noqa: E402
from audiencelake.core.runs import Run  # noqa: E402
from audiencelake.core.session import build_session  # noqa: E402
from audiencelake.stages.declaration import StageContext  # noqa: E402
from audiencelake.stages.registry import ordered  # noqa: E402
from audiencelake.stages.runner import run_stage  # noqa: E402
from audiencelake.synth.world import DEFAULT_END  # noqa: E402
from worlds import workdir  # noqa: E402


def jobs_started(spark) -> int:
    """Spark jobs the session's scheduler has started so far (its next job id)."""
    return int(spark.sparkContext._jsc.sc().dagScheduler().numTotalJobs())


def commits(lake_root: Path) -> int:
    """Delta commit files under the lake."""
    return sum(1 for _ in lake_root.glob("**/_delta_log/*.json"))


def measured_run(ctx: StageContext, label: str, stages: list[str]) -> list[dict]:
    """Run `stages` in order with `ctx`, one row per stage: seconds, Spark jobs, Delta commits."""
    spark, root = ctx.lake.spark, Path(ctx.lake.settings.lake_root)
    rows = []
    for name in stages:
        jobs, written, started = jobs_started(spark), commits(root), time.perf_counter()
        run_stage(name, ctx)
        row = {"run": label, "stage": name, "seconds": round(time.perf_counter() - started, 2),
               "spark_jobs": jobs_started(spark) - jobs, "delta_commits": commits(root) - written}  # fmt: skip
        print(f"{label:<12}{name:<24}{row['seconds']:>8.1f} s{row['spark_jobs']:>6} jobs"
              f"{row['delta_commits']:>5} commits")  # fmt: skip
        rows.append(row)
    return rows


def land_one_file(landing: Path) -> Path:
    """A copy of the newest orders landing file under a new name: one new file whose rows are all duplicates."""
    files = sorted((p for p in landing.rglob("*") if p.is_file() and "order" in p.name), key=lambda p: p.name)
    newest = files[-1]
    target = newest.with_name(f"zz-again-{newest.name}")
    shutil.copy(newest, target)
    return target


def render(rows: list[dict], baseline: list[dict] | None) -> str:
    """A markdown table: per run and stage, seconds, Spark jobs and Delta commits (`before -> after` with a
    baseline)."""
    before = {(r["run"], r["stage"]): r for r in baseline or []}

    def cell(row: dict, key: str) -> str:
        was = before.get((row["run"], row["stage"]))
        value = f"{row[key]:.1f}" if key == "seconds" else str(row[key])
        if was is None:
            return value
        return f"{was[key]:.1f} -> {value}" if key == "seconds" else f"{was[key]} -> {value}"

    lines = ["| run | stage | seconds | Spark jobs | Delta commits |", "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['run']} | {row['stage']} | {cell(row, 'seconds')} | {cell(row, 'spark_jobs')} | "
                     f"{cell(row, 'delta_commits')} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--to", default="profile", help="last stage to run (default: profile)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--set", action="append", default=[], help="extra settings, section.key=value")
    parser.add_argument("--render", type=Path, default=None, help="print the markdown of a JSON written by --out")
    parser.add_argument("--baseline", type=Path, default=None, help="with --render: the JSON of the run before")
    args = parser.parse_args()
    if args.render:
        baseline = json.loads(args.baseline.read_text()) if args.baseline else None
        print(render(json.loads(args.render.read_text()), baseline))
        return
    with workdir(args.workdir, "fixed-cost-") as work:
        settings = load_settings(
            "local",
            [f"lake.root={work / 'lake'}", f"lake.landing={work / 'landing'}",
             f"mlflow.tracking_uri=sqlite:///{work / 'mlflow.db'}", *args.set],
        )  # fmt: skip
        started = time.perf_counter()
        spark = build_session(settings)
        spark.sparkContext.setLogLevel("ERROR")
        print(f"session start: {time.perf_counter() - started:.1f} s")
        lake = Lake(spark, settings)
        stages = [s.name for s in ordered(stop=args.to)]
        world = {"users": args.users, "days": args.days, "seed": args.seed}
        rows = measured_run(StageContext(lake, Run.create(as_of=DEFAULT_END, run_id="first"), world), "first", stages)
        again = StageContext(lake, Run.create(as_of=DEFAULT_END, run_id="again"), world)
        rows += measured_run(again, "nothing-new", stages)
        land_one_file(Path(settings.landing_root))
        rows += measured_run(StageContext(lake, Run.create(as_of=DEFAULT_END, run_id="one-file"), world), "one-file",
                             stages)  # fmt: skip
        for label in ("first", "nothing-new", "one-file"):
            mine = [r for r in rows if r["run"] == label]
            print(f"{label}: {sum(r['seconds'] for r in mine):.1f} s, {sum(r['spark_jobs'] for r in mine)} jobs, "
                  f"{sum(r['delta_commits'] for r in mine)} commits")  # fmt: skip
        if args.out:
            args.out.write_text(json.dumps(rows, indent=1))
        spark.stop()


if __name__ == "__main__":
    main()
