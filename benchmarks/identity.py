"""Identity resolution at two history sizes: a full rebuild against an incremental run over one new slice, and
Splink comparisons per second; checks the incremental graph equals the rebuild's and scores the clustering.

    make bench-identity     # or: .venv/bin/python benchmarks/identity.py --users 1000 --days 60 --sizes 4 16

A world is generated and ingested once; its silver clickstream and CRM tables (and the restricted CRM names and
emails) are copied `size` times with suffixed ids, each copy a different set of people (birth dates shifted by
400 days a copy, emails suffixed). For each size: a full identity run over the history (trains the matcher), then
one more copy lands as new rows (about 1/size of the history) and an incremental run processes it, then a rebuild
processes everything again. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from datetime import UTC, datetime

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

from pyspark.sql import DataFrame  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from audiencelake.core.config import load_settings  # noqa: E402
from audiencelake.core.lake import RESTRICTED, Lake  # noqa: E402
from audiencelake.core.progress import Steps  # noqa: E402
from audiencelake.core.runs import Run  # noqa: E402
from audiencelake.core.session import build_session  # noqa: E402
from audiencelake.identity.evaluate import clustering_quality  # noqa: E402
from audiencelake.identity.graph import update_graph  # noqa: E402
from audiencelake.identity.matching import Matcher, match_records  # noqa: E402
from worlds import ID_COLUMNS, ingest_world, timed, workdir, world_arguments  # noqa: E402

# the silver tables identity reads, ids suffixed per copy as worlds.amplify does, and the restricted CRM names
IDS = {t: ID_COLUMNS[t] for t in ("clickstream_events", "crm_profiles")}
IDS["crm_profiles_pii"] = ["customer_id", "phone"]


def _copy(df: DataFrame, table: str, first: int, count: int, ingested: datetime | None) -> DataFrame:
    """`count` copies of `df` numbered from `first`: suffixed ids, distinct people, and (new rows) an ingest time."""
    copies = df.sparkSession.range(first, first + count).withColumnRenamed("id", "_copy")
    out = df.crossJoin(F.broadcast(copies))
    for col in IDS[table]:
        out = out.withColumn(col, F.concat(F.col(col), F.lit("~"), F.col("_copy").cast("string")))
    if table == "crm_profiles":
        out = out.withColumn("birth_date", F.date_add("birth_date", (F.col("_copy") * 400).cast("int")))
    if table == "crm_profiles_pii":
        out = out.withColumn("email", F.regexp_replace("email", "@", F.concat(F.lit("."), F.col("_copy"), F.lit("@"))))
    if ingested is not None and "_ingested_at" in out.columns:
        out = out.withColumn("_ingested_at", F.lit(ingested).cast("timestamp"))
    return out.drop("_copy")


def _land(base: Lake, lake: Lake, first: int, count: int, ingested: datetime | None) -> int:
    """Append copies of the base world's identity inputs to `lake`; returns the clickstream rows written."""
    for layer, table, name in (("silver", "clickstream_events", "clickstream_events"),
                               ("silver", "crm_profiles", "crm_profiles"),
                               (RESTRICTED, "crm_profiles_pii", "crm_profiles_pii")):  # fmt: skip
        out = _copy(base.read(base.ref(layer, name)), table, first, count, ingested)
        ref = lake.ref(layer, name)
        lake.ensure(ref, "crm_profiles" if layer == RESTRICTED else None)
        lake.append(out, ref)
    return base.read(base.ref("silver", "clickstream_events")).count() * count


