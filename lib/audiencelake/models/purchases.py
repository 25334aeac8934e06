"""Purchases as the models and uplift measurement read them from silver.orders."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.core.lake import Lake


def purchases(lake: Lake) -> DataFrame:
    """One row per order: (user_id, order_id, order_date, value net of discounts as a double)."""
    return (
        lake.read(lake.ref("silver", "orders"))
        .where(F.col("line_type") == "purchase")
        .groupBy("user_id", "order_id")
        .agg(
            F.min("order_date").alias("order_date"),
            F.sum(F.col("quantity") * F.col("unit_price") - F.col("discount")).cast("double").alias("value"),
        )
    )
