"""Erase a person's rows from every Delta table of the lake, then VACUUM the files that held them.

A row is the person's when one of its string columns equals one of the person's keys, one of its string arrays
holds one, or one of its string columns holds a person's token inside JSON text (bronze `_raw`, quarantine `raw`,
JSON columns). The values reach the matching as small broadcast frames and each table is rewritten by a MERGE
with the matched rows' keys, so the values are not in the Delta log: a DELETE with literals would record them in
the commit's predicate.
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from audiencelake.core.config import DELTA_RETENTION_HOURS
from audiencelake.core.contracts import contract
from audiencelake.core.lake import WORK, Lake, TableRef
from audiencelake.erasure.person import Person

log = logging.getLogger("audiencelake.erasure")
CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
# VACUUM lists a table's folders in this many tasks (Spark's default: 10,000): on a few cores, at a small lake, the
# task overhead dominated (clickstream 67 s -> 3 s with the session's default parallelism).
LISTING = "spark.sql.sources.parallelPartitionDiscovery.parallelism"


def _frame(lake: Lake, column: str, values: set[str]) -> DataFrame:
    return F.broadcast(lake.spark.createDataFrame([(v,) for v in sorted(values)], f"{column} string"))


def matching_rows(lake: Lake, target: DataFrame, person: Person) -> DataFrame:
    """The rows of `target` that are the person's: one scan joins every string value (array elements included)
    with the keys; rows with JSON text (a `"` in a string column) are searched for the tokens."""
    strings = [f.name for f in target.schema.fields if isinstance(f.dataType, T.StringType)]
    arrays = [f.name for f in target.schema.fields
              if isinstance(f.dataType, T.ArrayType) and isinstance(f.dataType.elementType, T.StringType)]  # fmt: skip
    if not strings and not arrays:
        return target.limit(0)
    values = [F.array(*[F.col(f"`{c}`") for c in strings])] if strings else []
    values += [F.coalesce(F.col(f"`{c}`"), F.array().cast("array<string>")) for c in arrays]
    exploded = target.withColumn("_value", F.explode(F.concat(*values)))
    by_key = exploded.join(_frame(lake, "_key", person.keys), F.col("_value") == F.col("_key"), "left_semi")
    text = exploded.where(F.instr("_value", '"') > 0)
    by_token = text.join(_frame(lake, "_token", person.tokens), F.instr(F.lower("_value"), F.col("_token")) > 0,
                         "left_semi")  # fmt: skip
    return by_key.unionByName(by_token).drop("_value").dropDuplicates()


def _keys(layer: str, name: str) -> list[str]:
    """The contract keys of a table (none for a work table)."""
    if layer == WORK:
        return []
    return contract("raw_records" if layer == "bronze" else name.removesuffix("_pii")).keys


def erase_rows(lake: Lake, person: Person, keep: dict[str, str] | None = None) -> dict[str, int]:
    """Delete the person's rows from every table that has some; returns rows deleted per table. The MERGE deletes
    every row sharing a matched row's contract keys (all its columns for a table without keys). `keep`: per table
    (`layer.name`), a SQL condition of rows to leave even when they match."""
    erased = {}
    for layer, name in lake.table_names():
        ref = lake.ref(layer, name)
        if not lake.exists(ref):
            continue
        target = lake.read(ref)
        matched = matching_rows(lake, target, person)
        if str(ref) in (keep or {}):
            matched = matched.where(f"NOT ({keep[str(ref)]})")
        matched = matched.localCheckpoint()
        rows = matched.count()
        if not rows:
            continue
        keys = _keys(layer, name) or [f.name for f in target.schema.fields if not isinstance(f.dataType, T.MapType)]
        condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
        source = matched.select(*[F.col(f"`{k}`") for k in keys]).distinct()
        lake.delta(ref).alias("t").merge(source.alias("s"), condition).whenMatchedDelete().execute()
        _purge_deletion_vectors(lake, ref)
        erased[str(ref)] = rows
        log.info("erasure: %d rows deleted from %s", rows, ref)
    return erased


def _purge_deletion_vectors(lake: Lake, ref: TableRef) -> None:
    """With deletion vectors on, a DELETE only marks rows; REORG ... APPLY (PURGE) rewrites the files without them."""
    if lake.properties(ref).get("delta.enableDeletionVectors") == "true":
        lake.spark.sql(f"REORG TABLE {ref.sql} APPLY (PURGE)")


def vacuum(lake: Lake, tables: list[str], hours: int) -> None:
    """VACUUM the tables (`layer.name`) with `hours` of retention. Below Delta's 7-day default its safety check is
    lifted for the call: the configuration asked for that retention. Folders are listed in as many tasks as the
    session has default parallelism."""
    spark = lake.spark
    changes = {LISTING: str(spark.sparkContext.defaultParallelism)}
    if hours < DELTA_RETENTION_HOURS:
        changes[CHECK] = "false"
    before = {key: spark.conf.get(key, None) for key in changes}
    for key, value in changes.items():
        spark.conf.set(key, value)
    try:
        for table in tables:
            layer, name = table.split(".", 1)
            lake.delta(lake.ref(layer, name)).vacuum(float(hours))
    finally:
        for key, value in before.items():
            spark.conf.unset(key) if value is None else spark.conf.set(key, value)
