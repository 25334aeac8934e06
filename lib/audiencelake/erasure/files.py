"""Erase a person from the files the lake keeps beside its tables: the landing files ingest read, and the exports
written for destinations (whose manifests are updated to the new checksums and say what was removed).

Files are rewritten record by record: every other record keeps its exact text, and each file is replaced in one
rename, so a reader sees the old file or the new one, never a partial one.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

from audiencelake.audiences.export_files import MANIFEST, file_sha256
from audiencelake.erasure.person import Person

log = logging.getLogger("audiencelake.erasure")


def _lines(text: str) -> list[str]:
    """Lines ended by `\\n` only, each with its end (`str.splitlines` also splits at form feeds, U+2028, ...)."""
    return [line for line in re.split(r"(?<=\n)", text) if line]


def _csv_records(text: str) -> Iterator[str]:
    """The records of CSV text with their line ends, a quoted field's newlines kept inside its record."""
    record = ""
    for line in _lines(text):
        record += line
        if record.count('"') % 2 == 0:
            yield record
            record = ""
    if record:
        yield record


def _csv_matches(record: str, values: set[str]) -> bool:
    cells = next(csv.reader(io.StringIO(record)), [])
    return any(cell.strip().lower() in values for cell in cells)


def scrub_text(text: str, kind: str, person: Person, header: bool) -> tuple[str, int]:
    """`text` without the person's records, and how many were removed. `kind` is json (JSON lines: a record
    holding one of the person's JSON-quoted tokens) or csv (a record with a cell equal to one of their values)."""
    if kind == "csv":
        values = {v.strip().lower() for v in person.keys | person.emails | person.phones | person.export_hashes}
        values.discard("")
        records = list(_csv_records(text))
        head, body = (records[:1], records[1:]) if header else ([], records)
        kept = [r for r in body if not _csv_matches(r, values)]
    else:
        tokens = person.tokens
        head, body = [], _lines(text)
        kept = [r for r in body if not any(t in r.lower() for t in tokens)]
    return "".join(head + kept), len(body) - len(kept)


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.erasure")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def scrub_file(path: Path, kind: str, person: Person, header: bool) -> int:
    """Rewrite one text file (gzip or plain) without the person's records; returns the records removed."""
    packed = path.suffix == ".gz"
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if packed else raw).decode("utf-8", errors="surrogateescape")
    scrubbed, removed = scrub_text(text, kind, person, header)
    if removed:
        data = scrubbed.encode("utf-8", errors="surrogateescape")
        _replace(path, gzip.compress(data, mtime=0) if packed else data)
    return removed


def _scrub_parquet(path: Path, person: Person) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    values = pa.array(sorted(person.keys | person.export_hashes))
    hit = None
    for name in table.column_names:
        if pa.types.is_string(table.schema.field(name).type):
            found = pc.fill_null(pc.is_in(table[name], value_set=values), False)
            hit = found if hit is None else pc.or_(hit, found)
    if hit is None or not pc.any(hit).as_py():
        return 0
    kept = table.filter(pc.invert(hit))
    tmp = path.with_name(f".{path.name}.erasure")
    pq.write_table(kept, tmp, compression="snappy")
    os.replace(tmp, path)
    return table.num_rows - kept.num_rows


def scrub_landing(pattern: str, fmt: str, person: Person, header: bool) -> dict[str, int]:
    """Records removed per landing file matching the glob `pattern` (a local path)."""
    removed = {}
    for name in sorted(glob.glob(pattern.removeprefix("file://").removeprefix("file:"))):
        path = Path(name)
        n = _scrub_parquet(path, person) if fmt == "parquet" else scrub_file(path, fmt, person, header)
        if n:
            removed[str(path)] = n
    return removed


def scrub_exports(root: Path, person: Person, request_id: str) -> dict[str, int]:
    """Rows removed per export folder under `root`; each changed folder's manifest gets the files' new sizes,
    checksums and row counts, its exported count lowered, and an `erasures` entry naming the request."""
    removed = {}
    for manifest_path in sorted(root.glob(f"*/*/*/{MANIFEST}")):
        folder = manifest_path.parent
        manifest = json.loads(manifest_path.read_text())
        total = 0
        for f in manifest["files"]:
            path = folder / f["name"]
            if manifest["format"] == "parquet":
                n = _scrub_parquet(path, person)
            else:
                n = scrub_file(path, "csv", person, header=True)
            if n:
                f.update(bytes=path.stat().st_size, sha256=file_sha256(path), rows=f.get("rows", n) - n)
                total += n
        if total:
            manifest["counts"]["exported"] -= total
            manifest.setdefault("erasures", []).append({"request_id": request_id, "rows_removed": total})
            _replace(manifest_path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
            removed[str(folder)] = total
            log.info("erasure: %d rows removed from the export %s", total, folder)
    return removed
