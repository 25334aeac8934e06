"""Delta layout: configured table properties on new and existing tables, and the optimize stage compacting the
recent fragmented partitions of an event table into one file Z-ordered by user_id, rows unchanged, older days
untouched, nothing rewritten on a second run; a read of one person then skips the other files of the day."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from audiencelake.core.config import Settings
from audiencelake.core.contracts import contract
from audiencelake.core.errors import ContractError
from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from audiencelake.ingest.layout import AUTO_COMPACT, MIN_FILES, optimize_tables
from helpers import make_contract

TABLE = "clickstream_events"
DAYS = [date(2026, 3, 1) + timedelta(days=i) for i in range(3)]
WRITES = 6  # appends per day: six small files in each day's partition


def _events(spark, day: date, write: int, people: list[str] | None = None):
    """One event per person on `day` (by default 40 people of their own per write), written by `write`."""
    schema = contract(TABLE).table_schema()
    rows = []
    for i, person in enumerate(people or [f"U{write:02d}{i:03d}" for i in range(40)]):
        ts = datetime.combine(day, datetime.min.time()) + timedelta(minutes=i)
        row = {"event_id": f"{day}-{write}-{person}", "event_ts": ts, "event_type": "page_view", "anonymous_id": f"a{person}",
               "platform": "web", "event_date": day, "user_id": person, "_batch_id": f"b{write}", "_file": "f",
               "_ingested_at": ts, "_record_hash": "h"}  # fmt: skip
        rows.append({f.name: row.get(f.name) for f in schema.fields})
    return spark.createDataFrame(rows, schema)


def _files(lake: Lake, day: date) -> set[str]:
    df = lake.read(lake.ref("silver", TABLE)).where(F.col("event_date") == day)
    return {r[0] for r in df.select("_metadata.file_path").distinct().collect()}


@pytest.fixture
def fragmented(spark, settings: Settings) -> Lake:
    lake = Lake(spark, settings)
    ref = lake.ref("silver", TABLE)
    lake.ensure(ref)  # partitioned by event_date, as its contract says
    for day in DAYS:
        for write in range(WRITES):
            lake.append(_events(spark, day, write).coalesce(1), ref)
    return lake


def test_new_tables_get_the_configured_properties(fragmented: Lake) -> None:
    properties = fragmented.delta(fragmented.ref("silver", TABLE)).detail().first()["properties"]
    for key, value in fragmented.settings.lake.table_properties.items():
        assert properties.get(key) == value, key


def test_optimize_compacts_recent_fragmented_days_into_one_z_ordered_file(fragmented: Lake) -> None:
    lake, ref = fragmented, fragmented.ref("silver", TABLE)
    lake.spark.sql(f"ALTER TABLE delta.`{ref.location}` UNSET TBLPROPERTIES ('delta.autoOptimize.autoCompact')")
    before = lake.read(ref).collect()
    old_day_files = _files(lake, DAYS[0])
    assert all(len(_files(lake, d)) == WRITES for d in DAYS)  # fewer small files than a compaction waits for
    run = Run.create(as_of=DAYS[-1].isoformat(), run_id="opt-1")
    settings = lake.settings.model_copy(update={"lake": lake.settings.lake.model_copy(update={"optimize_days": 2})})
    lake = Lake(lake.spark, settings)

    counts = optimize_tables(lake, run)

    assert counts == {"tables": 1, "properties_set": 1, "partitions": 2, "files_removed": 2 * WRITES,
                      "files_added": 2, "compacted_partitions": 0, "compacted_files_removed": 0,
                      "compactions_deferred": 0}  # fmt: skip
    assert sorted(lake.read(ref).collect()) == sorted(before)
    assert _files(lake, DAYS[0]) == old_day_files  # outside optimize_days: untouched
    assert [len(_files(lake, d)) for d in DAYS[1:]] == [1, 1]
    last = lake.delta(ref).history(1).first()
    assert last["operation"] == "OPTIMIZE" and '"user_id"' in last["operationParameters"]["zOrderBy"], last
    assert lake.delta(ref).detail().first()["properties"]["delta.autoOptimize.autoCompact"] == "true"
    version = lake.version(ref)
    assert optimize_tables(lake, run)["files_removed"] == 0 and lake.version(ref) == version  # nothing to redo


def _quarantined(spark, source: str):
    """One quarantine row of `source` (ops.quarantine is partitioned by source)."""
    row = {"source": source, "table": "orders", "stage": "bronze", "reason": "malformed_record", "rule": None,
           "file": "f.csv", "batch_id": "b", "raw": "x", "record_hash": "h", "run_id": "r",
           "quarantined_at": datetime(2026, 3, 1)}  # fmt: skip
    return spark.createDataFrame([row], contract("quarantine").table_schema())


def test_without_compaction_after_commits_optimize_compacts_the_crowded_partitions(fragmented: Lake) -> None:
    """Local sessions leave compaction to the optimize stage (conf/local.yaml): every partition of any table with
    `minNumFiles` files or more is compacted, also outside the recent days and whatever its value's characters;
    a partition below the threshold is left as it is."""
    lake, ref, spark = fragmented, fragmented.ref("silver", TABLE), fragmented.spark
    assert spark.conf.get(AUTO_COMPACT) == "false"
    lake.append(_events(spark, DAYS[0], WRITES).coalesce(1), ref)  # DAYS[0]: one file over the threshold
    quarantine, odd = lake.ref("ops", "quarantine"), "it's a/b%c d"
    lake.ensure(quarantine)
    for _ in range(WRITES + 1):
        lake.append(_quarantined(spark, odd), quarantine)
    before = sorted(lake.read(ref).collect())
    spark.conf.set(MIN_FILES, str(WRITES + 1))
    try:
        counts = optimize_tables(lake, Run.create(as_of="2026-06-01", run_id="opt-3"))  # no recent day is fragmented
        again = optimize_tables(lake, Run.create(as_of="2026-06-01", run_id="opt-4"))
    finally:
        spark.conf.unset(MIN_FILES)
    assert counts["partitions"] == 0 and counts["compactions_deferred"] == 0
    assert (counts["compacted_partitions"], counts["compacted_files_removed"]) == (2, 2 * (WRITES + 1))
    assert [len(_files(lake, d)) for d in DAYS] == [1, WRITES, WRITES]
    assert sorted(lake.read(ref).collect()) == before
    kept = lake.read(quarantine).where(F.col("source") == odd)
    assert kept.count() == WRITES + 1 and kept.select("_metadata.file_path").distinct().count() == 1
    assert again["compacted_partitions"] == 0  # one file where there were many; the others still below


def _files_scanned(df) -> int:
    """Files Spark's scan of `df` opened (its `numFiles` metric, after Delta's data skipping)."""
    plan = df._jdf.queryExecution().executedPlan()
    plan.executeCollect()
    leaves = plan.collectLeaves()
    return sum(int(leaves.apply(i).metrics().apply("numFiles").value()) for i in range(leaves.length()))


def test_a_read_of_one_person_skips_files_after_z_order(spark, settings: Settings) -> None:
    lake, ref, day = Lake(spark, settings), Lake(spark, settings).ref("silver", TABLE), DAYS[0]
    people = [f"U{i:03d}" for i in range(400)]
    rng = random.Random(5)
    lake.ensure(ref)
    for write in range(4):  # four files, each with people from the whole range: statistics skip none of them
        chosen = sorted(set(rng.sample(people, 100)) | {people[0], people[-1]} | ({"U201"} if write == 2 else set()))
        lake.append(_events(spark, day, write, chosen).coalesce(1), ref)
    lookup = lake.read(ref).where((F.col("event_date") == day) & (F.col("user_id") == "U201"))
    rows_before = sorted(lookup.collect())
    assert _files_scanned(lookup) == 4
    total = sum(p.stat().st_size for p in Path(ref.location).rglob("*.parquet"))
    spark.conf.set("spark.databricks.delta.optimize.maxFileSize", str(total // 4))
    try:
        optimize_tables(lake, Run.create(as_of=day.isoformat(), run_id="opt-2"))
    finally:
        spark.conf.unset("spark.databricks.delta.optimize.maxFileSize")
    assert len(_files(lake, day)) >= 3  # Z-ordered into ranges of user_id
    after = lake.read(ref).where((F.col("event_date") == day) & (F.col("user_id") == "U201"))
    assert _files_scanned(after) == 1 and sorted(after.collect()) == rows_before


def test_cluster_by_must_name_a_column_outside_the_partition() -> None:
    with pytest.raises(Exception, match="cluster_by: unknown column 'nope'"):
        make_contract(cluster_by=["nope"])
    with pytest.raises(Exception, match=r"cluster_by: \['day'\] are partition columns"):
        make_contract(partition_by=["day"], cluster_by=["day"])
    assert ContractError  # the loader wraps these in ContractError naming the file (tests/test_contracts.py)
