"""Connected components of an undirected graph given as an edge DataFrame, by min-label propagation."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.core.errors import AudiencelakeError


class ComponentsDidNotConverge(AudiencelakeError):
    pass


def connected_components(edges: DataFrame, max_iterations: int = 30) -> DataFrame:
    """Label every node with the smallest node id of its component.

    Args:
        edges: (src, dst) string node ids; direction is ignored, self-loops allowed (a node with no other edge).
        max_iterations: rounds allowed; each round lets labels travel one hop, so this bounds the graph diameter.

    Returns:
        (node, component) for every node in `edges`.

    Raises:
        ComponentsDidNotConverge: labels still changed after `max_iterations` rounds (raise
            `identity.max_iterations`).
    """
    both = edges.select("src", "dst").union(edges.select(F.col("dst").alias("src"), F.col("src").alias("dst")))
    both = both.distinct().localCheckpoint()
    labels = both.groupBy("src").agg(F.least(F.min("dst"), F.first("src")).alias("label"))
    labels = labels.withColumnRenamed("src", "node").localCheckpoint()
    for _ in range(max_iterations):
        offered = (
            both.join(labels.withColumnRenamed("node", "dst"), "dst")
            .groupBy("src")
            .agg(F.min("label").alias("offered"))
            .withColumnRenamed("src", "node")
        )
        updated = (
            labels.join(offered, "node", "left")
            .select(
                "node",
                F.least("label", F.coalesce("offered", "label")).alias("label"),
                F.col("label").alias("previous"),
            )
            .localCheckpoint()
        )
        changed = updated.where(F.col("label") != F.col("previous")).limit(1).count()
        labels = updated.drop("previous")
        if not changed:
            return labels.withColumnRenamed("label", "component")
    raise ComponentsDidNotConverge(
        f"connected components still changing after {max_iterations} rounds; raise identity.max_iterations"
    )
