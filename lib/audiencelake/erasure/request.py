"""`audiencelake forget`: erase one person on request (the right to erasure).

Order: find every identifier of the person; put their user ids on the suppression list (reason `erasure`) so no
later audience or export reaches them; delete their rows from every Delta table (bronze raw records, quarantine,
silver, the restricted table, the identity graph, gold, ops; the erasure suppression entries stay); remove their
records from the landing files and their rows from past exports (unfinished exports' staging folders go); record
the request in ops.erasure_requests; VACUUM the changed tables with
`lake.vacuum_retention_hours`. The request is logged and recorded without the identifier or its hash.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

from audiencelake.audiences.export import local_root
from audiencelake.audiences.export_files import clear_staging
from audiencelake.audiences.suppression import suppress
from audiencelake.core.errors import AudiencelakeError
from audiencelake.core.lake import Lake, check_schema
from audiencelake.erasure.files import csv_cells, scrub_exports, scrub_landing, text_cells
from audiencelake.erasure.person import Person, find_person
from audiencelake.erasure.tables import erase_rows, vacuum
from audiencelake.ingest.failed_files import KEPT
from audiencelake.ingest.reader import csv_options, csv_separator

log = logging.getLogger("audiencelake.erasure")
LOCAL = ("/", "file:")


def check_request(email: str | None, user_id: str | None) -> None:
    """Raises AudiencelakeError unless exactly one of the two is given and it is not blank."""
    if (email is None) == (user_id is None):
        raise AudiencelakeError("forget needs exactly one of --email and --user-id")
    if not (email or user_id or "").strip():
        raise AudiencelakeError(f"forget: the {'--email' if email is not None else '--user-id'} value is blank")


def _scrub_landing(lake: Lake, person: Person, request_id: str) -> int:
    """The sources' local landing files lose the person's records; returns records removed."""
    removed = 0
    for name, src in lake.settings.sources.items():
        pattern = lake.settings.source_path(name)
        if not pattern.startswith(LOCAL):
            log.warning("erasure request %s: landing files of %s (%s) are not local; not scrubbed",
                        request_id, name, pattern)  # fmt: skip
            continue
        options = csv_options(src) if src.format == "csv" else src.options
        header = src.format == "csv" and str(options.get("header")).lower() == "true"
        cells = None
        if src.format == "csv":
            cells = csv_cells(csv_separator(options), options.get("quote", '"'))
        elif src.format == "text":
            cells = text_cells(src.separator, src.widths)
        removed += sum(scrub_landing(pattern, src.format, person, header, cells).values())
        kept = f"{lake.settings.lake_root}/{KEPT}/{name}/*/*"  # the files ingest could not read, kept whole
        if kept.startswith(LOCAL):
            removed += sum(scrub_landing(kept, src.format, person, header, cells, drop_unreadable=True).values())
    return removed


def _scrub_exports(lake: Lake, person: Person, request_id: str) -> int:
    """Past exports lose the person's rows (unfinished exports' staging goes first); returns rows removed."""
    try:
        exports = Path(local_root(lake))
    except AudiencelakeError as err:
        log.warning("erasure request %s: exports are not scrubbed: %s", request_id, err)
        return 0
    if not exports.exists():
        return 0
    clear_staging(exports)
    return sum(scrub_exports(exports, person, request_id).values())


def forget(lake: Lake, source: str, email: str | None = None, user_id: str | None = None) -> dict:
    """Erase the person named by `email` or `user_id`; returns the request's record.

    Raises:
        AudiencelakeError: neither or both identifiers are given.
    """
    check_request(email, user_id)
    now = datetime.now(UTC)
    request_id = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    settings = lake.settings
    id_type = "email" if email else "user_id"
    log.info("erasure request %s (by %s, from %s): started", request_id, id_type, source)
    person = find_person(lake, email=email, user_id=user_id)
    # suppressed first: a run stopped below leaves them suppressed, and a new request by user id finishes the rest
    for uid in sorted(person.user_ids):
        suppress(lake, "erasure", f"erasure request {request_id}", user_id=uid)
    tables, landing, export_rows = {}, 0, 0
    if person.found:
        tables = erase_rows(lake, person, keep={"ops.suppression": "reason = 'erasure'"})
        landing = _scrub_landing(lake, person, request_id)
        export_rows = _scrub_exports(lake, person, request_id)
    record = {
        "request_id": request_id,
        "id_type": id_type,
        "source": source,
        "requested_at": now,
        "user_ids": len(person.user_ids),
        "rows_erased": sum(tables.values()),
        "tables": json.dumps(tables, sort_keys=True),
        "landing_records": landing,
        "export_rows": export_rows,
        "vacuum_retention_hours": settings.lake.vacuum_retention_hours,
        "completed_at": datetime.now(UTC),
    }
    ref = lake.ref("ops", "erasure_requests")
    lake.ensure(ref)
    df = lake.spark.createDataFrame([record], lake.read(ref).schema)
    lake.merge_upsert(check_schema(df, "erasure_requests"), ref, ["request_id"])
    vacuum(lake, sorted(tables), settings.lake.vacuum_retention_hours)
    log.info("erasure request %s: %d user ids, %d rows from %d tables, %d landing records, %d export rows",
             request_id, len(person.user_ids), record["rows_erased"], len(tables), landing, export_rows)  # fmt: skip
    return record
