"""Nothing in a query plan grows with the data: a plan that carries every item id (or user, or date) as a literal
becomes the bottleneck itself with a real catalogue."""

from __future__ import annotations

from pyspark.ml import PipelineModel
from pyspark.ml.feature import StringIndexer
from pyspark.ml.recommendation import ALS
from pyspark.sql import functions as F

from audiencelake.models.recommendations import recommend

CATALOGUE = 200_000


def plan_chars(df) -> int:
    """Characters of the optimised logical plan (a literal per item would put the catalogue in it)."""
    return len(df._jdf.queryExecution().optimizedPlan().toString())


def test_recommendations_plan_stays_small_with_a_large_catalogue(spark) -> None:
    items = spark.range(CATALOGUE).select(F.format_string("I%06d", "id").alias("item_id"))
    # four users, each with the same six items of the catalogue's end (indexes far from 0)
    liked = [f"I{CATALOGUE - 1 - i:06d}" for i in range(6)]
    rows = [(f"U{u}", item, 1.0 + (u + i) % 3) for u in range(4) for i, item in enumerate(liked)]
    interactions = spark.createDataFrame(rows, "user_id string, item_id string, weight double")
    user_ix = StringIndexer(inputCol="user_id", outputCol="user_idx", handleInvalid="keep").fit(interactions)
    item_ix = StringIndexer(inputCol="item_id", outputCol="item_idx", handleInvalid="skip").fit(items)
    assert len(item_ix.labelsArray[0]) == CATALOGUE
    indexed = item_ix.transform(user_ix.transform(interactions))
    als = ALS(userCol="user_idx", itemCol="item_idx", ratingCol="weight", implicitPrefs=True, rank=2, maxIter=1,
              seed=1, coldStartStrategy="drop", numUserBlocks=1, numItemBlocks=1).fit(indexed)  # fmt: skip
    recs = recommend(PipelineModel(stages=[user_ix, item_ix, als]), interactions, None, k=3)
    assert plan_chars(recs) < 20_000  # a literal array of the labels: over 2,000,000
    got = recs.collect()
    assert len(got) == 12 and {r["user_id"] for r in got} == {"U0", "U1", "U2", "U3"}
    # the ids are the labels of the recommended indexes: ALS only knows the six liked items
    assert {r["item_id"] for r in got} <= set(liked)
