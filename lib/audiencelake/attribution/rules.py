"""Rules-based attribution over gold.journeys, in one pass: every touchpoint of every journey gets its credit under
each model (first touch, last touch, last non-direct, linear, time decay, position based) from its position, the
journey's length and times; the credits of a journey sum to 1 under each model, so a model's credits sum to the
conversions with a touchpoint and their revenue. Spark SQL over the arrays: nothing per user on the driver."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.tags.channels import AttributionModels

MODELS = ("first_touch", "last_touch", "last_non_direct", "linear", "time_decay", "position_based")


def credits(journeys: DataFrame, params: AttributionModels) -> DataFrame:
    """(model, order_id, conversion_ts, revenue, channel, campaign, credit) for every touchpoint of the journeys
    with at least one, under each model of MODELS."""
    first, middle, last = params.position_weights
    # seconds before the conversion, halved every half_life_days
    decay = "power(0.5, (unix_seconds(conversion_ts) - unix_seconds({t}.ts)) / {h})".replace(
        "{h}", repr(params.half_life_days * 86400.0)
    )
    with_totals = journeys.where(F.size("touchpoints") > 0).select(
        "order_id", "conversion_ts", "revenue", "touchpoints", F.size("touchpoints").alias("n"),
        # the last touchpoint that is not a direct visit (-1: every one is direct)
        F.expr("array_max(transform(touchpoints, (t, j) -> IF(t.channel != 'direct', j, -1)))").alias("nd"),
        F.expr(f"aggregate(touchpoints, 0D, (acc, t) -> acc + {decay.format(t='t')})").alias("decay_total"),
    )  # fmt: skip
    points = with_totals.select("*", F.posexplode("touchpoints").alias("i", "tp"))
    i, n = F.col("i"), F.col("n")
    one = F.lit(1.0)
    position = (
        F.when(n == 1, one).when(n == 2, F.lit(0.5))
        .when(i == 0, F.lit(first)).when(i == n - 1, F.lit(last)).otherwise(F.lit(middle) / (n - 2))
    )  # fmt: skip
    by_model = {
        "first_touch": F.when(i == 0, one),
        "last_touch": F.when(i == n - 1, one),
        "last_non_direct": F.when(i == F.when(F.col("nd") >= 0, F.col("nd")).otherwise(n - 1), one),
        "linear": one / n,
        "time_decay": F.expr(decay.format(t="tp")) / F.col("decay_total"),
        "position_based": position,
    }
    stacked = F.explode(F.array(*[F.struct(F.lit(m).alias("model"), c.alias("credit")) for m, c in by_model.items()]))
    out = points.select("order_id", "conversion_ts", "revenue", "tp", stacked.alias("m"))
    return out.select(
        F.col("m.model").alias("model"), "order_id", "conversion_ts", "revenue",
        F.col("tp.channel").alias("channel"), F.col("tp.campaign").alias("campaign"),
        F.coalesce(F.col("m.credit"), F.lit(0.0)).alias("credit"),
    ).where(F.col("credit") > 0)  # fmt: skip


def attribute(journeys: DataFrame, params: AttributionModels, as_of) -> DataFrame:
    """gold.attribution rows: each model's credited conversions and revenue per channel, campaign and month."""
    rows = credits(journeys, params).groupBy(
        "model", "channel", "campaign", F.date_format("conversion_ts", "yyyy-MM").alias("period")
    )
    return rows.agg(
        F.sum("credit").alias("conversions"), F.sum(F.col("credit") * F.col("revenue")).alias("revenue")
    ).withColumn("as_of", F.lit(as_of))
