"""Holdout groups: the Spark expression agrees with SHA-256 computed in Python, shares land within a percentage
point of the configured one on large audiences, and a user's group depends on nothing but the salt and the id."""

from __future__ import annotations

import hashlib

import pytest
from pyspark.sql import functions as F

from audiencelake.audiences import holdout


def python_group(salt: str, user: str, pct: float) -> str:
    bucket = int(hashlib.sha256(f"{salt}:{user}".encode()).hexdigest()[:15], 16) % 10_000
    return "holdout" if bucket < round(pct * 100) else "treatment"


@pytest.mark.parametrize("pct", [5, 10, 15, 20.5])
def test_realised_share_is_within_one_point_and_matches_python(spark, pct):
    users = spark.range(20_000).select(F.format_string("C%07d", "id").alias("user_id"))
    grouped = users.select("user_id", holdout.group(F.col("user_id"), "winback", pct).alias("group")).toPandas()
    share = (grouped["group"] == "holdout").mean() * 100
    assert abs(share - pct) <= 1.0, share
    expected = [python_group("winback", u, pct) for u in grouped["user_id"]]
    assert list(grouped["group"]) == expected


def test_group_depends_on_salt_and_id_only(spark):
    users = spark.range(5_000).select(F.format_string("C%07d", "id").alias("user_id"))
    one = users.select("user_id", holdout.group(F.col("user_id"), "a", 10).alias("g"))
    again = (
        users.orderBy(F.desc("user_id"))
        .repartition(7)
        .select("user_id", holdout.group(F.col("user_id"), "a", 10).alias("g"))
    )
    assert sorted(one.collect()) == sorted(again.collect())  # same users, other order and partitioning: same groups
    other = users.select("user_id", holdout.group(F.col("user_id"), "b", 10).alias("g")).toPandas()
    mine = one.toPandas()
    both = ((mine["g"] == "holdout") & (other["g"] == "holdout")).mean()
    assert both < 0.03  # another salt draws another holdout (independent: about 1%)
