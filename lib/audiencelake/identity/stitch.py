"""Identity stitching as the pipeline sees it: the `identity` stage updates the identity graph, and ingest credits
new clickstream events to the person the current map gives their cookie."""

from __future__ import annotations

from dataclasses import asdict

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.core.contracts import Contract
from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from audiencelake.identity.graph import update_graph


def attach_user_ids(df: DataFrame, lake: Lake, c: Contract) -> DataFrame:
    """Set `user_id` from the current identity map: the person of the visitor (`anonymous_id`) in visitor tables,
    of the customer in customer tables (the customer id itself when the map does not know it yet). The identity
    stage corrects these after it has linked the new rows."""
    ref = lake.ref("ops", "identity_map")
    if "user_id" not in {col.name for col in c.derived} or not lake.exists(ref):
        return df
    visitors = "anonymous_id" in {col.name for col in c.columns}
    key, id_type = ("anonymous_id", "anonymous") if visitors else ("customer_id", "customer")
    known = (
        lake.read(ref)
        .where(F.col("id_type") == id_type)
        .select(F.col("identifier").alias("_key"), F.col("user_id").alias("_known_user"))
    )
    person = F.col("_known_user") if visitors else F.coalesce("_known_user", "user_id")
    return df.join(known, df[key] == known["_key"], "left").withColumn("user_id", person).drop("_key", "_known_user")


def stitch_identities(lake: Lake, run: Run) -> dict[str, int | str]:
    """Update the identity graph from the silver rows ingested since the last run (all of them on a rebuild) and
    credit clickstream events and customer rows to the persons their cookies and customers now belong to."""
    return asdict(update_graph(lake, run))
