"""Ingest every configured source: new landing files -> bronze -> silver, batch by batch."""

from __future__ import annotations

import logging

from audiencelake.ingest.bronze import ingest_bronze
from audiencelake.ingest.silver import BatchAudit, pending_batches, process_batch
from audiencelake.lake import Lake
from audiencelake.runs import Run

log = logging.getLogger(__name__)


def ingest_source(lake: Lake, source: str, run: Run) -> list[BatchAudit]:
    """Append the source's new files to bronze, then process every pending bronze batch into silver.

    Raises:
        AssertionError: a batch's accounting does not balance (a bug, never a data problem).
    """
    batch = ingest_bronze(lake, source, run)
    if batch:
        log.info("bronze.%s: batch %s with %d new files", source, batch.batch_id, len(batch.files))
    return process_pending(lake, source, run)


def process_pending(lake: Lake, source: str, run: Run) -> list[BatchAudit]:
    """Process every bronze batch of `source` without an audit row into silver, oldest first.

    Raises:
        AssertionError: a batch's accounting does not balance (a bug, never a data problem).
    """
    audits = []
    for batch_id in pending_batches(lake, source):
        audit = process_batch(lake, source, batch_id, run)
        if not audit.balanced:
            raise AssertionError(f"source '{source}' batch {batch_id}: accounting does not balance: {audit}")
        log.info("silver.%s: %s", source, audit)
        audits.append(audit)
    return audits


def ingest_all(lake: Lake, run: Run, sources: list[str] | None = None) -> list[BatchAudit]:
    """Ingest the named sources (default: all configured), in configuration order."""
    audits = []
    for source in sources or list(lake.settings.sources):
        audits += ingest_source(lake, source, run)
    return audits
