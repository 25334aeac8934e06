"""Landing files the reader cannot take, quarantined as files: when a batch's read fails, each new file is tried
alone; those that fail (a CSV header unlike the other files', a truncated archive, bytes that are not the format)
are copied whole under the lake's `_quarantine/files/<source>/`, recorded in the file ledger as failed with the
reason, and left out of the batch, so the source's other files land. A failed file is tried again once its size or
modification time changes (the file was replaced)."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from datetime import UTC, datetime

from pyspark.sql import SparkSession

from audiencelake.core.contracts import contract
from audiencelake.core.errors import SourceError
from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from audiencelake.core.source_settings import SourceSettings
from audiencelake.core.sql import sql_literal
from audiencelake.ingest.landing import LandingFile
from audiencelake.ingest.reader import csv_options, csv_separator, read_failure, read_raw

FAILED = "failed"
KEPT = "_quarantine/files"  # under the lake's root
log = logging.getLogger(__name__)


def failed_batch_id(run: Run) -> str:
    """The ledger's batch id of the files a run could not read."""
    return f"{FAILED}-{run.run_id}"


def failed_files(lake: Lake, run: Run) -> int:
    """How many landing files `run` set aside as unreadable."""
    ref = lake.ref("ops", "ingest_files")
    if not lake.exists(ref) or "status" not in lake.read(ref).columns:
        return 0
    return lake.read(ref).where(f"batch_id = '{failed_batch_id(run)}'").count()


def _repeated(spark: SparkSession, src: SourceSettings, f: LandingFile) -> list[str]:
    """The column names a CSV file's header line repeats (Spark would rename them apart, and read the file)."""
    options = csv_options(src)
    sep = csv_separator(options)
    first = spark.read.text(f.read_path).first()
    if first is None or len(sep) != 1:
        return []
    names = next(csv.reader(io.StringIO(first[0].lstrip("\ufeff")), delimiter=sep, quotechar=options["quote"] or None))
    return sorted({n.strip() for n in names if [m.strip() for m in names].count(n.strip()) > 1})


def unreadable(spark: SparkSession, src: SourceSettings, files: list[LandingFile]) -> dict[str, str]:
    """The files of `files` that cannot be read, each with why: a CSV header that repeats a column, or any error
    reading the file alone (one or two Spark jobs per file: only called once the batch's read has failed). Files
    whose headers merely differ read apart and are not among them (`reader.read_grouped`)."""
    bad: dict[str, str] = {}
    candidates = list(files)
    if src.format == "csv" and not src.names and str(src.options.get("header", "true")).lower() == "true":
        for f in files:
            if repeated := _repeated(spark, src, f):
                bad[f.path] = f"its header repeats the columns {repeated}"
        candidates = [f for f in files if f.path not in bad]
    for f in candidates:
        try:
            read_raw(spark, src, [f.read_path]).count()
        except Exception as exc:  # noqa: BLE001 - any reader error is the file's
            reason = read_failure(str(exc))  # "<file>: <cause>": the cause alone (the ledger row names the file)
            head, _, cause = reason.partition(": ")
            bad[f.path] = cause if cause and head.endswith(f.read_path.rsplit("/", 1)[-1]) else reason
    return bad


def set_aside(
    spark: SparkSession, src: SourceSettings, source: str, files: list[LandingFile], exc: Exception, what: str
) -> dict[str, str]:
    """After reading `files` together failed with `exc`: the files to set aside, each with why (`unreadable`); the
    others are read by header (`reader.read_grouped`).

    Raises:
        SourceError: nothing to set aside where the files could not be read by header either (not CSV), or every
            file failed for one reason: a setting is at fault, not the files (`what` names the files).
    """
    bad = unreadable(spark, src, files)
    grouped = src.format == "csv" and not src.names  # CSV files whose headers differ are read by header
    if (not bad and not grouped) or (len(bad) == len(files) > 1 and len(set(bad.values())) == 1):
        reason = next(iter(bad.values())) if bad else read_failure(str(exc))
        raise SourceError(f"source '{source}': cannot read {what}: {reason}") from exc
    return bad


def quarantine_files(lake: Lake, source: str, run: Run, files: list[LandingFile], reasons: dict[str, str]) -> None:
    """Copy each file under `_quarantine/files/<source>/<run>/` and record it in the ledger as failed."""
    spark = lake.spark
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    now = datetime.now(UTC)
    rows = []
    for f in files:
        src_path = jvm.org.apache.hadoop.fs.Path(f.read_path)
        unique = hashlib.sha256(f.path.encode()).hexdigest()[:8]  # two failed export.csv of one run stay apart
        kept = f"{lake.settings.lake_root}/{KEPT}/{source}/{run.run_id}/{unique}-{src_path.getName()}"
        dst_path = jvm.org.apache.hadoop.fs.Path(kept)
        jvm.org.apache.hadoop.fs.FileUtil.copy(
            src_path.getFileSystem(conf), src_path, dst_path.getFileSystem(conf), dst_path, False, True, conf
        )
        log.warning("source '%s': %s not ingested: %s (kept at %s)", source, f.path, reasons[f.path], kept)
        rows.append((source, f.path, f.size, f.modified_at, failed_batch_id(run), now, FAILED, reasons[f.path], kept))
    df = spark.createDataFrame(rows, contract("ingest_files").table_schema())
    lake.merge_upsert(df, lake.ref("ops", "ingest_files"), ["source", "file"])


def forget_failures(lake: Lake, source: str, paths: list[str]) -> None:
    """Drop the failed ledger rows of files now ingested (replaced since they failed), and their kept copies."""
    quoted = ", ".join(sql_literal(p) for p in paths)
    condition = f"source = {sql_literal(source)} AND status = '{FAILED}' AND file IN ({quoted})"
    ref = lake.ref("ops", "ingest_files")
    jvm = lake.spark.sparkContext._jvm
    conf = lake.spark.sparkContext._jsc.hadoopConfiguration()
    for row in lake.read(ref).where(condition).select("kept_at").collect():
        if row["kept_at"]:
            kept = jvm.org.apache.hadoop.fs.Path(row["kept_at"])
            kept.getFileSystem(conf).delete(kept, False)
    lake.delta(ref).delete(condition)