def _graph(lake: Lake, run_id: str, rebuild: bool = False):
    settings = load_settings("local", [f"lake.root={lake.settings.lake_root}", f"identity.rebuild={rebuild}"])
    steps = Steps("identity")
    stats = update_graph(Lake(lake.spark, settings), Run.create(run_id=run_id), steps=steps)
    print(f"    {run_id} steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.seconds.items()), flush=True)
    return stats


def _map(lake: Lake) -> DataFrame:
    return lake.read(lake.ref("ops", "identity_map")).select("node", "component", "user_id")


def _comparisons_per_second(lake: Lake) -> tuple[int, float]:
    crm = lake.read(lake.ref("silver", "crm_profiles"))
    records = match_records(crm, lake.read(lake.ref(RESTRICTED, "crm_profiles_pii"))).localCheckpoint()
    model = lake.read(lake.ref("identity", "identity_match_model")).first()["model_json"]
    import json

    matcher = Matcher.open(records, json.loads(model))
    pairs, secs = timed(lambda: matcher.pairs(0.0).count())
    return pairs, pairs / secs


def _quality(base: Lake, work) -> str:
    persons = base.spark.read.csv(str(work / "truth" / "persons.csv"), header=True)
    customers = _map(base).where(F.col("node").startswith("c:"))
    predicted = customers.select(F.expr("substring(node, 3)").alias("item"), F.col("user_id").alias("cluster"))
    q = clustering_quality(
        predicted, persons.select(F.col("customer_id").alias("item"), F.col("person_id").alias("person"))
    )
    return (f"CRM records {q.items:,}: pairwise precision {q.precision:.4f}, recall {q.recall:.4f}, F1 {q.f1:.4f}; "
            f"over-merged persons {q.over_merged} of {q.predicted_persons:,} ({q.over_merge_rate:.3%})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    world_arguments(parser, users=1000, copies=False)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 16], help="history sizes, in world copies")
    args = parser.parse_args()
    args.days = args.days if args.days != 120 else 60
    with workdir(args.workdir, "audiencelake-bench-identity-") as work:
        base_settings = load_settings("local", [f"lake.root={work / 'base'}", f"lake.landing={work / 'landing'}"])
        spark = build_session(base_settings)
        spark.sparkContext.setLogLevel("ERROR")
        base = Lake(spark, base_settings)
        ingest_s = ingest_world(base, args.users, args.days, args.seed)
        print(f"world: {args.users} users x {args.days} days ingested in {ingest_s:.0f} s (identity included)")
        print(f"Spark {spark.version}, {spark.sparkContext.defaultParallelism} cores; quality on the world itself:")
        print(f"  {_quality(base, work)}", flush=True)
        rows = []
        for size in args.sizes:
            shutil.rmtree(work / f"lake-{size}", ignore_errors=True)  # derived from the base world: built anew
            lake = Lake(spark, load_settings("local", [f"lake.root={work / f'lake-{size}'}"]))
            history = _land(base, lake, 0, size, None)
            full, full_s = timed(lambda lake=lake, size=size: _graph(lake, f"full-{size}"))
            new = _land(base, lake, size, 1, datetime.now(UTC))
            inc, inc_s = timed(lambda lake=lake, size=size: _graph(lake, f"new-{size}"))
            incremental = _map(lake).localCheckpoint()
            again, again_s = timed(lambda lake=lake, size=size: _graph(lake, f"rebuild-{size}", rebuild=True))
            same = incremental.exceptAll(_map(lake)).count() == 0 and _map(lake).exceptAll(incremental).count() == 0
            pairs, rate = _comparisons_per_second(lake)
            rows.append((size, history, full_s, new, inc_s, again_s, same, inc, pairs, rate))
            print(f"  history x{size}: {history:,} events; full {full_s:.1f} s ({full.persons:,} persons); "
                  f"+{new:,} new events: incremental {inc_s:.1f} s ({inc.nodes_in_scope:,} nodes in scope, "
                  f"{inc.merges} merges); rebuild {again_s:.1f} s; incremental == rebuild: {same}; "
                  f"Splink {pairs:,} comparisons at {rate:,.0f}/s", flush=True)  # fmt: skip
        print(f"\n{'history':>8}{'events':>12}{'full s':>9}{'new events':>12}{'incr. s':>9}{'rebuild s':>11}"
              f"{'same':>6}{'comparisons/s':>15}")  # fmt: skip
        for size, history, full_s, new, inc_s, again_s, same, _, _, rate in rows:
            print(f"{'x' + str(size):>8}{history:>12,}{full_s:>9.1f}{new:>12,}{inc_s:>9.1f}{again_s:>11.1f}"
                  f"{str(same):>6}{rate:>15,.0f}")  # fmt: skip
        spark.stop()


if __name__ == "__main__":
    main()
