"""Identity stitching: anonymous ids and devices -> user_id through login events, transitively.

Nodes are `a:<anonymous_id>`, `d:<device_id>` and `c:<customer_id>`; edges join an anonymous id to the device it
was seen on and to the customer who logged in with it. A component with exactly one customer resolves all its
anonymous ids and devices to that customer; a component with several (a shared device) resolves none of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.contracts import Contract
from audiencelake.identity.components import connected_components
from audiencelake.lake import Lake, check_schema
from audiencelake.runs import Run

EVENTS = "clickstream_events"


def identity_edges(events: DataFrame) -> DataFrame:
    """(src, dst) edges from clickstream events: anonymous id - device, anonymous id - logged-in customer."""
    anon = F.concat(F.lit("a:"), "anonymous_id")
    device = events.where(F.col("device_id").isNotNull()).select(
        anon.alias("src"), F.concat(F.lit("d:"), "device_id").alias("dst")
    )
    login = events.where((F.col("event_type") == "login") & F.col("customer_id").isNotNull()).select(
        anon.alias("src"), F.concat(F.lit("c:"), "customer_id").alias("dst")
    )
    alone = events.select(anon.alias("src"), anon.alias("dst"))
    return device.union(login).union(alone).distinct()


def identity_map(components: DataFrame) -> DataFrame:
    """Rows of `identity_map` from (node, component)."""
    kind = F.substring("node", 1, 1)
    per_component = components.groupBy("component").agg(
        F.array_sort(F.collect_set(F.when(kind == "c", F.expr("substring(node, 3)")))).alias("customers")
    )
    return (
        components.where(kind != "c")
        .join(per_component, "component")
        .select(
            F.expr("substring(node, 3)").alias("identifier"),
            F.when(kind == "a", "anonymous").otherwise("device").alias("id_type"),
            "component",
            F.when(F.size("customers") == 1, F.col("customers")[0]).alias("user_id"),
            F.size("customers").alias("customers_in_component"),
        )
    )


def attach_user_ids(df: DataFrame, lake: Lake, c: Contract) -> DataFrame:
    """Fill `user_id` of events from the current identity map (identity stitching refreshes it after ingest)."""
    ref = lake.ref("ops", "identity_map")
    if "user_id" not in {col.name for col in c.derived} or not lake.exists(ref):
        return df
    known = (
        lake.read(ref)
        .where(F.col("id_type") == "anonymous")
        .select(F.col("identifier").alias("_anon"), F.col("user_id").alias("_known_user"))
    )
    return (
        df.join(known, df["anonymous_id"] == known["_anon"], "left")
        .withColumn("user_id", F.col("_known_user"))
        .drop("_anon", "_known_user")
    )


@dataclass(frozen=True)
class IdentityStats:
    identifiers: int
    resolved: int
    ambiguous_components: int
    events_updated: int


def stitch_identities(lake: Lake, run: Run) -> IdentityStats:
    """Rebuild `ops.identity_map` from silver clickstream and set `user_id` on the events whose person changed."""
    events_ref, map_ref = lake.ref("silver", EVENTS), lake.ref("ops", "identity_map")
    lake.ensure(events_ref)
    events = lake.read(events_ref)
    components = connected_components(identity_edges(events), lake.settings.identity.max_iterations)
    mapping = check_schema(identity_map(components), "identity_map").localCheckpoint()
    lake.overwrite(mapping, map_ref)
    anon = mapping.where(F.col("id_type") == "anonymous").select(
        F.col("identifier").alias("anonymous_id"), F.col("user_id").alias("new_user_id")
    )
    changed = (
        events.select("event_id", "event_date", "anonymous_id", "user_id")
        .join(anon, "anonymous_id", "left")
        .where(~F.col("user_id").eqNullSafe(F.col("new_user_id")))
        .select("event_id", "event_date", "new_user_id")
        .localCheckpoint()
    )
    updated = changed.count()
    if updated:
        (
            lake.delta(events_ref)
            .alias("t")
            .merge(changed.alias("s"), "t.event_date = s.event_date AND t.event_id = s.event_id")
            .whenMatchedUpdate(set={"user_id": "s.new_user_id"})
            .execute()
        )
    stats = mapping.agg(
        F.count("*").alias("n"),
        F.sum(F.col("user_id").isNotNull().cast("long")).alias("resolved"),
        F.countDistinct(F.when(F.col("customers_in_component") > 1, F.col("component"))).alias("ambiguous"),
    ).first()
    return IdentityStats(int(stats["n"]), int(stats["resolved"] or 0), int(stats["ambiguous"]), updated)
