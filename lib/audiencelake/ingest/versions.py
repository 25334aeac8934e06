"""Decide, per conforming row, whether it enters silver: exact duplicates, conflicting versions and superseded
versions are resolved within the batch and against the rows silver already holds (latest `order_by` wins).

Pure DataFrame transforms over a frame with the contract's columns, `_record_hash` and `_reason`.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from audiencelake.core.contracts import Contract

TO_SILVER, DUPLICATE, SUPERSEDED, CONFLICT = "to_silver", "duplicate", "superseded", "conflicting_versions"


def resolve_versions(df: DataFrame, c: Contract, existing: DataFrame | None, carry: tuple[str, ...] = ()) -> DataFrame:
    """Set `_disposition` on every row: the `_reason` rows keep it as `quarantined`; the others get one of
    to_silver, duplicate, superseded or conflicting_versions (which also sets `_reason`). `_in_silver` tells
    whether silver already holds the row's key, `_replaced_order` is that row's `order_by` value and
    `_replaced_<name>` its value of each column in `carry`.

    Args:
        df: the batch, with `_reason` null for rows that passed conformance and the quality gate.
        c: the contract (keys and order_by).
        existing: silver's (keys, order_by, `_record_hash`) of rows written by other batches, or None.
    """
    keys, order = [F.col(f"`{k}`") for k in c.keys], F.col(f"`{c.order_by}`")
    ok = F.col("_reason").isNull()
    version = Window.partitionBy(*keys, order)
    copies = Window.partitionBy(*keys, order, "_record_hash", ok).orderBy("_file", "_raw")
    latest = Window.partitionBy(*keys)
    df = (
        df.withColumn("_variants", F.when(ok, F.size(F.collect_set(F.when(ok, F.col("_record_hash"))).over(version))))
        .withColumn("_copy", F.when(ok, F.row_number().over(copies)))
        .withColumn("_latest", F.max(F.when(ok & (F.col("_variants") == 1), order)).over(latest))
    )
    if existing is not None:
        prior = existing.select(
            *[F.col(f"`{k}`").alias(f"_prior_{k}") for k in c.keys],
            F.col(f"`{c.order_by}`").alias("_prior_order"),
            F.col("_record_hash").alias("_prior_hash"),
            *[F.col(f"`{name}`").alias(f"_replaced_{name}") for name in carry],
        )
        cond = [F.col(f"`{k}`").eqNullSafe(F.col(f"_prior_{k}")) for k in c.keys]
        df = df.join(prior, cond, "left").drop(*[f"_prior_{k}" for k in c.keys])
    else:
        df = df.withColumn("_prior_order", F.lit(None)).withColumn("_prior_hash", F.lit(None))
        df = df.select("*", *[F.lit(None).alias(f"_replaced_{name}") for name in carry])
    prior_order, prior_hash = F.col("_prior_order"), F.col("_prior_hash")
    disposition = (
        F.when(~ok, F.lit("quarantined"))
        .when(F.col("_variants") > 1, F.lit(CONFLICT))
        .when((order == prior_order) & (F.col("_record_hash") != prior_hash), F.lit(CONFLICT))
        .when(F.col("_copy") > 1, F.lit(DUPLICATE))
        .when((order == prior_order) & (F.col("_record_hash") == prior_hash), F.lit(DUPLICATE))
        .when(order < F.col("_latest"), F.lit(SUPERSEDED))
        .when(order < prior_order, F.lit(SUPERSEDED))
        .otherwise(F.lit(TO_SILVER))
    )
    return (
        df.withColumn("_disposition", disposition)
        .withColumn("_reason", F.when(F.col("_disposition") == CONFLICT, F.lit(CONFLICT)).otherwise(F.col("_reason")))
        .withColumn(
            "_rule",
            F.when(F.col("_disposition") == CONFLICT, F.lit(",".join([*c.keys, c.order_by]))).otherwise(F.col("_rule")),
        )
        .withColumn("_stage", F.when(F.col("_disposition") == CONFLICT, F.lit("silver")).otherwise(F.col("_stage")))
        .withColumn(
            "_disposition", F.when(F.col("_disposition") == CONFLICT, "quarantined").otherwise(F.col("_disposition"))
        )
        .withColumn("_in_silver", F.col("_prior_hash").isNotNull())
        .withColumnRenamed("_prior_order", "_replaced_order")
        .drop("_variants", "_copy", "_latest", "_prior_hash")
    )
