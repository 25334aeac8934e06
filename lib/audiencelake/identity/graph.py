"""The identity graph in Delta, updated incrementally: new silver rows -> edges and nodes -> the components they
touch -> persistent ids -> ops.identity_map, with every merge and split logged.

A run reads the silver rows ingested after the previous run's high-water mark (identity.identity_runs), so its
cost follows the new rows; `identity.rebuild` recomputes every edge, node and component from all of silver and
gives the same graph. Write order makes a crash safe: edges, nodes, persons and the change log first, the map
next, the high-water mark last, so a re-run after a crash reads the same rows again and every write is keyed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.core.lake import Lake, check_schema
from audiencelake.core.progress import Steps
from audiencelake.core.runs import Run
from audiencelake.identity import edges as E
from audiencelake.identity.components import connected_components
from audiencelake.identity.config import IdentityConfig, load_identity_config
from audiencelake.identity.graph_writes import SOURCES, GraphWrites
from audiencelake.identity.match_edges import MatchEdges
from audiencelake.identity.persons import assign_ids

log = logging.getLogger(__name__)


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


class IdentityGraph(MatchEdges, GraphWrites):
    """The identity tables of one lake and the steps of one run."""

    def __init__(self, lake: Lake, run: Run, config: IdentityConfig | None = None) -> None:
        self.lake, self.run = lake, run
        settings = lake.settings.identity
        self.config = config or load_identity_config(settings.config and lake.settings.resolve(settings.config))
        self.refs = {name: lake.ref("identity", f"identity_{name}") for name in
                     ("edges", "nodes", "persons", "changes", "runs", "match_model")}  # fmt: skip
        self.map_ref = lake.ref("ops", "identity_map")
        self.relabelled: dict[str, int] = {}  # silver table -> rows given another user_id by the last update
        self.steps = Steps("identity", log)  # seconds per step of this graph's updates, for logs and benchmarks

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

        with self.steps("edges"):
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
        with self.steps("nodes"):
            nodes = self._update_nodes(sightings, touched)
        # probabilistic edges last: the matcher ignores emails and phones of more customers than the evidence limit
        with self.steps("matching"):
            matches = self._match_edges(reads["crm_profiles"], nodes, full).withColumn("updated_run", run_id)
            matches = matches.localCheckpoint()
            if matches.limit(1).count():
                found = self._count_new(matches).get("crm_profiles", 0)
                new_edges["crm_profiles"] = new_edges.get("crm_profiles", 0) + found
                self._merge_edges(matches)
            if touched is not None:
                touched = touched.unionByName(self._endpoints(matches)).distinct().localCheckpoint()
        with self.steps("components"):
            scope_nodes, scope_edges, old = self._scope(nodes, touched, previous)
            components = connected_components(scope_edges, settings.max_iterations)
            components = components.select("node", "component").localCheckpoint()
        with self.steps("ids"):
            # materialised once: assign_ids' four outputs each read them
            anchors = self._table("persons").where(F.col("status") == "active").select("user_id", "anchor")
            anchors = anchors.localCheckpoint()
            first_seen = nodes.join(scope_nodes, "node", "left_semi").select("node", "first_seen").localCheckpoint()
            result = assign_ids(components, old, anchors, first_seen)
            assigned = result.nodes.localCheckpoint()
            changes = result.changes.localCheckpoint()
            self._write_persons(result.issued.localCheckpoint(), result.retired.localCheckpoint())
            self._write_changes(changes)
        with self.steps("map"):
            self._write_map(assigned, nodes, full)
        with self.steps("relabel"):
            self._relabel_events(old, assigned, None if full else marks.get("clickstream_events"), previous is None)
            self._relabel_customers(old, assigned, full)
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

    def _person_counts(self) -> tuple[int, int]:
        persons = self._table("persons").where(F.col("status") == "active").count()
        return persons, self._table("nodes").where("shared").count()
