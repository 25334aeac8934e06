"""The identity graph's probabilistic edges: score new or changed CRM records with the stored Splink model (trained
first when there is none), as `crm_match` edges. Mixed into identity.graph.IdentityGraph."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.core.lake import RESTRICTED, check_schema
from audiencelake.identity.matching import Matcher, match_records, train_model


class MatchEdges:
    """Needs `lake`, `run`, `config`, `refs`, `_table` and `_silver` (IdentityGraph provides them)."""

    def _match_edges(self, changed_crm: DataFrame, nodes: DataFrame, full: bool) -> DataFrame:
        """crm_match edges for the new or changed CRM records (all records on a rebuild)."""
        empty = self.lake.spark.createDataFrame(
            [], "src string, dst string, source string, first_seen timestamp, last_seen timestamp, "
            "match_probability double"
        )  # fmt: skip
        matching = self.config.matching
        if not matching.enabled or (not full and changed_crm.limit(1).count() == 0):
            return empty
        crm = self._silver("crm_profiles", None)
        restricted_ref = self.lake.ref(RESTRICTED, "crm_profiles_pii")
        self.lake.ensure(restricted_ref, "crm_profiles")
        crowded = nodes.where(F.col("customers") > matching.evidence_max_customers).select("node")
        records = match_records(crm, self.lake.read(restricted_ref), crowded).localCheckpoint()
        if records.count() < 2:
            return empty
        matcher = Matcher.open(records, self._model(records))
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

    def _model(self, records: DataFrame):
        """The latest trained Splink model, or a new one trained on `records` (and stored) when there is none or
        `identity.retrain` is set."""
        stored = self._table("match_model").orderBy(F.desc("trained_at"), F.desc("trained_run")).limit(1).collect()
        if stored and not self.lake.settings.identity.retrain:
            return json.loads(stored[0]["model_json"])
        model, trained_on = train_model(records, self.config.matching)
        row = [(self.run.run_id, datetime.now(UTC), trained_on, json.dumps(model, sort_keys=True))]
        frame = self.lake.spark.createDataFrame(row, "trained_run string, trained_at timestamp, records long, "
                                                "model_json string")  # fmt: skip
        self.lake.merge_upsert(check_schema(frame, "identity_match_model"), self.refs["match_model"], ["trained_run"])
        return model
