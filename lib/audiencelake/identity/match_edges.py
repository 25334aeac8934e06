"""The identity graph's probabilistic edges: score new or changed CRM records with the stored Splink model (trained,
and stored, first when there is none), as `crm_match` edges."""

from __future__ import annotations

import json

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.core.lake import RESTRICTED
from audiencelake.identity.config import Matching
from audiencelake.identity.graph_writes import write_match_model
from audiencelake.identity.matching import Matcher, match_records, train_model
from audiencelake.identity.tables import IdentityTables


def match_edges(
    t: IdentityTables, matching: Matching, changed_crm: DataFrame, nodes: DataFrame, full: bool
) -> DataFrame:
    """crm_match edges for the new or changed CRM records (all records on a rebuild)."""
    empty = t.lake.spark.createDataFrame(
        [], "src string, dst string, source string, first_seen timestamp, last_seen timestamp, match_probability double"
    )
    if not matching.enabled or not t.lake.exists(t.lake.ref("silver", "crm_profiles")):
        return empty  # (no CRM: nothing to match, and no restricted table to create)
    if not full and changed_crm.limit(1).count() == 0:
        return empty
    crm = t.silver("crm_profiles")
    restricted_ref = t.lake.ref(RESTRICTED, "crm_profiles_pii")
    t.lake.ensure(restricted_ref, "crm_profiles")
    crowded = nodes.where(F.col("customers") > matching.evidence_max_customers).select("node")
    records = match_records(crm, t.lake.read(restricted_ref), crowded).localCheckpoint()
    if records.count() < 2:
        return empty
    model = _model(t, matching, records)
    if model is None:
        return empty  # nothing to learn match weights from (logged): no probable duplicates linked this run
    matcher = Matcher.open(records, model)
    new_ids = None if full else changed_crm.select(F.col("customer_id").alias("unique_id")).distinct()
    pairs = matcher.pairs(matching.threshold, new_ids)
    seen = crm.select("customer_id", "updated_at")
    edges = (
        pairs.join(seen.toDF("a", "a_seen"), "a")
        .join(seen.toDF("b", "b_seen"), "b")
        .select(
            F.concat(F.lit("c:"), "a").alias("src"),
            F.concat(F.lit("c:"), "b").alias("dst"),
            F.lit("crm_match").alias("source"),
            F.greatest("a_seen", "b_seen").alias("first_seen"),
            F.greatest("a_seen", "b_seen").alias("last_seen"),
            "match_probability",
        )
        .localCheckpoint()
    )
    matcher.close()
    return edges


def _model(t: IdentityTables, matching: Matching, records: DataFrame) -> dict | None:
    """The latest trained Splink model, or a new one trained on `records` (and stored) when there is none or
    `identity.retrain` is set; None when `records` give nothing to train on (nothing stored: a later run tries
    again)."""
    stored = t.table("match_model").orderBy(F.desc("trained_at"), F.desc("trained_run")).limit(1).collect()
    if stored and not t.lake.settings.identity.retrain:
        return json.loads(stored[0]["model_json"])
    model, trained_on = train_model(records, matching)
    if model is not None:
        write_match_model(t, model, trained_on)
    return model
