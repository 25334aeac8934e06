"""Identifiers and the edges between them, from silver records. Node keys are '<prefix>:<identifier>' with the
prefixes of identity.config.NODE_TYPES; an edge is stored once per pair and source, with src < dst."""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from audiencelake.identity.config import NODE_TYPES

TYPE_OF_PREFIX = {prefix: name for name, prefix in NODE_TYPES.items()}


def node(prefix: str, column: str) -> Column:
    """The node key of a column's identifier (null when the identifier is null or blank)."""
    value = F.trim(F.col(column))
    return F.when(value.isNotNull() & (value != ""), F.concat(F.lit(f"{prefix}:"), value))


def node_type(key: Column) -> Column:
    """customer, anonymous, device, email or phone, from a node key."""
    prefix = F.substring(key, 1, 1)
    return reduce(lambda acc, kv: acc.when(prefix == kv[0], kv[1]), TYPE_OF_PREFIX.items(), F).otherwise(None)


def clickstream_pairs(events: DataFrame) -> DataFrame:
    """(a, b, seen) observed together in events: cookie - device; on a login, cookie - customer and device -
    customer. A lone cookie pairs with itself so that it is a node."""
    login = F.col("event_type") == "login"
    anon, device, customer = node("a", "anonymous_id"), node("d", "device_id"), node("c", "customer_id")
    pairs = F.array(
        F.struct(anon.alias("a"), anon.alias("b")),
        F.struct(anon.alias("a"), device.alias("b")),
        F.struct(anon.alias("a"), F.when(login, customer).alias("b")),
        F.struct(device.alias("a"), F.when(login, customer).alias("b")),
    )
    return _explode(events.select(F.col("event_ts").alias("seen"), F.explode(pairs).alias("p")))


def crm_pairs(crm: DataFrame) -> DataFrame:
    """(a, b, seen) from current CRM records: customer - email hash, customer - phone hash at the version's time,
    and the customer alone at signup (so a customer's first_seen is no later than its signup)."""
    customer = node("c", "customer_id")
    signup = F.to_timestamp(F.col("signup_date").cast("string"))
    pairs = F.array(
        F.struct(customer.alias("a"), customer.alias("b"), F.least(signup, "updated_at").alias("seen")),
        F.struct(customer.alias("a"), node("e", "email_hash").alias("b"), F.col("updated_at").alias("seen")),
        F.struct(customer.alias("a"), node("p", "phone_hash").alias("b"), F.col("updated_at").alias("seen")),
    )
    return _explode(crm.select(F.explode(pairs).alias("p")), with_time=False)


def _explode(df: DataFrame, with_time: bool = True) -> DataFrame:
    seen = F.col("seen") if with_time else F.col("p.seen")
    return df.select(F.col("p.a").alias("a"), F.col("p.b").alias("b"), seen.alias("seen")).where(
        F.col("a").isNotNull() & F.col("b").isNotNull() & F.col("seen").isNotNull()
    )


def edges_from_pairs(pairs: DataFrame, source: str) -> DataFrame:
    """(src, dst, source, first_seen, last_seen, match_probability) from observed pairs, self pairs left out."""
    return (
        pairs.where(F.col("a") != F.col("b"))
        .select(F.least("a", "b").alias("src"), F.greatest("a", "b").alias("dst"), "seen")
        .groupBy("src", "dst")
        .agg(F.min("seen").alias("first_seen"), F.max("seen").alias("last_seen"))
        .select(
            "src",
            "dst",
            F.lit(source).alias("source"),
            "first_seen",
            "last_seen",
            F.lit(None).cast("double").alias("match_probability"),
        )
    )


def node_sightings(pairs: DataFrame) -> DataFrame:
    """(node, first_seen, last_seen) of every identifier in observed pairs."""
    ends = pairs.select(F.col("a").alias("node"), "seen").unionByName(pairs.select(F.col("b").alias("node"), "seen"))
    return ends.groupBy("node").agg(F.min("seen").alias("first_seen"), F.max("seen").alias("last_seen"))


def customer_counts(edges: DataFrame, nodes: DataFrame | None = None) -> DataFrame:
    """(node, customers): distinct CRM customers each non-customer node is directly linked to by deterministic
    edges (probabilistic customer-customer edges do not count), for `nodes` (node) or all."""
    if nodes is not None:
        keys = nodes.select("node")
        edges = edges.join(keys.withColumnRenamed("node", "src"), "src", "left_semi").unionByName(
            edges.join(keys.withColumnRenamed("node", "dst"), "dst", "left_semi")
        )
    linked = edges.where(F.col("source") != "crm_match").select(
        F.when(F.col("src").startswith("c:"), F.col("dst")).otherwise(F.col("src")).alias("node"),
        F.when(F.col("src").startswith("c:"), F.col("src"))
        .when(F.col("dst").startswith("c:"), F.col("dst"))
        .alias("customer"),
    )
    return (
        linked.where(F.col("customer").isNotNull() & ~F.col("node").startswith("c:"))
        .groupBy("node")
        .agg(F.countDistinct("customer").cast("int").alias("customers"))
    )
