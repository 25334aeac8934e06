"""Tag engine cost on about ten million events: the default catalogue, 5 tags and 50 tags, and a naive
one-query-per-tag version of the same 50 tags, all measured in the same run.

    make bench-tags       # or: .venv/bin/python benchmarks/tags.py --users 1000 --days 120 --copies 30

A world is generated and ingested once (synth -> quality), then its silver tables are copied `--copies` times
with suffixed ids (users, visitors, orders, events) into a benchmark lake, so the event count grows without the
cost of generating and ingesting it. Printed, never asserted: timings on shared machines are noisy.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

from audiencelake.core.lake import Lake  # noqa: E402
from audiencelake.core.runs import Run  # noqa: E402
from audiencelake.tags.compile import aggregate_all, longest_window  # noqa: E402
from audiencelake.tags.definitions import Catalogue  # noqa: E402
from audiencelake.tags.loader import load_catalogue  # noqa: E402
from audiencelake.tags.profile import build_profile  # noqa: E402
from worlds import amplified_world, timed, workdir, world_arguments  # noqa: E402

# one per source, each reading all history like the 50: the comparison is about tags, not about days read
FIVE = ["lifetime_spend", "last_seen_date", "last_engaged_date", "social_platform", "gender"]


def fifty(catalogue: Catalogue) -> Catalogue:
    """The first tags (file order) whose catalogue, dependencies included, has 50 tags."""
    names = [t.name for t in catalogue.tags]
    for n in range(50, len(names) + 1):
        chosen = catalogue.select(names[:n])
        if len(chosen.tags) >= 50:
            return chosen
    return catalogue


def aggregate_only(lake: Lake, catalogue: Catalogue, as_of: date) -> None:
    """The scan-and-aggregate part of the job, into Spark's no-op sink."""
    aggregate_all(lake, catalogue, as_of).write.format("noop").mode("overwrite").save()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    world_arguments(parser, users=1000)
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement; the fastest is reported")
    args = parser.parse_args()
    with workdir(args.workdir, "audiencelake-bench-tags-") as work:
        world = amplified_world(args, work)
        spark, lake, events = world.spark, world.lake, world.events
        as_of = date(2026, 10, 31)
        catalogue = load_catalogue()
        few, many = catalogue.select(FIVE), fifty(catalogue)
        for label, cat in (("5 tags", few), ("50 tags", many)):
            reads = {s: longest_window(cat, s) for s in cat.sources if any(s in t.sources for t in cat.tags)}
            print(f"{label} read per source (days; None = all history): {reads}")
        aggregate_only(lake, catalogue, as_of)  # warm-up, discarded: JIT, file listings and caches
        results = []
        for label, cat in ((f"{len(few.tags)} tags", few), (f"{len(many.tags)} tags", many),
                           (f"default catalogue ({len(catalogue.tags)} tags)", catalogue)):  # fmt: skip
            _, agg_s = timed(lambda cat=cat: aggregate_only(lake, cat, as_of), args.repeat)
            _, job_s = timed(lambda cat=cat: build_profile(lake, Run.create(as_of, "bench"), cat), args.repeat)
            results.append((label, agg_s, job_s))
            print(f"  {label}: scan+aggregate {agg_s:.1f} s, whole job {job_s:.1f} s", flush=True)
        naive_s = 0.0
        for tag in many.tags:
            _, secs = timed(lambda tag=tag: aggregate_only(lake, many.select([tag.name]), as_of), args.repeat)
            naive_s += secs
            print(f"  naive {tag.name}: {secs:.1f} s", flush=True)
        print(f"\n{'tags':<34}{'scan+aggregate s':>18}{'whole job s':>13}{'events/s (job)':>16}")
        for label, agg_s, job_s in results:
            print(f"{label:<34}{agg_s:>18.1f}{job_s:>13.1f}{events / job_s:>16,.0f}")
        print(f"{'naive: one query per tag (50)':<34}{naive_s:>18.1f}")
        print(f"\nratio 50 tags / 5 tags (scan+aggregate): {results[1][1] / results[0][1]:.2f}; "
              f"whole job: {results[1][2] / results[0][2]:.2f}")  # fmt: skip
        print(f"naive one-query-per-tag / engine, same 50 tags (scan+aggregate): {naive_s / results[1][1]:.1f}x")
        spark.stop()


if __name__ == "__main__":
    main()
