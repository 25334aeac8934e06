"""The identity graph in Delta, updated incrementally: new silver rows -> edges and nodes -> the components they
touch -> persistent ids -> ops.identity_map, with every merge and split logged.

A run reads the silver rows ingested after the previous run's high-water mark (identity.identity_runs), so its
cost follows the new rows; `identity.rebuild` recomputes every edge, node and component from all of silver and
gives the same graph. Write order makes a crash safe: edges, nodes, persons and the change log first, the map
next, the high-water mark last, so a re-run after a crash reads the same rows again and every write is keyed.

`update_graph` is the run, step by step: it reads through `IdentityTables`, plans with the pure functions of
`edges`, `components` and `persons` (and the helpers below, which only read), and writes through `graph_writes`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.core.lake import Lake
from audiencelake.core.progress import Steps
from audiencelake.core.runs import Run
from audiencelake.identity import edges as E
from audiencelake.identity import graph_writes as W
from audiencelake.identity.components import connected_components
from audiencelake.identity.config import IdentityConfig, load_identity_config
from audiencelake.identity.match_edges import match_edges
from audiencelake.identity.persons import assign_ids
from audiencelake.identity.tables import SOURCES, IdentityTables

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
    events_updated: int  # clickstream events given another user_id
    customer_rows_updated: int  # rows of the customer tables given another user_id


def update_graph(lake: Lake, run: Run, config: IdentityConfig | None = None, steps: Steps | None = None) -> GraphStats:
    """Update the identity graph from the silver rows ingested since the last run (all of them on a rebuild);
    `steps` collects the seconds of each step (edges, nodes, matching, components, ids, map, relabel)."""
    settings = lake.settings.identity
    config = config or load_identity_config(
        settings.config and lake.settings.resolve(settings.config), lake.settings.overrides("identity")
    )
    t = IdentityTables(lake, run)
    steps = steps or Steps("identity", log)
    previous = t.previous_map()
    marks = t.watermarks()
    full = settings.rebuild or previous is None or not marks
    mode = "full" if full else "incremental"
    reads = {s: t.silver(s, None if full else marks.get(s)) for s in SOURCES}
    seen = {s: reads[s].agg(F.count("*").alias("n"), F.max("_ingested_at").alias("w")).first() for s in SOURCES}
    counts = {s: int(seen[s]["n"]) for s in SOURCES}
    newest = {s: seen[s]["w"] for s in SOURCES}
    if not full and not any(counts.values()):
        W.record_runs(t, mode, marks, counts, {s: 0 for s in SOURCES}, newest)
        persons, shared = _person_counts(t)
        return GraphStats(mode, 0, 0, 0, persons, 0, 0, shared, 0, 0)

    with steps("edges"):
        click_pairs = E.clickstream_pairs(reads["clickstream_events"])
        crm_pairs = E.crm_pairs(reads["crm_profiles"])
        changed_customers = reads["crm_profiles"].select(F.concat(F.lit("c:"), "customer_id").alias("node"))
        run_id = F.lit(run.run_id)
        deterministic = (
            E.edges_from_pairs(click_pairs, "clickstream")
            .unionByName(E.edges_from_pairs(crm_pairs, "crm"))
            .withColumn("updated_run", run_id)
            .localCheckpoint()
        )
        sightings = E.node_sightings(click_pairs.unionByName(crm_pairs)).localCheckpoint()
        new_edges = _count_new(t, deterministic)
        if full:
            W.overwrite_edges(t, deterministic)
            touched = None
        else:
            dropped = _drop_superseded(t, changed_customers)
            W.merge_edges(t, deterministic)
            touched = _endpoints(deterministic).unionByName(sightings.select("node")).unionByName(dropped)
    with steps("nodes"):
        W.write_nodes(t, _node_rows(t, config, sightings, touched), full=touched is None)
        nodes = t.table("nodes")
    # probabilistic edges last: the matcher ignores emails and phones of more customers than the evidence limit
    with steps("matching"):
        matches = match_edges(t, config.matching, reads["crm_profiles"], nodes, full).withColumn("updated_run", run_id)
        matches = matches.localCheckpoint()
        if matches.limit(1).count():
            found = _count_new(t, matches).get("crm_profiles", 0)
            new_edges["crm_profiles"] = new_edges.get("crm_profiles", 0) + found
            W.merge_edges(t, matches)
        if touched is not None:
            touched = touched.unionByName(_endpoints(matches)).distinct().localCheckpoint()
    with steps("components"):
        scope_nodes, scope_edges, old = _scope(t, nodes, touched, previous)
        components = connected_components(scope_edges, settings.max_iterations)
        components = components.select("node", "component").localCheckpoint()
    with steps("ids"):
        # materialised once: assign_ids' four outputs each read them
        anchors = t.table("persons").where(F.col("status") == "active").select("user_id", "anchor").localCheckpoint()
        first_seen = nodes.join(scope_nodes, "node", "left_semi").select("node", "first_seen").localCheckpoint()
        result = assign_ids(components, old, anchors, first_seen)
        assigned = result.nodes.localCheckpoint()
        changes = result.changes.localCheckpoint()
        W.write_persons(t, result.issued.localCheckpoint(), result.retired.localCheckpoint())
        W.write_changes(t, changes)
    with steps("map"):
        W.write_map(t, assigned, nodes, full)
    with steps("relabel"):
        events = W.relabel_events(t, old, assigned, None if full else marks.get("clickstream_events"), previous is None)
        customer_rows = W.relabel_customers(t, old, assigned, full)
    W.record_runs(t, mode, marks, counts, new_edges, newest)
    kinds = {r["change"]: r["n"] for r in changes.groupBy("change").agg(F.count("*").alias("n")).collect()}
    persons, shared = _person_counts(t)
    return GraphStats(
        mode, sum(counts.values()), sum(new_edges.values()), assigned.count(), persons,
        kinds.get("merge", 0), kinds.get("split", 0), shared, events, customer_rows,
    )  # fmt: skip


def _endpoints(edges: DataFrame) -> DataFrame:
    return edges.select(F.col("src").alias("node")).unionByName(edges.select(F.col("dst").alias("node")))


def _count_new(t: IdentityTables, incoming: DataFrame) -> dict[str, int]:
    """The incoming edges new to the graph or widening a known one's first/last seen, per silver table."""
    existing = t.table("edges").select("src", "dst", "source", "first_seen", "last_seen")
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


