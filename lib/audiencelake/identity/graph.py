"""The identity graph in Delta, updated incrementally: new silver rows -> edges and nodes -> the components they
touch -> persistent ids -> ops.identity_map, with every merge and split logged.

A run reads the silver rows ingested after the previous run's high-water mark (identity.identity_runs), so its
cost follows the new rows; `identity.rebuild` recomputes every edge, node and component from all of silver and
gives the same graph. Write order makes a crash safe: edges, nodes, persons and the change log first, the map
next, the high-water mark last, so a re-run after a crash reads the same rows again and every write is keyed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.identity import edges as E
from audiencelake.identity.components import connected_components
from audiencelake.identity.config import IdentityConfig, load_identity_config
from audiencelake.identity.matching import Matcher, match_records, splink_settings
from audiencelake.identity.persons import assign_ids
from audiencelake.lake import RESTRICTED, Lake, check_schema
from audiencelake.runs import Run

log = logging.getLogger(__name__)
SOURCES = ("clickstream_events", "crm_profiles")


@dataclass(frozen=True)
class GraphStats:
    mode: str
    rows_read: int
    new_edges: int
    nodes_in_scope: int
    persons: int
    merges: int
    splits: int
    shared_identifiers: int


class IdentityGraph:
    """The identity tables of one lake and the steps of one run."""

    def __init__(self, lake: Lake, run: Run, config: IdentityConfig | None = None) -> None:
        self.lake, self.run = lake, run
        settings = lake.settings.identity
        self.config = config or load_identity_config(settings.config and lake.settings.resolve(settings.config))
        self.refs = {name: lake.ref("identity", f"identity_{name}") for name in
                     ("edges", "nodes", "persons", "changes", "runs", "match_model")}  # fmt: skip
        self.map_ref = lake.ref("ops", "identity_map")
        self.events_relabelled = 0

    # ---- state -------------------------------------------------------------------------------------------------
    def _table(self, name: str) -> DataFrame:
        ref = self.refs[name]
        self.lake.ensure(ref)
        return self.lake.read(ref)

    def previous_map(self) -> DataFrame | None:
        """The current identity map, or None when there is none in this version's shape (then: rebuild)."""
        if not self.lake.exists(self.map_ref):
            return None
        current = self.lake.read(self.map_ref)
        return current if "node" in current.columns else None

    def watermarks(self) -> dict[str, datetime | None]:
        rows = self._table("runs").groupBy("source").agg(F.max("watermark").alias("w")).collect()
        return {r["source"]: r["w"] for r in rows}

    # ---- the run -----------------------------------------------------------------------------------------------
    def update(self) -> GraphStats:
        settings = self.lake.settings.identity
        previous = self.previous_map()
        marks = self.watermarks()
        full = settings.rebuild or previous is None or not marks
        mode = "full" if full else "incremental"
        reads = {s: self._silver(s, None if full else marks.get(s)) for s in SOURCES}
        seen = {s: reads[s].agg(F.count("*").alias("n"), F.max("_ingested_at").alias("w")).first() for s in SOURCES}
        counts = {s: int(seen[s]["n"]) for s in SOURCES}
        newest = {s: seen[s]["w"] for s in SOURCES}
        if not full and not any(counts.values()):
            self._record_runs(mode, marks, counts, {s: 0 for s in SOURCES}, newest)
            persons, shared = self._person_counts()
            return GraphStats(mode, 0, 0, 0, persons, 0, 0, shared)

        click_pairs = E.clickstream_pairs(reads["clickstream_events"])
        crm_pairs = E.crm_pairs(reads["crm_profiles"])
        changed_customers = reads["crm_profiles"].select(F.concat(F.lit("c:"), "customer_id").alias("node"))
        run_id = F.lit(self.run.run_id)
        deterministic = (
            E.edges_from_pairs(click_pairs, "clickstream")
            .unionByName(E.edges_from_pairs(crm_pairs, "crm"))
            .withColumn("updated_run", run_id)
            .localCheckpoint()
        )
        sightings = E.node_sightings(click_pairs.unionByName(crm_pairs)).localCheckpoint()
        new_edges = self._count_new(deterministic)
        if full:
            self.lake.overwrite(check_schema(deterministic, "identity_edges"), self.refs["edges"])
            touched = None
        else:
            dropped = self._drop_superseded(changed_customers)
            self._merge_edges(deterministic)
            touched = self._endpoints(deterministic).unionByName(sightings.select("node")).unionByName(dropped)
        nodes = self._update_nodes(sightings, touched)
        # probabilistic edges last: the matcher ignores emails and phones of more customers than the evidence limit
        matches = self._match_edges(reads["crm_profiles"], nodes, full).withColumn("updated_run", run_id)
        matches = matches.localCheckpoint()
        if matches.limit(1).count():
            found = self._count_new(matches).get("crm_profiles", 0)
            new_edges["crm_profiles"] = new_edges.get("crm_profiles", 0) + found
            self._merge_edges(matches)
        if touched is not None:
            touched = touched.unionByName(self._endpoints(matches)).distinct().localCheckpoint()
        scope_nodes, scope_edges, old = self._scope(nodes, touched, previous)
        components = connected_components(scope_edges, settings.max_iterations).withColumnRenamed("component", "c")
        components = components.select("node", F.col("c").alias("component")).localCheckpoint()
        anchors = self._table("persons").where(F.col("status") == "active").select("user_id", "anchor")
        first_seen = nodes.join(scope_nodes, "node", "left_semi").select("node", "first_seen")
        result = assign_ids(components, old, anchors, first_seen)
        assigned = result.nodes.localCheckpoint()
        changes = result.changes.localCheckpoint()
        self._write_persons(result.issued.localCheckpoint(), result.retired.localCheckpoint())
        self._write_changes(changes)
        self._write_map(assigned, nodes, full)
        self._relabel_events(old, assigned, None if full else marks.get("clickstream_events"))
        self._record_runs(mode, marks, counts, new_edges, newest)
        kinds = {r["change"]: r["n"] for r in changes.groupBy("change").agg(F.count("*").alias("n")).collect()}
        persons, shared = self._person_counts()
        return GraphStats(
            mode, sum(counts.values()), sum(new_edges.values()), assigned.count(), persons,
            kinds.get("merge", 0), kinds.get("split", 0), shared,
        )  # fmt: skip

    # ---- steps -------------------------------------------------------------------------------------------------
    def _silver(self, table: str, after: datetime | None) -> DataFrame:
        ref = self.lake.ref("silver", table)
        self.lake.ensure(ref)
        df = self.lake.read(ref)
        return df.where(F.col("_ingested_at") > F.lit(after)) if after is not None else df

    @staticmethod
    def _endpoints(edges: DataFrame) -> DataFrame:
        return edges.select(F.col("src").alias("node")).unionByName(edges.select(F.col("dst").alias("node")))

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
        matching = self.config.matching
        trainer = Matcher.open(records, splink_settings(matching))
        model = trainer.train(matching)
        trainer.close()
        row = [(self.run.run_id, datetime.now(UTC), records.count(), json.dumps(model, sort_keys=True))]
        frame = self.lake.spark.createDataFrame(row, "trained_run string, trained_at timestamp, records long, "
                                                "model_json string")  # fmt: skip
        self.lake.merge_upsert(check_schema(frame, "identity_match_model"), self.refs["match_model"], ["trained_run"])
        return model

    def _count_new(self, incoming: DataFrame) -> dict[str, int]:
        existing = self._table("edges").select("src", "dst", "source", "first_seen", "last_seen")
        fresh = (
            incoming.alias("i")
            .join(existing.alias("e"), ["src", "dst", "source"], "left")
            .where(
                F.col("e.first_seen").isNull()
                | (F.col("i.first_seen") < F.col("e.first_seen"))
                | (F.col("i.last_seen") > F.col("e.last_seen"))
            )
        )
        table = F.when(F.col("source") == "clickstream", "clickstream_events").otherwise("crm_profiles")
        return {r["t"]: r["n"] for r in fresh.groupBy(table.alias("t")).agg(F.count("*").alias("n")).collect()}

    def _drop_superseded(self, changed_customers: DataFrame) -> DataFrame:
        """Delete the crm and crm_match edges of customers whose CRM record changed (they are derived again from
        the current record); returns the nodes those edges touched."""
        edges = self._table("edges")
        keys = changed_customers.distinct()
        derived = F.col("source").isin("crm", "crm_match")
        gone = (
            edges.where(derived)
            .join(keys.withColumnRenamed("node", "src"), "src", "left_semi")
            .unionByName(edges.where(derived).join(keys.withColumnRenamed("node", "dst"), "dst", "left_semi"))
            .select("src", "dst", "source")
            .distinct()
            .localCheckpoint()
        )
        if gone.limit(1).count():
            (
                self.lake.delta(self.refs["edges"])
                .alias("t")
                .merge(gone.alias("s"), "t.src = s.src AND t.dst = s.dst AND t.source = s.source")
                .whenMatchedDelete()
                .execute()
            )
        return gone.select(F.col("src").alias("node")).unionByName(gone.select(F.col("dst").alias("node")))

    def _merge_edges(self, incoming: DataFrame) -> None:
        (
            self.lake.delta(self.refs["edges"])
            .alias("t")
            .merge(
                check_schema(incoming, "identity_edges").alias("s"),
                "t.src = s.src AND t.dst = s.dst AND t.source = s.source",
            )  # fmt: skip
            .whenMatchedUpdate(
                condition="s.first_seen < t.first_seen OR s.last_seen > t.last_seen "
                "OR NOT (s.match_probability <=> t.match_probability)",
                set={
                    "first_seen": "least(t.first_seen, s.first_seen)",
                    "last_seen": "greatest(t.last_seen, s.last_seen)",
                    "match_probability": "s.match_probability",
                    "updated_run": "s.updated_run",
                },
            )
            .whenNotMatchedInsertAll()
            .execute()
        )

    def _update_nodes(self, sightings: DataFrame, touched: DataFrame | None) -> DataFrame:
        """Refresh first/last seen, customer counts and the shared flag of the touched nodes (all on a rebuild)."""
        edges = self._table("edges")
        if touched is None:
            seen, counts = sightings, E.customer_counts(edges)
        else:
            old = self._table("nodes").join(touched, "node", "left_semi").select("node", "first_seen", "last_seen")
            seen = (
                old.unionByName(sightings.join(touched, "node", "left_semi"))
                .groupBy("node")
                .agg(F.min("first_seen").alias("first_seen"), F.max("last_seen").alias("last_seen"))
            )
            counts = E.customer_counts(edges, touched).join(touched, "node", "left_semi")
        limit = F.lit(None).cast("int")
        for id_type, guard in self.config.identifiers.items():
            limit = F.when(E.node_type(F.col("node")) == id_type, F.lit(guard.max_customers)).otherwise(limit)
        rows = (
            seen.join(counts, "node", "left")
            .select(
                "node",
                E.node_type(F.col("node")).alias("id_type"),
                F.expr("substring(node, 3)").alias("identifier"),
                "first_seen",
                "last_seen",
                F.coalesce("customers", F.lit(0)).cast("int").alias("customers"),
                F.coalesce(F.coalesce("customers", F.lit(0)) > limit, F.lit(False)).alias("shared"),
                F.lit(self.run.run_id).alias("updated_run"),
            )
            .localCheckpoint()
        )
        rows = check_schema(rows, "identity_nodes")
        if touched is None:
            self.lake.overwrite(rows, self.refs["nodes"])
        else:
            self.lake.merge_upsert(rows, self.refs["nodes"], ["node"])
        return self._table("nodes")

    def _scope(self, nodes: DataFrame, touched: DataFrame | None, previous: DataFrame | None):
        """(scope nodes, their active edges with a self loop per node, their previous ids): every node on a
        rebuild; else the touched nodes and every node of the components they were in."""
        edges = self._table("edges")
        shared = nodes.where("shared").select("node")
        active = (
            edges.join(shared.withColumnRenamed("node", "src"), "src", "left_anti")
            .join(shared.withColumnRenamed("node", "dst"), "dst", "left_anti")
            .select("src", "dst")
        )
        if touched is None:
            scope = nodes.select("node")
        else:
            prev = (
                previous
                if previous is not None
                else self.lake.spark.createDataFrame([], "node string, component string")
            )
            hit = prev.join(touched, "node").select("component").distinct()
            scope = touched.unionByName(prev.join(hit, "component").select("node")).distinct()
            active = active.join(scope.withColumnRenamed("node", "src"), "src", "left_semi")
        scope = scope.localCheckpoint()
        loops = scope.select(F.col("node").alias("src"), F.col("node").alias("dst"))
        old = (
            previous.join(scope, "node", "left_semi").select("node", "user_id")
            if previous is not None
            else self.lake.spark.createDataFrame([], "node string, user_id string")
        )
        # materialised now: the map is rewritten before the events are relabelled against these old ids
        return scope, active.unionByName(loops), old.localCheckpoint()

    def _write_persons(self, issued: DataFrame, retired: DataFrame) -> None:
        """One MERGE: issued ids become (again) active, retired ids record what they merged into."""
        run = F.lit(self.run.run_id)
        rows = issued.select(
            "user_id", "anchor", F.lit("active").alias("status"), F.lit(None).cast("string").alias("merged_into")
        ).unionByName(
            retired.select("user_id", F.lit("").alias("anchor"), F.lit("retired").alias("status"), "merged_into")
        )
        rows = rows.select("*", run.alias("created_run"), run.alias("updated_run"))
        ref = self.refs["persons"]
        self.lake.ensure(ref)
        (
            self.lake.delta(ref)
            .alias("t")
            .merge(check_schema(rows, "identity_persons").alias("s"), "t.user_id = s.user_id")
            .whenMatchedUpdate(
                condition="s.status = 'active' AND (t.status <> 'active' OR t.anchor <> s.anchor)",
                set={"status": "'active'", "anchor": "s.anchor", "merged_into": "NULL", "updated_run": "s.updated_run"},
            )
            .whenMatchedUpdate(
                condition="s.status = 'retired'",
                set={"status": "'retired'", "merged_into": "s.merged_into", "updated_run": "s.updated_run"},
            )
            .whenNotMatchedInsertAll(condition="s.status = 'active'")
            .execute()
        )

    def _write_changes(self, changes: DataFrame) -> None:
        """Log the merges and splits (keyed by run, change and resulting id: a re-run writes the same rows)."""
        if not changes.limit(1).count():
            return
        rows = changes.select(
            F.lit(self.run.run_id).alias("run_id"),
            "change",
            F.col("old_ids").cast("array<string>").alias("old_ids"),
            "new_id",
            F.when(
                F.col("change") == "merge",
                F.lit("persons joined by new or changed edges (logins, CRM identifiers or probabilistic CRM matches)"),
            )  # fmt: skip
            .otherwise(F.lit("edges removed or identifiers became shared; this part left the person"))
            .alias("reason"),
            F.col("nodes").cast("int").alias("nodes"),
            F.lit(datetime.now(UTC)).cast("timestamp").alias("changed_at"),
        )
        ref = self.refs["changes"]
        self.lake.ensure(ref)
        self.lake.merge_upsert(check_schema(rows, "identity_changes"), ref, ["run_id", "change", "new_id"])

    def _write_map(self, assigned: DataFrame, nodes: DataFrame, full: bool) -> None:
        rows = assigned.join(nodes.select("node", "id_type", "identifier"), "node").select(
            "node", "identifier", "id_type", "component", "user_id", "customers_in_component"
        )
        rows = check_schema(rows, "identity_map")
        if full or not self.lake.exists(self.map_ref) or "node" not in self.lake.read(self.map_ref).columns:
            self.lake.overwrite(rows, self.map_ref)
        else:
            self.lake.merge_upsert(rows, self.map_ref, ["node"])

    def _relabel_events(self, old: DataFrame, assigned: DataFrame, after: datetime | None) -> None:
        """Set `user_id` on the clickstream events whose cookie changed person, and on the events ingested since
        `after` (all events on a rebuild)."""
        anon = assigned.where(F.col("node").startswith("a:")).select(
            "node", F.expr("substring(node, 3)").alias("anonymous_id"), F.col("user_id").alias("new_user_id")
        )
        events = self._silver("clickstream_events", None).select(
            "event_id", "event_date", "anonymous_id", "user_id", "_ingested_at"
        )
        if after is not None:
            moved = anon.join(old, "node", "left").where(~F.col("new_user_id").eqNullSafe(F.col("user_id")))
            events = events.join(F.broadcast(moved.select("anonymous_id")), "anonymous_id", "left_semi").unionByName(
                events.where(F.col("_ingested_at") > F.lit(after))
            )
        changed = (
            events.join(anon.drop("node"), "anonymous_id", "left")
            .where(~F.col("user_id").eqNullSafe(F.col("new_user_id")))
            .select("event_id", "event_date", "new_user_id")
            .distinct()
            .localCheckpoint()
        )
        self.events_relabelled = changed.count()
        if self.events_relabelled:
            (
                self.lake.delta(self.lake.ref("silver", "clickstream_events"))
                .alias("t")
                .merge(changed.alias("s"), "t.event_date = s.event_date AND t.event_id = s.event_id")
                .whenMatchedUpdate(set={"user_id": "s.new_user_id"})
                .execute()
            )

    def _record_runs(self, mode: str, marks: dict, counts: dict, new_edges: dict, newest: dict) -> None:
        now = datetime.now(UTC)
        rows = []
        for source in SOURCES:
            known = [m for m in (marks.get(source), newest[source]) if m is not None]
            mark = max(known) if known else None
            rows.append((self.run.run_id, source, mode, mark, counts[source], new_edges.get(source, 0), now))
        frame = self.lake.spark.createDataFrame(
            rows, "run_id string, source string, mode string, watermark timestamp, rows_read long, new_edges long, "
            "recorded_at timestamp"
        )  # fmt: skip
        self.lake.ensure(self.refs["runs"])
        self.lake.merge_upsert(check_schema(frame, "identity_runs"), self.refs["runs"], ["run_id", "source"])

    def _person_counts(self) -> tuple[int, int]:
        persons = self._table("persons").where(F.col("status") == "active").count()
        return persons, self._table("nodes").where("shared").count()
