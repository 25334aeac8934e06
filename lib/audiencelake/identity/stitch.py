"""Identity stitching as the pipeline sees it: the `identity` stage updates the identity graph, and ingest credits
new clickstream events to the person the current map gives their cookie."""

from __future__ import annotations

from dataclasses import asdict

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.contracts import Contract
from audiencelake.identity.graph import IdentityGraph
from audiencelake.lake import Lake
from audiencelake.runs import Run


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


def stitch_identities(lake: Lake, run: Run) -> dict[str, int | str]:
    """Update the identity graph from the silver rows ingested since the last run (all of them on a rebuild) and
    credit clickstream events to the persons their cookies now belong to."""
    graph = IdentityGraph(lake, run)
    stats = graph.update()
    return {**asdict(stats), "events_updated": graph.events_relabelled}
