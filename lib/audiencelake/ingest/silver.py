"""Bronze batch -> silver: conform, derive, gate, resolve versions, then MERGE; quarantine and audit the rest.

Writes per batch, in order: silver (MERGE, or a replace of the batch's own rows when every key is new), the
PII-restricted table (MERGE) and quarantine (replace the batch's rows); its quality results and last its audit row,
which marks the batch done, are recorded (`ingest.records`) and written with those of the ingest's other batches.
A run that stopped part-way processes the batch again with the same outcome: rows the batch itself wrote are not
counted against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.core.contracts import RULE_FAILURES, Contract, spark_type
from audiencelake.core.lake import RESTRICTED, Lake, check_schema
from audiencelake.core.pii import SALT, salted_hash, with_salt
from audiencelake.core.runs import Run
from audiencelake.identity.stitch import attach_user_ids
from audiencelake.ingest.bronze import BATCH_STORAGE
from audiencelake.ingest.conform import conform
from audiencelake.ingest.derive import derive
from audiencelake.ingest.records import BatchRecords
from audiencelake.ingest.sessions import Sessioned, sessionise, update_sessions
from audiencelake.ingest.versions import TO_SILVER, resolve_versions
from audiencelake.quality.gate import failure, validate

DISPOSITIONS = ("quarantined", "duplicate", "superseded", TO_SILVER)


@dataclass(frozen=True)
class BatchAudit:
    source: str
    batch_id: str
    rows_read: int
    rows_bronze_rejected: int
    rows_silver_rejected: int
    rows_duplicate: int
    rows_superseded: int
    rows_to_silver: int
    rows_warned: int
    rows_ids_cleaned: int = 0

    @property
    def balanced(self) -> bool:
        parts = self.rows_bronze_rejected + self.rows_silver_rejected + self.rows_duplicate
        return self.rows_read == parts + self.rows_superseded + self.rows_to_silver


def pending_batches(lake: Lake, source: str) -> dict[str, int]:
    """Batches of `source` in the ledger that have no audit row yet, oldest first, with their number of files."""
    ledger_ref, audit_ref = lake.ref("ops", "ingest_files"), lake.ref("ops", "ingest_audit")
    if not lake.ensure(ledger_ref):
        lake.add_new_columns(ledger_ref)  # a ledger from before failed files
    lake.ensure(audit_ref)
    ledger = (
        lake.read(ledger_ref)
        .where((F.col("source") == source) & F.col("status").isNull())
        .groupBy("batch_id")
        .agg(F.count("*").alias("n"))
    )
    done = lake.read(audit_ref).where(F.col("source") == source).select("batch_id")
    return dict(sorted((r[0], int(r[1])) for r in ledger.join(done, "batch_id", "left_anti").collect()))


def _record_hash(c: Contract):
    return salted_hash(F.to_json(F.struct(*[F.col(f"`{col.name}`") for col in c.columns])))


def process_batch(
    lake: Lake,
    source: str,
    batch_id: str,
    run: Run,
    files: int,
    records: BatchRecords,
    bronze: DataFrame | None = None,
) -> BatchAudit:
    """Process one bronze batch of `source` (of `files` landing files) into silver and return its accounting; its
    quality results and audit row go to `records`, which the caller writes.

    `bronze` is the batch's bronze rows as the bronze append kept them (one read of the landing files); without it
    the batch is read back from `bronze.<source>` (a batch a stopped run left pending). A batch appended by this run
    is fresh: its id is new, so no table holds its rows yet and its outputs are appended, not replaced."""
    settings = lake.settings
    src = settings.sources[source]
    c = settings.contract(src.table, source)  # the business thresholds in force for this source's rows
    salt = settings.pii_salt()
    silver_ref, restricted_ref = lake.ref("silver", c.table), lake.ref(RESTRICTED, f"{c.table}_pii")
    lake.ensure(silver_ref)
    if c.pii_columns:
        lake.ensure(restricted_ref, c.table)
    fresh = bronze is not None
    if bronze is None:
        bronze = lake.read(lake.ref("bronze", source)).where(F.col("_batch_id") == batch_id)
    rows_read = bronze.count()  # counted apart from the dispositions, so the balance check can fail
    rows = (
        bronze.transform(conform, c, src)
        .transform(with_salt, salt)
        .transform(derive, c)
        .withColumn("_record_hash", _record_hash(c))
        .drop(SALT)
        .transform(attach_user_ids, lake, c)
    ).persist(BATCH_STORAGE)
    try:
        return _gate_and_write(lake, source, batch_id, run, c, rows, rows_read, files, fresh, records)
    finally:
        rows.unpersist()


def _gate_and_write(
    lake: Lake,
    source: str,
    batch_id: str,
    run: Run,
    c: Contract,
    rows: DataFrame,
    rows_read: int,
    files: int,
    fresh: bool,
    records: BatchRecords,
) -> BatchAudit:
    silver_ref, restricted_ref = lake.ref("silver", c.table), lake.ref(RESTRICTED, f"{c.table}_pii")
    candidates = rows.where(F.col("_reason").isNull()).select(*[F.col(f"`{n}`") for n in c.data_columns])
    gate = validate(
        c, candidates, as_of=run.as_of, run_id=run.run_id, batch_id=batch_id, scope="batch",
        sample_size=lake.settings.quality.sample_size,
    )  # fmt: skip
    records.add_results(c.table, batch_id, gate.records, fresh)
    gate.enforce()
    failed = F.col("_reason").isNull() & gate.rejects.isNotNull()
    gated = (
        rows.withColumn("_failures", F.when(failed, gate.failures))
        .withColumn("_rule", F.when(failed, gate.rejects[0]["rule"]).otherwise(F.col("_rule")))
        .withColumn("_stage", F.when(failed, F.lit("quality")).otherwise(F.col("_stage")))
        .withColumn("_reason", F.when(failed, F.lit("expectation")).otherwise(F.col("_reason")))
        .withColumn("_warnings", F.when(F.col("_reason").isNull(), gate.warnings))
        .withColumn("_warned", F.col("_warnings").isNotNull())
    )  # fmt: skip
    # silver as of now, pinned: read unpinned, the plan of `resolved` would change with the first write below and
    # every later use would miss the cache and resolve the batch's versions again (two shuffles of the batch)
    lake.add_new_columns(silver_ref)  # a table from an earlier release gets the lineage columns added since
    existing = lake.read_version(silver_ref, lake.version(silver_ref)).where(F.col("_batch_id") != batch_id)
    carry = (c.sessions.by,) if c.sessions else ()  # the visitor of a replaced row: their sessions change too
    resolved = gated.transform(resolve_versions, c, existing, carry).persist(BATCH_STORAGE)
    try:
        counts = {r["_disposition"]: r for r in resolved.groupBy("_disposition").agg(
            F.count("*").alias("n"), F.sum(F.col("_warned").cast("long")).alias("warned"),
            F.sum((F.col("_stage") == "bronze").cast("long")).alias("bronze"),
            F.sum(F.col("_in_silver").cast("long")).alias("updates"),
            F.sum(F.col("_ids_cleaned").cast("long")).alias("ids_cleaned")).collect()}  # fmt: skip
        rows.unpersist()  # `resolved` now holds every row: one copy of the batch at a time
        to_silver = resolved.where(F.col("_disposition") == TO_SILVER)
        winners = check_schema(to_silver, c.table)
        sessioned = _sessions(c, to_silver, winners, existing) if c.sessions else None
        if sessioned is not None:
            winners = sessioned.batch()
        if sessioned is not None and not sessioned.stable:  # (a stable batch changes no stored row)
            # before the batch's write: a run stopped between the two then still finds the rows the batch replaces
            # (and their times) in silver, and computes the same sessions again
            update_sessions(lake, silver_ref, c, sessioned.changed())
        if c.partition_by:  # one writer per partition value: few, large files instead of tasks x dates small ones
            winners = winners.repartition(*[F.col(p) for p in c.partition_by])
        if TO_SILVER in counts and counts[TO_SILVER]["updates"]:
            newer = f"s.`{c.order_by}` > t.`{c.order_by}` OR t._batch_id = s._batch_id"
            lake.merge_upsert(winners, silver_ref, c.keys, newer=newer)
        else:  # only new keys: append, replacing whatever an interrupted run of this batch wrote
            lake.replace_where(winners, silver_ref, f"_batch_id = '{batch_id}'", fresh=fresh)
        if sessioned is not None:
            sessioned.rows.unpersist()  # persisted only when existing rows changed; a no-op otherwise
        if c.pii_columns:
            restricted = check_schema(resolved.where(F.col("_disposition") == TO_SILVER), c.table, restricted=True)
            lake.merge_upsert(restricted, restricted_ref, c.keys, newer=f"s.`{c.order_by}` >= t.`{c.order_by}`")
        bad = resolved.where(F.col("_disposition") == "quarantined")
        _write_quarantine(lake, source, c, batch_id, run, bad, any_bad="quarantined" in counts, fresh=fresh)
    finally:
        resolved.unpersist()
    n = {d: int(counts[d]["n"]) if d in counts else 0 for d in DISPOSITIONS}
    bronze_rejected = int(counts["quarantined"]["bronze"]) if "quarantined" in counts else 0
    audit = BatchAudit(
        source=source, batch_id=batch_id, rows_read=rows_read, rows_bronze_rejected=bronze_rejected,
        rows_silver_rejected=n["quarantined"] - bronze_rejected, rows_duplicate=n["duplicate"],
        rows_superseded=n["superseded"], rows_to_silver=n[TO_SILVER],
        rows_warned=int(counts[TO_SILVER]["warned"] or 0) if TO_SILVER in counts else 0,
        rows_ids_cleaned=sum(int(r["ids_cleaned"] or 0) for r in counts.values()),
    )  # fmt: skip
    row = {**audit.__dict__, "run_id": run.run_id, "files": files, "processed_at": datetime.now(UTC)}
    records.add_audit(row, c.table, fresh)
    return audit


def _sessions(c: Contract, to_silver: DataFrame, winners: DataFrame, existing: DataFrame) -> Sessioned:
    """The batch's rows for silver sessionised against silver's. When existing rows change too, the rows are kept
    on disk: the write and the update of the existing rows both read them."""
    s = c.sessions
    replaced = None
    if c.order_by == s.time:  # version resolution found the time of each row the batch replaces
        replaced = to_silver.where("_in_silver").select(
            c.keys[0], F.col(f"_replaced_{s.by}").alias(s.by), F.col("_replaced_order").alias(s.time)
        )
    sessioned = sessionise(winners, existing, c, replaced)
    if sessioned.stable:
        return sessioned
    return Sessioned(sessioned.rows.persist(BATCH_STORAGE), sessioned.columns, c)


def _write_quarantine(
    lake: Lake, source: str, c: Contract, batch_id: str, run: Run, bad: DataFrame, any_bad: bool, fresh: bool
) -> None:
    """Replace the batch's quarantined rows with `bad`. A batch with none, whose earlier runs (a run stopped
    part-way, under other rules) left none either, makes no commit; a fresh batch has had no earlier run."""
    ref = lake.ref("ops", "quarantine")
    where = f"source = '{source}' AND batch_id = '{batch_id}'"
    if not any_bad and (fresh or not lake.exists(ref) or lake.read(ref).where(where).isEmpty()):
        return
    rows = bad.select(
        F.lit(source).alias("source"), F.lit(c.table).alias("table"), F.col("_stage").alias("stage"),
        F.col("_reason").alias("reason"), F.col("_rule").alias("rule"),
        # an expectation's row: every rule it fails; rejected before (bronze, contract, versions): the reason
        F.coalesce("_failures", F.array(failure(F.col("_reason"), F.col("_rule"), F.lit("error"))))
        .cast(spark_type(RULE_FAILURES)).alias("failures"),
        F.col("_file").alias("file"),
        F.lit(batch_id).alias("batch_id"), F.col("_raw").alias("raw"), F.sha2("_raw", 256).alias("record_hash"),
        F.lit(run.run_id).alias("run_id"), F.current_timestamp().alias("quarantined_at"),
    )  # fmt: skip
    rows = rows.repartition(1)  # one small file per source and batch
    lake.add_new_columns(ref)  # a quarantine from an earlier release gets `failures`
    lake.replace_where(check_schema(rows, "quarantine"), ref, where, fresh=fresh)
