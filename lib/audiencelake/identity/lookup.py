"""Carry user ids recorded earlier over merges: an id retired into another (identity.identity_persons) reads as
the id that survived, following chains of merges."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.core.lake import Lake

MAX_HOPS = 20


def current_user_ids(lake: Lake, df: DataFrame, column: str = "user_id") -> DataFrame:
    """`df` with `column` replaced by the surviving id of every id merged away since it was recorded."""
    ref = lake.ref("identity", "identity_persons")
    if not lake.exists(ref):
        return df
    merged = (
        lake.read(ref)
        .where((F.col("status") == "retired") & F.col("merged_into").isNotNull())
        .select(F.col("user_id").alias("_old"), F.col("merged_into").alias("_new"))
        .localCheckpoint()
    )
    if not merged.limit(1).count():
        return df
    out = df
    for _ in range(MAX_HOPS):
        out = out.join(F.broadcast(merged), F.col(column) == F.col("_old"), "left")
        moved = out.where(F.col("_new").isNotNull()).limit(1).count()
        out = out.withColumn(column, F.coalesce("_new", column)).drop("_old", "_new")
        if not moved:
            break
    return out
