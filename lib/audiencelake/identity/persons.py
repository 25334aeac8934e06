"""Persistent person ids over recomputed components, and the merges and splits that changed them.

Rules (documented in schemas/identity/identity_persons.yaml):
- A person's `user_id` is the customer id of its anchor: the customer node seen first (earliest first_seen, then
  smallest key) when the id was issued. Anonymous-only components (visitors, shared devices) have no user_id.
- An existing id goes to its heir: the component holding its anchor, else the component holding most of its
  customers (ties: the smallest component key). An id with no customer left is retired.
- A component that is the heir of several ids is a merge: the id whose anchor was seen first survives, the others
  are retired into it. A component that is nobody's heir but holds customers issues a new id from its anchor.
- An id whose nodes now lie in several components is a split: the heir keeps it, the other parts get their own ids.

Everything is a function of (components, previous ids, anchors, first_seen), so an incremental run over the
touched components and a full rebuild over all of them give the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


@dataclass
class Assignment:
    nodes: DataFrame  # (node, component, user_id, customers_in_component)
    issued: DataFrame  # (user_id, anchor) of ids issued by this assignment (new ids)
    retired: DataFrame  # (user_id, merged_into) of ids retired (merged_into null: no customer left)
    changes: DataFrame  # (change, old_ids, new_id, nodes)


def _first(df: DataFrame, by: str, order: list) -> DataFrame:
    w = Window.partitionBy(by).orderBy(*order)
    return df.withColumn("_rank", F.row_number().over(w)).where(F.col("_rank") == 1).drop("_rank")


def assign_ids(components: DataFrame, previous: DataFrame, anchors: DataFrame, first_seen: DataFrame) -> Assignment:
    """Give every component in scope its persistent id.

    Args:
        components: (node, component) for every node in scope (whole components).
        previous: (node, user_id) the ids before this run for nodes in scope (user_id may be null).
        anchors: (user_id, anchor) of the ids in use.
        first_seen: (node, first_seen) for nodes in scope.

    Returns:
        The nodes with their ids, the ids issued and retired, and the merge/split log rows.
    """
    is_customer = F.col("node").startswith("c:")
    customers = components.where(is_customer).join(first_seen, "node", "left")
    held = previous.where(F.col("user_id").isNotNull()).join(components, "node")
    in_use = held.select("user_id").distinct()

    by_anchor = anchors.join(in_use, "user_id").join(
        components.withColumnRenamed("node", "anchor").withColumnRenamed("component", "anchor_component"), "anchor"
    )
    by_count = _first(
        held.where(is_customer).groupBy("user_id", "component").count(),
        "user_id",
        [F.desc("count"), "component"],
    )
    heirs = (
        in_use.join(by_anchor.select("user_id", "anchor", "anchor_component"), "user_id", "left")
        .join(by_count.select("user_id", F.col("component").alias("count_component")), "user_id", "left")
        .select("user_id", "anchor", F.coalesce("anchor_component", "count_component").alias("component"))
    )
    anchor_seen = first_seen.select(F.col("node").alias("anchor"), F.col("first_seen").alias("anchor_seen"))
    candidates = heirs.where(F.col("component").isNotNull()).join(anchor_seen, "anchor", "left")
    survivors = _first(candidates, "component", [F.asc_nulls_last("anchor_seen"), "user_id"]).select(
        "component", "user_id"
    )
    minted = (
        _first(customers, "component", [F.asc_nulls_last("first_seen"), "node"])
        .join(survivors, "component", "left_anti")
        .select("component", F.expr("substring(node, 3)").alias("user_id"), F.col("node").alias("anchor"))
    )
    ids = survivors.unionByName(minted.select("component", "user_id"))
    sizes = components.groupBy("component").agg(
        F.count("*").cast("int").alias("size"), F.sum(is_customer.cast("int")).cast("int").alias("customers")
    )
    nodes = (
        components.join(ids, "component", "left")
        .join(sizes, "component")
        .select("node", "component", "user_id", F.col("customers").alias("customers_in_component"))
    )
    losers = candidates.join(survivors.withColumnRenamed("user_id", "merged_into"), "component").where(
        F.col("user_id") != F.col("merged_into")
    )
    retired = losers.select("user_id", "merged_into").unionByName(
        heirs.where(F.col("component").isNull()).select("user_id", F.lit(None).cast("string").alias("merged_into"))
    )
    merges = (
        candidates.groupBy("component")
        .agg(F.array_sort(F.collect_list("user_id")).alias("old_ids"), F.count("*").alias("n"))
        .where(F.col("n") > 1)
        .join(ids, "component")
        .join(sizes, "component")
        .select(
            F.lit("merge").alias("change"), "old_ids", F.col("user_id").alias("new_id"), F.col("size").alias("nodes")
        )
    )
    parts = (
        held.select(F.col("user_id").alias("old_id"), "component")
        .distinct()
        .join(heirs.select(F.col("user_id").alias("old_id"), F.col("component").alias("heir")), "old_id")
        .where(~F.col("component").eqNullSafe(F.col("heir")))
        .join(ids, "component")
        .join(sizes, "component")
    )
    splits = (
        parts.groupBy("user_id", "size")
        .agg(F.array_sort(F.collect_set("old_id")).alias("old_ids"))
        .select(
            F.lit("split").alias("change"), "old_ids", F.col("user_id").alias("new_id"), F.col("size").alias("nodes")
        )
    )
    return Assignment(nodes, minted.select("user_id", "anchor"), retired, merges.unionByName(splits))
