"""Landing -> bronze: append the records of files not ingested before, raw, with lineage.

The bronze append is the batch's only write before the file ledger (`ops.ingest_files`) is updated; a run that
stopped in between finds the batch in bronze and records it in the ledger instead of reading the files again.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from audiencelake.core.config import SourceSettings
from audiencelake.core.contracts import contract
from audiencelake.core.errors import SourceError
from audiencelake.core.lake import Lake, check_schema
from audiencelake.core.runs import Run
from audiencelake.ingest.failed_files import FAILED, forget_failures, quarantine_files, unreadable
from audiencelake.ingest.landing import LandingFile, canonical_path_col, list_files
from audiencelake.ingest.mapping import source_columns

# Why a record cannot be used at all (bronze `_error`, the quarantine's reason at stage `bronze`)
MALFORMED = "malformed_record"  # not a JSON object, or a CSV row with the wrong number of fields
JSON_ARRAY = "json_array"  # a JSON array where JSON lines (one object per line) were expected
INVALID_ENCODING = "invalid_encoding"  # bytes that are not UTF-8 (e.g. Latin-1): the reader put U+FFFD in their place
TOO_LARGE = "record_too_large"  # over MAX_RECORD_CHARS: no event or profile is that big (a runaway field, a dump)
MAX_RECORD_CHARS = 1_000_000
# A batch is read from landing once and used several times (bronze, then silver's gate, version resolution and
# writes), so it is kept, on local disk: a batch's size has no bound, and in the heap two copies of a
# 4-million-event batch ran a 4 GB local session out of memory (benchmarks/run.py, issue 9). The OS page cache keeps
# re-reads fast.
BATCH_STORAGE = StorageLevel.DISK_ONLY
log = logging.getLogger(__name__)


def record_error(raw: Column, malformed: Column) -> Column:
    """The bronze reason for a record (null when it can be used): its size, its encoding, then whether it parsed."""
    return (
        F.when(F.length(raw) > MAX_RECORD_CHARS, F.lit(TOO_LARGE))
        .when(raw.contains("\ufffd"), F.lit(INVALID_ENCODING))
        .when(malformed & F.ltrim(raw).startswith("["), F.lit(JSON_ARRAY))
        .when(malformed, F.lit(MALFORMED))
    )


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


def json_records(lines: DataFrame) -> DataFrame:
    """Text lines (`value`, with the file source's `_metadata`) -> (_file, _raw, _error); blank lines are skipped, a
    leading byte-order mark is dropped, and a line that is not a JSON object is malformed. Batch and streaming reads
    share it."""
    records = lines.select(
        canonical_path_col(F.col("_metadata.file_path")).alias("_file"),
        F.regexp_replace("value", "^\ufeff", "").alias("_raw"),  # a byte-order mark before a file's first line
    ).where(F.trim("_raw") != "")
    parsed = F.from_json("_raw", T.MapType(T.StringType(), T.StringType()))
    return records.withColumn("_error", record_error(F.col("_raw"), parsed.isNull()))


# RFC 4180: a header line, fields quoted with " and a " inside one doubled, line breaks allowed inside quotes (which
# makes Spark read each file whole: `multiLine: false` in a source's options splits large simple files)
CSV_DEFAULTS = {"header": "true", "multiLine": "true", "quote": '"', "escape": '"'}


def read_raw(spark: SparkSession, src: SourceSettings, paths: list[str]) -> DataFrame:
    """Read landing files into (_file, _raw, _error): one row per record, unparsed.

    JSON: the line is the raw record; a line that is not a JSON object is malformed. CSV: read as RFC 4180 unless
    the source's options say otherwise (`CSV_DEFAULTS`: a quoted field may hold line breaks and doubled quotes);
    fields are read as strings by the header's names and kept as a JSON object; a row with the wrong number of
    fields is malformed.
    A CSV file without a header is read by the source's `names`. Text (`text_records`): each line split by the
    source's `separator` or `widths` into its `names`.
    Either way a record with bytes that are not UTF-8 is `invalid_encoding` (`record_error`). A CSV header naming
    columns the source does not map, or lacking some it does, is logged with the file (schema drift).

    Raises:
        SourceError: a CSV header differs from the first file's, naming the file.
    """
    if src.format == "json":
        return json_records(spark.read.options(**src.options).text(paths))
    if src.format == "text":
        return text_records(spark.read.options(**src.options).text(paths), src)
    if src.format == "csv":
        options = {**CSV_DEFAULTS, **src.options, **({"header": "false"} if src.names else {})}
        header = src.names or spark.read.options(**options).csv(paths[0]).columns
        _warn_drift(src, paths[0], header)
        schema = T.StructType(
            [T.StructField(h, T.StringType()) for h in header] + [T.StructField("_corrupt", T.StringType())]
        )
        df = (
            spark.read.options(
                **options, mode="PERMISSIVE", columnNameOfCorruptRecord="_corrupt", enforceSchema="false"
            )
            .schema(schema)
            .csv(paths)
        )
        raw = F.coalesce("_corrupt", F.to_json(F.struct(*[F.col(f"`{h}`") for h in header])))
        return df.select(
            canonical_path_col(F.col("_metadata.file_path")).alias("_file"),
            raw.alias("_raw"),
            record_error(raw, F.col("_corrupt").isNotNull()).alias("_error"),
        )
    df = spark.read.options(**src.options).parquet(*paths)
    return df.select(
        canonical_path_col(F.col("_metadata.file_path")).alias("_file"),
        F.to_json(F.struct(*[F.col(f"`{c}`") for c in df.columns])).alias("_raw"),
        F.lit(None).cast("string").alias("_error"),
    )


def text_records(lines: DataFrame, src: SourceSettings) -> DataFrame:
    """Text lines -> (_file, _raw, _error): each line's fields, split by the source's `separator` (a regular
    expression; spaces around the line are dropped first) or cut by its `widths`, named by its `names` and kept as a
    JSON object. A line with another number of fields, or longer than the widths, is malformed (its text is kept);
    blank lines and a line that repeats the names (a header) are skipped."""
    names = src.names or []
    line = F.regexp_replace("value", "^\ufeff", "")
    if src.widths:
        starts = [sum(src.widths[:i]) + 1 for i in range(len(src.widths))]
        fields = F.array(*[F.trim(F.substring(line, s, w)) for s, w in zip(starts, src.widths, strict=True)])
        malformed = (F.length(F.rtrim(line)) > sum(src.widths)) | (F.length(line) < starts[-1])
    else:
        fields = F.split(F.trim(line), src.separator or "")
        malformed = F.size(fields) != len(names)
    record = F.to_json(F.struct(*[fields[i].alias(n) for i, n in enumerate(names)]))
    out = (
        lines.where(F.trim(line) != "")
        .select(
            canonical_path_col(F.col("_metadata.file_path")).alias("_file"),
            F.when(malformed, line).otherwise(record).alias("_raw"),
            malformed.alias("_malformed"),
            (fields == F.array(*[F.lit(n) for n in names])).alias("_header"),
        )
        .where(~F.col("_header"))
    )
    return out.select("_file", "_raw", record_error(F.col("_raw"), F.col("_malformed")).alias("_error"))


def _warn_drift(src: SourceSettings, path: str, header: list[str]) -> None:
    """Log the columns a CSV header adds to (kept in bronze `_raw` only) or lacks from the source's contract."""
    expected = set(source_columns(contract(src.table), src).file_columns)
    if extra := [h for h in header if h not in expected]:
        log.warning("%s: columns %s are not in contract '%s' (kept in bronze only)", path, extra, src.table)
    if missing := sorted(expected - set(header)):
        log.warning("%s: columns %s of contract '%s' are missing from the header", path, missing, src.table)


def read_failure(text: str) -> str:
    """The file and the root cause in a Spark read error (a Py4J error's text: a Java stack trace)."""
    file = re.search(r"while reading file (\S+?)\.?\s", text)
    causes = re.findall(r"Caused by: ([^\n]+)", text)
    cause = causes[-1].strip() if causes else next((line for line in text.splitlines() if line.strip()), text)
    if "EOFException" in cause:
        cause += " (a truncated or corrupt compressed file)"
    return f"{file.group(1)}: {cause}" if file else cause


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
        bad = unreadable(spark, src, new)
        if not bad or (len(bad) == len(new) > 1 and len(set(bad.values())) == 1):  # the settings', not the files'
            reason = next(iter(bad.values())) if bad else read_failure(str(exc))
            raise SourceError(f"source '{source}': cannot read the new landing files: {reason}") from exc
        quarantine_files(lake, source, run, [f for f in new if f.path in bad], bad)
        new = [f for f in new if f.path not in bad]
        if not new:
            return None, ledger.pending
        try:
            batch = append_batch(lake, source, new, read_raw(spark, src, [f.read_path for f in new]))
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
