"""Ingest every configured source: new landing files -> bronze -> silver, batch by batch."""

from __future__ import annotations

import logging

from audiencelake.core.contracts import contract
from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from audiencelake.ingest.bronze import BronzeBatch, ingest_bronze
from audiencelake.ingest.records import BatchRecords, recording
from audiencelake.ingest.sessions import add_sessions
from audiencelake.ingest.silver import BatchAudit, pending_batches, process_batch

log = logging.getLogger(__name__)


def ingest_source(lake: Lake, source: str, run: Run, records: BatchRecords | None = None) -> list[BatchAudit]:
    """Append the source's new files to bronze, then process every pending bronze batch into silver. The batches'
    quality results and audit rows go to `records` (the caller writes them), or are written before returning.

    Raises:
        AssertionError: a batch's accounting does not balance (a bug, never a data problem).
    """
    with recording(lake, records) as recorded:
        batch, pending = ingest_bronze(lake, source, run)
        if batch:
            log.info("bronze.%s: batch %s with %d new files", source, batch.batch_id, len(batch.files))
        return process_pending(lake, source, run, recorded, batch, pending)


def process_pending(
    lake: Lake,
    source: str,
    run: Run,
    records: BatchRecords,
    fresh: BronzeBatch | None = None,
    pending: dict[str, int] | None = None,
) -> list[BatchAudit]:
    """Process every bronze batch of `source` without an audit row into silver, oldest first; their quality results
    and audit rows go to `records`, which the caller writes. `fresh`, the batch just appended, is processed from the
    rows its append kept (then released); others are read from bronze. `pending` (batch id -> files), when the
    caller has just read the ledger, saves reading it again.

    Raises:
        AssertionError: a batch's accounting does not balance (a bug, never a data problem).
    """
    audits = []
    try:
        c = contract(lake.settings.sources[source].table)
        silver = lake.ref("silver", c.table)
        if c.sessions and lake.exists(silver) and add_sessions(lake, silver, c):  # a lake from before sessions
            log.info("%s: session columns added, every row sessionised", silver)
        for batch_id, files in (pending_batches(lake, source) if pending is None else pending).items():
            kept = fresh.rows if fresh is not None and fresh.batch_id == batch_id else None
            records.before_batch(lake, c.table)  # a batch of the table already recorded is written first
            audit = process_batch(lake, source, batch_id, run, files, records, kept)
            if not audit.balanced:
                raise AssertionError(f"source '{source}' batch {batch_id}: accounting does not balance: {audit}")
            log.info("silver.%s: %s", source, audit)
            audits.append(audit)
    finally:
        if fresh is not None:
            fresh.release()
    return audits


def ingest_all(lake: Lake, run: Run, sources: list[str] | None = None) -> list[BatchAudit]:
    """Ingest the named sources (default: all configured), in configuration order; the quality results and audit
    rows of every batch are written together at the end."""
    audits = []
    with recording(lake) as records:
        for source in sources or list(lake.settings.sources):
            audits += ingest_source(lake, source, run, records)
    return audits
