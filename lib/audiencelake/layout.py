"""Delta table layout: the table properties of conf (`lake.table_properties`) on existing silver tables, and the
recent partitions of the event tables compacted and Z-ordered by their contract's `cluster_by` columns (user_id),
so that reads of one person (audiences, erasure, lookups) skip most files of a day."""

from __future__ import annotations

import logging
from datetime import date, timedelta

from pyspark.sql import functions as F

from audiencelake.contracts import Contract, contracts
from audiencelake.lake import Lake, TableRef
from audiencelake.runs import Run

log = logging.getLogger("audiencelake.layout")


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


def optimize_tables(lake: Lake, run: Run) -> dict[str, int]:
    """Table properties, then compaction and Z-order of the recent partitions, for every partitioned silver table."""
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
    return totals