def _drop_superseded(t: IdentityTables, changed_customers: DataFrame) -> DataFrame:
    """Delete the crm and crm_match edges of customers whose CRM record changed (they are derived again from the
    current record); returns the nodes those edges touched."""
    edges = t.table("edges")
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
        W.drop_edges(t, gone)
    return gone.select(F.col("src").alias("node")).unionByName(gone.select(F.col("dst").alias("node")))


def _node_rows(t: IdentityTables, config: IdentityConfig, sightings: DataFrame, touched: DataFrame | None):
    """The touched nodes (all on a rebuild) with first/last seen, customer counts and the shared flag."""
    edges = t.table("edges")
    if touched is None:
        seen, counts = sightings, E.customer_counts(edges)
    else:
        old = t.table("nodes").join(touched, "node", "left_semi").select("node", "first_seen", "last_seen")
        seen = (
            old.unionByName(sightings.join(touched, "node", "left_semi"))
            .groupBy("node")
            .agg(F.min("first_seen").alias("first_seen"), F.max("last_seen").alias("last_seen"))
        )
        counts = E.customer_counts(edges, touched).join(touched, "node", "left_semi")
    limit = F.lit(None).cast("int")
    for id_type, guard in config.identifiers.items():
        limit = F.when(E.node_type(F.col("node")) == id_type, F.lit(guard.max_customers)).otherwise(limit)
    return (
        seen.join(counts, "node", "left")
        .select(
            "node",
            E.node_type(F.col("node")).alias("id_type"),
            F.expr("substring(node, 3)").alias("identifier"),
            "first_seen",
            "last_seen",
            F.coalesce("customers", F.lit(0)).cast("int").alias("customers"),
            F.coalesce(F.coalesce("customers", F.lit(0)) > limit, F.lit(False)).alias("shared"),
            F.lit(t.run.run_id).alias("updated_run"),
        )
        .localCheckpoint()
    )


def _scope(t: IdentityTables, nodes: DataFrame, touched: DataFrame | None, previous: DataFrame | None):
    """(scope nodes, their active edges with a self loop per node, their previous ids): every node on a rebuild;
    else the touched nodes and every node of the components they were in."""
    edges = t.table("edges")
    shared = nodes.where("shared").select("node")
    active = (
        edges.join(shared.withColumnRenamed("node", "src"), "src", "left_anti")
        .join(shared.withColumnRenamed("node", "dst"), "dst", "left_anti")
        .select("src", "dst")
    )
    spark = t.lake.spark
    if touched is None:
        scope = nodes.select("node")
    else:
        prev = previous if previous is not None else spark.createDataFrame([], "node string, component string")
        hit = prev.join(touched, "node").select("component").distinct()
        scope = touched.unionByName(prev.join(hit, "component").select("node")).distinct()
        active = active.join(scope.withColumnRenamed("node", "src"), "src", "left_semi")
    scope = scope.localCheckpoint()
    loops = scope.select(F.col("node").alias("src"), F.col("node").alias("dst"))
    old = (
        previous.join(scope, "node", "left_semi").select("node", "user_id")
        if previous is not None
        else spark.createDataFrame([], "node string, user_id string")
    )
    # materialised now: the map is rewritten before the events are relabelled against these old ids
    return scope, active.unionByName(loops), old.localCheckpoint()


def _person_counts(t: IdentityTables) -> tuple[int, int]:
    persons = t.table("persons").where(F.col("status") == "active").count()
    return persons, t.table("nodes").where("shared").count()
