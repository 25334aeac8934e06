"""Landing -> bronze: append the records of files not ingested before, raw, with lineage.

The bronze append is the batch's only write before the file ledger (`ops.ingest_files`) is updated; a run that
stopped in between finds the batch in bronze and records it in the ledger instead of reading the files again.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.core.contracts import contract
from audiencelake.core.errors import SourceError
from audiencelake.core.lake import Lake, check_schema
from audiencelake.core.runs import Run
from audiencelake.ingest.failed_files import FAILED, forget_failures, quarantine_files, set_aside
from audiencelake.ingest.landing import LandingFile, list_files
from audiencelake.ingest.reader import read_failure, read_grouped, read_raw

# A batch is read from landing once and used several times (bronze, then silver's gate, version resolution and
# writes), so it is kept, on local disk: a batch's size has no bound, and in the heap two copies of a
# 4-million-event batch ran a 4 GB local session out of memory (benchmarks/run.py, issue 9). The OS page cache keeps
# re-reads fast.
BATCH_STORAGE = StorageLevel.DISK_ONLY
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BronzeBatch:
    """A batch appended to bronze. `rows` are its bronze rows as written, kept on local disk so that silver reads
    the batch from this one pass over the landing files instead of reading it back; `release` drops them."""

    source: str
    batch_id: str
    files: list[LandingFile]
    rows: DataFrame | None = None

    def release(self) -> None:
        if self.rows is not None:
            self.rows.unpersist()


def _batch_id(source: str, files: list[LandingFile], now: datetime) -> str:
    digest = hashlib.sha256("\n".join(f"{f.path}|{f.size}" for f in files).encode()).hexdigest()[:10]
    return f"{now:%Y%m%dT%H%M%S%f}-{source}-{digest}"


def _ledger_rows(source: str, batch_id: str, files: list[LandingFile], now: datetime) -> list[tuple]:
    return [(source, f.path, f.size, f.modified_at, batch_id, now, None, None, None) for f in files]


def ingest_bronze(lake: Lake, source: str, run: Run) -> tuple[BronzeBatch | None, dict[str, int]]:
    """Append the source's new landing files to `bronze.<source>` as one batch and record them in the ledger.

    Returns:
        The batch written (None when no file is new), and the batches of the source still to be processed into
        silver (this one included), oldest first, with their number of files.
    """
    spark, settings = lake.spark, lake.settings
    src = settings.sources[source]
    listed = list_files(spark, settings.source_path(source))
    if not listed:
        log.warning("source '%s': no landing file matches %s", source, settings.source_path(source))
    ledger = read_ledger(lake, source, listed)
    new = [f for f in listed if ledger.is_new(f)]
    if not new:
        return None, ledger.pending
    try:
        batch = append_batch(lake, source, new, read_raw(spark, src, [f.read_path for f in new]))
    except Exception as exc:  # Spark reports read errors as Py4J/analysis errors: find the files at fault
        bad = set_aside(spark, src, source, new, exc, "the new landing files")
        if bad:
            quarantine_files(lake, source, run, [f for f in new if f.path in bad], bad)
        new = [f for f in new if f.path not in bad]
        if not new:
            return None, ledger.pending
        try:  # the rest, read by header (files whose headers merely differ land together)
            batch = append_batch(lake, source, new, read_grouped(spark, src, [f.read_path for f in new]))
        except Exception as again:
            raise SourceError(
                f"source '{source}': cannot read a new landing file: {read_failure(str(again))}"
            ) from again
    if retried := [f.path for f in batch.files if f.path in ledger.failed]:
        forget_failures(lake, source, retried)  # replaced since they failed, and read now
    return batch, ledger.pending_with(batch)


@dataclass(frozen=True)
class Ledger:
    """What the file ledger says of one source: the files ingested, the files that failed (with their size and
    modification time then), and the batches without an audit row (not yet processed into silver: a stopped run's)
    with their number of files, oldest first."""

    files: set[str]
    pending: dict[str, int]
    failed: dict[str, tuple[int, datetime]] = field(default_factory=dict)

    def is_new(self, f: LandingFile) -> bool:
        """Not ingested, and not failed as it is (a failed file replaced since is tried again)."""
        if f.path in self.files:
            return False
        was = self.failed.get(f.path)  # (Spark gives the stored time back naive, in the driver's zone)
        return was is None or (was[0], was[1].timestamp()) != (f.size, f.modified_at.timestamp())

    def pending_with(self, batch: BronzeBatch) -> dict[str, int]:
        """The pending batches once `batch`, just appended (the newest id), is in the ledger too."""
        return {**self.pending, batch.batch_id: len(batch.files)}


def read_ledger(lake: Lake, source: str, listed: list[LandingFile]) -> Ledger:
    """The ledger of `source`, after recording the files a stopped run left unledgered (`listed`, the source's
    landing files, gives their sizes). One query of the ledger beside the audit's batch ids."""
    ledger_ref, audit_ref = lake.ref("ops", "ingest_files"), lake.ref("ops", "ingest_audit")
    new_ledger = lake.ensure(ledger_ref)
    if not new_ledger:
        lake.add_new_columns(ledger_ref)  # a ledger from before failed files
    lake.ensure(audit_ref)
    new_bronze = lake.ensure(lake.ref("bronze", source), "raw_records")
    audited = lake.read(audit_ref).where(F.col("source") == source).select("batch_id").distinct()
    rows = (
        lake.read(ledger_ref)
        .where(F.col("source") == source)
        .select("file", "batch_id", "status", "size", "modified_at")
        .join(audited.withColumn("audited", F.lit(True)), "batch_id", "left")
        .collect()
        if not new_ledger  # (a ledger created just now has no rows)
        else []
    )
    failed = {r["file"]: (r["size"], r["modified_at"]) for r in rows if r["status"] == FAILED}
    rows = [r for r in rows if r["status"] != FAILED]
    last = max((r["batch_id"] for r in rows), default=None)
    recovered = set() if new_bronze else _recover_unledgered(lake, source, last, {f.path: f for f in listed})
    pending = Counter(r["batch_id"] for r in rows if not r["audited"])
    if recovered:  # (only after a stopped run) a batch is audited after its ledger rows, but ask all the same
        ids = sorted({b for b, _ in recovered})
        done = {r[0] for r in audited.where(F.col("batch_id").isin(ids)).collect()}
        pending += Counter(b for b, _ in recovered if b not in done)
    return Ledger({r["file"] for r in rows} | {f for _, f in recovered}, dict(sorted(pending.items())), failed)


def append_batch(lake: Lake, source: str, files: list[LandingFile], raw: DataFrame) -> BronzeBatch:
    """Append `raw` (from `read_raw` or `json_records`) as one bronze batch of `files`, then record them in the
    ledger. Bronze is written first: a run stopped in between is repaired by `_recover_unledgered`."""
    now = datetime.now(UTC)
    batch_id = _batch_id(source, files, now)
    rows = raw.select(
        F.lit(batch_id).alias("_batch_id"), F.lit(source).alias("_source"), "_file",
        F.lit(now).cast("timestamp").alias("_ingested_at"), "_raw", "_error",
    )  # fmt: skip
    rows = check_schema(rows, "raw_records").persist(BATCH_STORAGE)
    try:
        lake.append(rows, lake.ref("bronze", source))
        ledger_df = lake.spark.createDataFrame(
            _ledger_rows(source, batch_id, files, now), contract("ingest_files").table_schema()
        )
        condition = f"source = '{source}' AND batch_id = '{batch_id}'"  # a batch id made just now: fresh
        lake.replace_where(ledger_df, lake.ref("ops", "ingest_files"), condition, fresh=True)
    except BaseException:
        rows.unpersist()
        raise
    return BronzeBatch(source, batch_id, files, rows)


def _recover_unledgered(
    lake: Lake, source: str, last: str | None, listed: dict[str, LandingFile]
) -> set[tuple[str, str]]:
    """Record in the ledger the files of bronze batches newer than the ledger's `last` one (a stopped run's); returns
    those (batch id, file) pairs."""
    bronze = lake.read(lake.ref("bronze", source))
    newer = bronze if last is None else bronze.where(F.col("_batch_id") > F.lit(last))
    found = newer.groupBy("_batch_id", "_file").agg(F.min("_ingested_at").alias("at")).collect()
    if not found:
        return set()
    rows = [
        (source, r["_file"], listed[r["_file"]].size if r["_file"] in listed else 0,
         listed[r["_file"]].modified_at if r["_file"] in listed else r["at"], r["_batch_id"], r["at"], None, None,
         None)
        for r in found
    ]  # fmt: skip
    df = lake.spark.createDataFrame(rows, contract("ingest_files").table_schema())
    lake.merge_upsert(df, lake.ref("ops", "ingest_files"), ["source", "file"], newer="false")
    return {(r["_batch_id"], r["_file"]) for r in found}
