"""The identity graph's outputs: persons, the change log, the identity map, the relabelled clickstream events and
the run's high-water marks. Mixed into identity.graph.IdentityGraph."""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.core.contracts import contract
from audiencelake.core.lake import check_schema

SOURCES = ("clickstream_events", "crm_profiles")  # the silver tables identity reads
PRUNE_LIMIT = 400  # relabelling MERGEs list at most this many partition values (dates) in their condition
CUSTOMER_TABLES = ("crm_profiles", "orders", "campaign_touches", "social_interactions")  # user_id by customer_id


class GraphWrites:
    """Needs `lake`, `run`, `refs`, `map_ref`, `relabelled` and `_silver` (IdentityGraph provides them)."""

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

    def _relabel_events(self, old: DataFrame, assigned: DataFrame, after: datetime | None, first: bool) -> None:
        """Set `user_id` on the clickstream events ingested since `after` (all events on a rebuild), and on the
        earlier events of cookies that were in the map before and changed person. Cookies new to the map have no
        earlier events, so without merges or splits no earlier file is read or rewritten. On the `first` run (no map
        yet) every event is labelled by one MERGE keyed by cookie."""
        anon = assigned.where(F.col("node").startswith("a:")).select(
            "node", F.expr("substring(node, 3)").alias("anonymous_id"), F.col("user_id").alias("new_user_id")
        )
        self.relabelled["clickstream_events"] = 0
        if first:
            self._label_events_by_cookie(anon.drop("node"))
            return
        events = self._silver("clickstream_events", None).select(
            "event_id", "event_date", "anonymous_id", "user_id", "_ingested_at"
        )
        if after is None:
            self._set_user_ids("clickstream_events", events.join(anon.drop("node"), "anonymous_id", "left"))
            return
        fresh = events.where(F.col("_ingested_at") > F.lit(after))
        self._set_user_ids("clickstream_events", fresh.join(anon.drop("node"), "anonymous_id", "left"), after)
        moved = (
            anon.join(old, "node")
            .where(~F.col("new_user_id").eqNullSafe(F.col("user_id")))
            .select("anonymous_id", "new_user_id")
            .localCheckpoint()
        )
        if moved.limit(1).count():
            earlier = events.where(F.col("_ingested_at") <= F.lit(after))
            self._set_user_ids("clickstream_events", earlier.join(F.broadcast(moved), "anonymous_id"))

    def _relabel_customers(self, old: DataFrame, assigned: DataFrame, full: bool) -> None:
        """Set `user_id` on the rows of the customer tables whose customer changed person (every row on a rebuild).
        Ingest gave new rows the person the map knew, or the customer id itself: only merges and splits move them."""
        customers = assigned.where(F.col("node").startswith("c:")).select(
            "node", F.expr("substring(node, 3)").alias("customer_id"), F.col("user_id").alias("new_user_id")
        )
        if not full:
            before = F.coalesce(F.col("user_id"), F.col("customer_id"))
            customers = customers.join(old, "node", "left").where(F.col("new_user_id") != before)
        moved = customers.select("customer_id", "new_user_id").localCheckpoint()
        if not full and not moved.limit(1).count():
            return
        for table in CUSTOMER_TABLES:
            ref = self.lake.ref("silver", table)
            if not self.lake.exists(ref):
                continue
            rows = self.lake.read(ref)
            rows = rows.join(moved if full else F.broadcast(moved), "customer_id")
            self._set_user_ids(table, rows)

    def _label_events_by_cookie(self, ids: DataFrame) -> None:
        """Set every event's `user_id` to its cookie's person in `ids` (anonymous_id, new_user_id: one row per cookie;
        null for a cookie without a person or not in `ids`) in one MERGE keyed by cookie, with the map as the source:
        no list of changed events is built and shuffled (the demo's 236,674 events, all unlabelled: 5.2-7.4 s
        against 9.2-13.5 s for the event-keyed MERGE). Every file with a labelled event is rewritten, so it is for a
        first run, when that is most of them. Adds the rows changed to `relabelled`."""
        ref = self.lake.ref("silver", "clickstream_events")
        self.lake.ensure(ref)  # (a lake without the source: empty, nothing changes)
        result = (
            self.lake.delta(ref)
            .alias("t")
            .merge(ids.alias("s"), "t.anonymous_id = s.anonymous_id")
            .whenMatchedUpdate(condition="NOT (t.user_id <=> s.new_user_id)", set={"user_id": "s.new_user_id"})
            .whenNotMatchedBySourceUpdate(condition="t.user_id IS NOT NULL", set={"user_id": "NULL"})
            .execute()
        )
        self.relabelled["clickstream_events"] += int(result.first()["num_updated_rows"])

    def _set_user_ids(self, table: str, rows: DataFrame, ingested_after: datetime | None = None) -> None:
        """MERGE `new_user_id` into `table`'s `user_id` for the `rows` (its keys, user_id, new_user_id) where they
        differ; adds the rows changed to `relabelled`. With `ingested_after`, the rows are all ingested after it, and
        the MERGE skips the files written before (by their `_ingested_at` statistics)."""
        c = contract(table)
        keys = [*c.partition_by, *c.keys]
        changed = (
            rows.where(~F.col("user_id").eqNullSafe(F.col("new_user_id")))
            .select(*keys, "new_user_id")
            .distinct()
            .localCheckpoint()
        )
        count = changed.count()
        self.relabelled[table] = self.relabelled.get(table, 0) + count
        if not count:
            return
        condition = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
        if ingested_after is not None:
            instant = ingested_after.astimezone(UTC).isoformat()  # naive: local time, as PySpark reads it
            condition = f"t._ingested_at > TIMESTAMP'{instant}' AND {condition}"
        if c.partition_by:  # name the partitions in the condition: the MERGE then reads only those
            column = c.partition_by[0]
            values = [r[0] for r in changed.select(column).distinct().limit(PRUNE_LIMIT + 1).collect()]
            if len(values) <= PRUNE_LIMIT:
                listed = ", ".join(f"'{v}'" for v in values)
                condition = f"t.`{column}` IN ({listed}) AND {condition}"
        (
            self.lake.delta(self.lake.ref("silver", table))
            .alias("t")
            .merge(changed.alias("s"), condition)
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
