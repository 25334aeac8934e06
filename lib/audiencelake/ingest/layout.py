"""Delta table layout: the table properties of conf (`lake.table_properties`) on existing silver tables, and the
recent partitions of the event tables compacted and Z-ordered by their contract's `cluster_by` columns (user_id),
so that reads of one person (audiences, erasure, lookups) skip most files of a day. Where the session does not let
Delta compact after each commit (`conf/local.yaml`), every table with a crowded partition is compacted here, once
per run, at Delta's own threshold."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date, timedelta
from urllib.parse import unquote

from delta.exceptions import DeltaConcurrentModificationException
from pyspark.sql import functions as F

from audiencelake.core.contracts import Contract, contracts
from audiencelake.core.lake import Lake, TableRef
from audiencelake.core.runs import Run
from audiencelake.core.sql import sql_literal

log = logging.getLogger("audiencelake.ingest.layout")
AUTO_COMPACT = "spark.databricks.delta.autoCompact.enabled"  # the session's say, above the tables' property
MIN_FILES = "spark.databricks.delta.autoCompact.minNumFiles"  # files in a partition that start a compaction
DEFAULT_MIN_FILES = 50  # Delta's default for MIN_FILES
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"  # the folder of a null partition value


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
    setting, else the tables' property as `lake.table_properties` gives it to them (Delta's default: off)."""
    session = lake.spark.conf.get(AUTO_COMPACT, None)
    if session is not None:
        return session.strip().lower() != "false"
    return lake.settings.lake.table_properties.get("delta.autoOptimize.autoCompact", "false").lower() != "false"


def _partition(path: str) -> tuple[tuple[str, str | None], ...]:
    """The (column, value) pairs of a data file's Hive-style partition folders; none in an unpartitioned table."""
    pairs = []
    for folder in reversed(path.split("/")[:-1]):
        if "=" not in folder:
            break
        column, value = folder.split("=", 1)
        pairs.append((unquote(column), None if value == NULL_PARTITION else unquote(value)))
    return tuple(reversed(pairs))


def crowded_partitions(lake: Lake, ref: TableRef, min_files: int) -> list[tuple[tuple[str, str | None], ...]]:
    """The partitions of `ref` (`()` for an unpartitioned table) holding `min_files` data files or more, counted
    from the paths of the snapshot's files (no data read). With optimized writes a commit adds at most one small
    file to a partition, so a table with fewer commits is not listed."""
    optimized = lake.settings.lake.table_properties.get("delta.autoOptimize.optimizeWrite", "").lower() == "true"
    if optimized and lake.version(ref) + 1 < min_files:
        return []
    counts = Counter(_partition(path) for path in lake.read(ref).inputFiles())
    return sorted((p for p, n in counts.items() if n >= min_files), key=str)


def _partition_filter(partitions: list[tuple[tuple[str, str | None], ...]]) -> str | None:
    """A SQL condition selecting `partitions`; None for the unpartitioned table's `()`."""
    terms = [
        " AND ".join(f"`{c}` IS NULL" if v is None else f"`{c}` = {sql_literal(v)}" for c, v in p)
        for p in partitions
        if p
    ]
    return " OR ".join(f"({t})" for t in terms) or None


def compact_crowded_tables(lake: Lake) -> dict[str, int]:
    """Where Delta does not compact after each commit: every table's crowded partitions, each into as few files as
    Delta's bin-packing makes (the threshold is Delta's own, `MIN_FILES`). A table a running stream commits to at
    the same moment is left for the next run."""
    totals = {"compacted_partitions": 0, "compacted_files_removed": 0, "compactions_deferred": 0}
    if compacted_after_commit(lake):
        return totals
    min_files = int(lake.spark.conf.get(MIN_FILES, str(DEFAULT_MIN_FILES)))
    for layer, name in lake.table_names():
        ref = lake.ref(layer, name)
        partitions = crowded_partitions(lake, ref, min_files) if lake.exists(ref) else []
        if not partitions:
            continue
        builder = lake.delta(ref).optimize()
        where = _partition_filter(partitions)
        try:
            result = (builder.where(where) if where else builder).executeCompaction()
        except DeltaConcurrentModificationException as exc:
            log.warning("optimize %s: compaction left for the next run (%s)", ref, type(exc).__name__)
            totals["compactions_deferred"] += 1
            continue
        removed = int(result.select("metrics.numFilesRemoved").first()[0] or 0)
        log.info("optimize %s: %d partitions, %d small files compacted", ref, len(partitions), removed)
        totals["compacted_partitions"] += len(partitions)
        totals["compacted_files_removed"] += removed
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
