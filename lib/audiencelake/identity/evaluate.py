"""How well a clustering recovers known identities: pairwise precision, recall and F1 over the items both sides
know, and the over-merge rate (share of predicted persons holding items of more than one true person)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


@dataclass(frozen=True)
class ClusterQuality:
    items: int
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    precision: float
    recall: float
    f1: float
    predicted_persons: int
    over_merged: int
    over_merge_rate: float

    def as_dict(self) -> dict:
        return asdict(self)


def _pairs(df: DataFrame, *keys: str) -> int:
    counts = df.groupBy(*keys).count()
    return int(counts.agg(F.sum(F.col("count") * (F.col("count") - 1) / 2)).first()[0] or 0)


def clustering_quality(predicted: DataFrame, truth: DataFrame) -> ClusterQuality:
    """Compare (item, cluster) with (item, person); an item with a null cluster is a cluster of its own.

    Args:
        predicted: (item, cluster), e.g. customer ids and their user_id from ops.identity_map.
        truth: (item, person), e.g. truth/persons.csv of a generated world.
    """
    joined = (
        predicted.join(truth, "item")
        .select("item", F.coalesce("cluster", F.concat(F.lit("__alone:"), "item")).alias("cluster"), "person")
        .cache()
    )
    true_pairs, predicted_pairs = _pairs(joined, "person"), _pairs(joined, "cluster")
    correct = _pairs(joined, "cluster", "person")
    per_cluster = joined.groupBy("cluster").agg(F.countDistinct("person").alias("people"))
    persons = per_cluster.count()
    over = per_cluster.where(F.col("people") > 1).count()
    items = joined.count()
    joined.unpersist()
    precision = correct / predicted_pairs if predicted_pairs else 1.0
    recall = correct / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return ClusterQuality(
        items,
        true_pairs,
        predicted_pairs,
        correct,
        precision,
        recall,
        f1,
        persons,
        over,
        over / persons if persons else 0.0,
    )
