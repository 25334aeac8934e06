"""Journeys (gold.journeys): each conversion (an order) with the person's touchpoints before it, within the lookback
window: visits (a session's first event, classified by conf/channels.yaml) and campaign touches of treatment
groups, identity-stitched (silver's user_id), oldest first. Built with joins per user, never on the driver."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.core.lake import Lake
from audiencelake.tags.channels import ChannelRules

TOUCHPOINT = "struct<ts:timestamp,channel:string,campaign:string,kind:string>"
POINTS = "user_id string, ts timestamp, channel string, campaign string, kind string"


def _start(day: date) -> datetime:
    return datetime.combine(day, time())


def touchpoints(lake: Lake, rules: ChannelRules, start: date, end: date) -> DataFrame:
    """(user_id, ts, channel, campaign, kind) of the visits and campaign touches in [start, end] (dates, UTC), from
    whichever of silver.clickstream_events and silver.campaign_touches exist (an empty frame when neither does)."""
    parts = []
    clicks, touches = lake.ref("silver", "clickstream_events"), lake.ref("silver", "campaign_touches")
    if lake.exists(clicks):
        visits = lake.read(clicks).where(F.col("event_date").between(F.lit(start), F.lit(end)))
        parts.append(
            visits.where(F.col("session_start") & F.col("user_id").isNotNull()).select(
                "user_id",
                F.col("event_ts").alias("ts"),
                F.expr(rules.expression()).alias("channel"),
                F.coalesce("utm_campaign", F.lit("")).alias("campaign"),
                F.lit("visit").alias("kind"),
            )  # fmt: skip
        )
    if lake.exists(touches):
        mapping = F.create_map(*[F.lit(x) for kv in rules.journeys.touch_channels.items() for x in kv])
        sent = lake.read(touches).where(F.col("touch_date").between(F.lit(start), F.lit(end)))
        sent = sent.where((F.col("group") == "treatment") & F.col("touch_type").isin(*rules.journeys.touch_types))
        parts.append(
            sent.select(
                "user_id",
                F.col("touch_ts").alias("ts"),
                F.coalesce(mapping[F.col("channel")], F.lit(rules.default)).alias("channel"),
                F.col("campaign_id").alias("campaign"),
                F.col("touch_type").alias("kind"),
            )  # fmt: skip
        )
    return reduce(DataFrame.unionByName, parts) if parts else lake.spark.createDataFrame([], POINTS)


def conversions(lake: Lake, start: date, end: date) -> DataFrame:
    """(user_id, order_id, conversion_ts, revenue) of the orders whose first purchase line is in [start, end]."""
    lines = lake.read(lake.ref("silver", "orders")).where(F.col("line_type") == "purchase")
    orders = (
        lines.where(F.col("order_date").between(F.lit(start), F.lit(end)))
        .groupBy("user_id", "order_id")
        .agg(F.min("order_ts").alias("conversion_ts"), F.sum("amount").cast("double").alias("revenue"))
    )
    return orders.where(F.col("conversion_ts") < F.lit(_start(end + timedelta(days=1))))


def build_journeys(lake: Lake, rules: ChannelRules, as_of: date) -> DataFrame:
    """gold.journeys rows as of `as_of`: the conversions of the `window_days` up to it, each with the touchpoints
    of the `lookback_days` before it (strictly before the conversion), oldest first; none gives an empty array."""
    j = rules.journeys
    start = as_of - timedelta(days=j.window_days - 1)
    converted = conversions(lake, start, as_of)
    points = touchpoints(lake, rules, start - timedelta(days=j.lookback_days), as_of).alias("p")
    c = converted.alias("c")
    within = (
        (F.col("p.user_id") == F.col("c.user_id"))
        & (F.col("p.ts") < F.col("c.conversion_ts"))
        & (F.col("p.ts") >= F.col("c.conversion_ts") - F.expr(f"INTERVAL {j.lookback_days} DAYS"))
    )
    point = F.struct(F.col("p.ts").alias("ts"), "p.channel", "p.campaign", "p.kind")
    paths = (
        c.join(points, within, "left")
        .groupBy("c.user_id", "c.order_id", "c.conversion_ts", "c.revenue")
        .agg(F.array_sort(F.collect_list(F.when(F.col("p.ts").isNotNull(), point))).alias("touchpoints"))
    )
    return paths.select(
        "user_id", "order_id", "conversion_ts", "revenue", F.col("touchpoints").cast(f"array<{TOUCHPOINT}>"),
        F.lit(as_of).alias("as_of"),
    )  # fmt: skip
