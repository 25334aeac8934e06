"""Delta table layout: the table properties of conf (`lake.table_properties`) on existing silver tables, and the
recent partitions of the event tables compacted and Z-ordered by their contract's `cluster_by` columns (user_id),
so that reads of one person (audiences, erasure, lookups) skip most files of a day. Where the session does not let
Delta compact after each commit (`conf/local.yaml`), every table with a crowded partition is compacted here, once
per run, at Delta's own threshold."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date, timedelta

from pyspark.sql import functions as F

from audiencelake.contracts import Contract, contracts
from audiencelake.lake import Lake, TableRef
from audiencelake.runs import Run

log = logging.getLogger("audiencelake.layout")
AUTO_COMPACT = "spark.databricks.delta.autoCompact.enabled"  # the session's say, above the tables' property
MIN_FILES = "spark.databricks.delta.autoCompact.minNumFiles"  # files in a partition that start a compaction
DEFAULT_MIN_FILES = 50  # Delta's default for MIN_FILES


def set_table_properties(lake: Lake, ref: TableRef) -> bool:
    """Give an existing table the configured properties it lacks (one commit, none when it has them all)."""
    wanted = lake.settings.lake.table_properties
    have = lake.properties(ref)
    missing = {k: v for k, v in wanted.items() if have.get(k) != v}
    if not missing:
        return False
    pairs = ", ".join(f"'{k}' = '{v}'" for k, v in sorted(missing.items()))
    lake.spark.sql(f"ALTER TABLE {ref.sql} SET TBLPROPERTIES ({pairs})")
    return True


def fragmented_partitions(lake: Lake, ref: TableRef, column: str, since: date, until: date) -> list[str]:
    """The values of date partition `column` in [since, until] holding more than one data file (files counted by
    Spark over the pruned partitions' file metadata; one row per day reaches the driver)."""
    files = (
        lake.read(ref)
        .where(F.col(column).between(F.lit(since), F.lit(until)))
        .groupBy(F.col(column).cast("string").alias("day"))
        .agg(F.countDistinct("_metadata.file_path").alias("files"))
        .where("files > 1")
    )
    return sorted(r["day"] for r in files.collect())


def optimize_table(lake: Lake, c: Contract, run: Run) -> dict[str, int]:
    """Rewrite each partition of the last `lake.optimize_days` days up to the run date that holds more than one
    file into one, Z-ordered by `cluster_by`; returns the partitions, files removed and files added. A partition
    already in one file is left as it is, so a second run rewrites nothing."""
    ref, column = lake.ref("silver", c.table), c.partition_by[0]
    since = run.as_of - timedelta(days=lake.settings.lake.optimize_days - 1)
    days = fragmented_partitions(lake, ref, column, since, run.as_of)
    if not days:
        return {"partitions": 0, "files_removed": 0, "files_added": 0}
    builder = lake.delta(ref).optimize().where(f"`{column}` IN ({', '.join(repr(d) for d in days)})")
    result = builder.executeZOrderBy(*c.cluster_by) if c.cluster_by else builder.executeCompaction()
    metrics = result.select("metrics.numFilesRemoved", "metrics.numFilesAdded").first()
    return {"partitions": len(days), "files_removed": int(metrics[0] or 0), "files_added": int(metrics[1] or 0)}


def compacted_after_commit(lake: Lake) -> bool:
    """Whether Delta compacts a table's crowded partitions after each commit in this session: the session's
    setting, else the tables' property as `lake.table_properties` gives it to them."""
    session = lake.spark.conf.get(AUTO_COMPACT, None)
    if session is not None:
        return session.strip().lower() == "true"
    return lake.settings.lake.table_properties.get("delta.autoOptimize.autoCompact", "").lower() == "true"


def crowded(lake: Lake, ref: TableRef, min_files: int) -> bool:
    """Whether a partition of `ref` (the table itself when it has none) holds `min_files` data files or more,
    counted from the paths of the snapshot's files (no data read). A table with fewer commits is not listed: with
    optimized writes a commit adds at most one small file to a partition."""
    if lake.version(ref) + 1 < min_files:
        return False
    folders = Counter(path.rsplit("/", 1)[0] for path in lake.read(ref).inputFiles())
    return max(folders.values(), default=0) >= min_files


def compact_crowded_tables(lake: Lake) -> dict[str, int]:
    """Compact every table of the lake with a crowded partition (Delta's bin-packing: each partition's small files
    into one), where Delta does not after each commit; the threshold is Delta's own (`MIN_FILES`)."""
    totals = {"compacted_tables": 0, "compacted_files_removed": 0}
    if compacted_after_commit(lake):
        return totals
    min_files = int(lake.spark.conf.get(MIN_FILES, str(DEFAULT_MIN_FILES)))
    for layer, name in lake.table_names():
        ref = lake.ref(layer, name)
        if not lake.exists(ref) or not crowded(lake, ref, min_files):
            continue
        removed = lake.delta(ref).optimize().executeCompaction().select("metrics.numFilesRemoved").first()[0]
        log.info("optimize %s: %s small files compacted", ref, removed)
        totals["compacted_tables"] += 1
        totals["compacted_files_removed"] += int(removed or 0)
    return totals


def optimize_tables(lake: Lake, run: Run) -> dict[str, int]:
    """Table properties, then compaction and Z-order of the recent partitions, for every partitioned silver table;
    then, where Delta does not compact after each commit, the crowded partitions of every table."""
    totals = {"tables": 0, "properties_set": 0, "partitions": 0, "files_removed": 0, "files_added": 0}
    for c in contracts().values():
        ref = lake.ref("silver", c.table)
        if c.layer != "silver" or not c.partition_by or not lake.exists(ref):
            continue
        totals["tables"] += 1
        totals["properties_set"] += set_table_properties(lake, ref)
        files = optimize_table(lake, c, run)
        log.info("optimize %s: %s", ref, files)
        for key, value in files.items():
            totals[key] += value
    return totals | compact_crowded_tables(lake)
