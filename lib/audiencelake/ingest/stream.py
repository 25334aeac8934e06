"""Structured Streaming ingest: JSON landing files -> bronze -> silver, one micro-batch at a time.

One query reads every streaming source's folder as text (the union of one file stream per source) and hands each
micro-batch to `ingest_micro_batch`, which runs the batch path's own steps per source: files the ledger
(`ops.ingest_files`) already holds are dropped, the rest is appended to bronze as one batch and ledgered, and every
pending bronze batch goes through the quality gate and MERGE into silver. The ledger, not the checkpoint, makes a
file count once: a micro-batch replayed after a crash, a lost checkpoint, or a batch `ingest` run over the same
folder all find the file recorded. The checkpoint only spares the stream from listing files it has seen.

A file with no records never reaches a micro-batch; the batch `ingest` stage records it when it next runs.
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from audiencelake.core.errors import ConfigError
from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from audiencelake.ingest.bronze import BronzeBatch, append_batch, read_ledger
from audiencelake.ingest.landing import LandingFile, list_files
from audiencelake.ingest.pipeline import process_pending
from audiencelake.ingest.reader import json_records
from audiencelake.ingest.records import recording

log = logging.getLogger(__name__)
SOURCE_COLUMN = "_stream_source"
TRIGGERS = ("available_now", "processing_time")


def streaming_sources(lake: Lake, sources: list[str] | None = None) -> list[str]:
    """The sources to stream (default `stream.sources`), checked to exist and to be JSON.

    Raises:
        ConfigError: a source is not configured or is not a JSON source.
    """
    settings = lake.settings
    names = sources or settings.stream.sources
    for name in names:
        if name not in settings.sources:
            raise ConfigError(f"conf/{settings.env}.yaml", "stream.sources", f"unknown source '{name}'")
        if settings.sources[name].format != "json":
            raise ConfigError(
                "conf/sources.yaml", f"sources.{name}.format",
                f"streaming ingest reads JSON lines; '{name}' is {settings.sources[name].format}",
            )  # fmt: skip
    return list(names)


def source_stream(lake: Lake, sources: list[str]) -> DataFrame:
    """The records of the sources' landing folders as they arrive: (_file, _raw, _error, _stream_source)."""
    settings, streams = lake.settings, []
    for name in sources:
        src = settings.sources[name]
        lines = (
            lake.spark.readStream.format("text")
            .options(**src.options)
            .option("maxFilesPerTrigger", settings.stream.max_files_per_trigger)
            .load(settings.source_path(name))
        )
        streams.append(json_records(lines).withColumn(SOURCE_COLUMN, F.lit(name)))
    union = streams[0]
    for other in streams[1:]:
        union = union.unionByName(other)
    return union


def ingest_micro_batch(lake: Lake, run: Run, sources: list[str], batch: DataFrame, epoch: int) -> None:
    """Ingest one micro-batch: per source, its files not in the ledger to bronze, then pending batches to silver."""
    batch = batch.persist()
    try:
        present: dict[str, set[str]] = {}
        for r in batch.select(SOURCE_COLUMN, "_file").distinct().collect():
            present.setdefault(r[0], set()).add(r[1])
        with recording(lake) as records:  # the quality results and audit rows of every source, written together
            for source in sources:
                files = present.get(source, set())
                rows = batch.where(F.col(SOURCE_COLUMN) == source)
                fresh, pending = _append_new(lake, source, rows, files, epoch) if files else (None, None)
                process_pending(lake, source, run, records, fresh, pending)  # also what a stopped micro-batch left
    finally:
        batch.unpersist()


def _append_new(
    lake: Lake, source: str, rows: DataFrame, files: set[str], epoch: int
) -> tuple[BronzeBatch | None, dict[str, int]]:
    """Append the micro-batch's records of files not in the ledger as one bronze batch (None when none is new);
    with the batches still to process into silver (this one included), as `ingest_bronze` returns them."""
    listed = {f.path: f for f in list_files(lake.spark, lake.settings.source_path(source))}
    ledger = read_ledger(lake, source, list(listed.values()))
    done = ledger.files
    new: list[LandingFile] = [listed[p] for p in sorted(files - done) if p in listed]
    if missing := sorted(files - done - set(listed)):
        log.warning(
            "stream %s epoch %d: %d files vanished after they were read: %s", source, epoch, len(missing), missing
        )
    if not new:
        log.info("stream %s epoch %d: every file is in the ledger already", source, epoch)
        return None, ledger.pending
    keep = [f.path for f in new]
    batch = append_batch(lake, source, new, rows.where(F.col("_file").isin(keep)).drop(SOURCE_COLUMN))
    log.info("stream %s epoch %d: bronze batch %s with %d files", source, epoch, batch.batch_id, len(new))
    return batch, ledger.pending_with(batch)


def start_stream(
    lake: Lake, run: Run, sources: list[str] | None = None, trigger: str | None = None, interval: str | None = None
) -> StreamingQuery:
    """Start the streaming ingest of `sources`; the caller waits (`awaitTermination`) or stops it.

    `available_now` processes every file present at the start, in micro-batches of `stream.max_files_per_trigger`
    files, then stops; `processing_time` runs a micro-batch every `interval` until stopped.
    """
    names = streaming_sources(lake, sources)
    trigger = trigger or lake.settings.stream.trigger
    if trigger not in TRIGGERS:
        raise ConfigError("--trigger", trigger, f"expected one of {', '.join(TRIGGERS)}")
    checkpoint = f"{lake.settings.checkpoint_root}/stream-{'-'.join(names)}"
    writer = (
        source_stream(lake, names)
        .writeStream.queryName(f"audiencelake_stream_{'_'.join(names)}")
        .option("checkpointLocation", checkpoint)
        .foreachBatch(lambda df, epoch: ingest_micro_batch(lake, run, names, df, epoch))
    )
    if trigger == "available_now":
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=interval or lake.settings.stream.interval)
    log.info("stream %s: %s trigger, checkpoint %s", ", ".join(names), trigger, checkpoint)
    return writer.start()
