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
import unicodedata
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from audiencelake.audiences.export_files import MANIFEST, file_sha256
from audiencelake.erasure.person import Person

log = logging.getLogger("audiencelake.erasure")


def _visible(text: str) -> str:
    """`text` without the characters ingest strips from identifiers (format and control characters, as
    `ingest.conform.INVISIBLE`), so a record whose id carried a zero-width space is found like the lake found it."""
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Cc") or ch in "\t\n\r")


def _lines(text: str) -> list[str]:
    """Lines ended by `\\n` only, each with its end (`str.splitlines` also splits at form feeds, U+2028, ...)."""
    return [line for line in re.split(r"(?<=\n)", text) if line]


def _csv_records(text: str, quote: str = '"') -> Iterator[str]:
    """The records of CSV text with their line ends, a quoted field's newlines kept inside its record."""
    record = ""
    for line in _lines(text):
        record += line
        if not quote or record.count(quote) % 2 == 0:
            yield record
            record = ""
    if record:
        yield record


Cells = Callable[[str], list[str]]


def csv_cells(sep: str = ",", quote: str = '"') -> Cells:
    """The cells of a CSV record, as the source's reader splits them (its separator, `reader.csv_separator`, and
    quote)."""
    if len(sep) != 1:  # Spark takes a separator of several characters; Python's csv module does not
        return lambda record: record.rstrip("\r\n").split(sep)
    return lambda record: next(csv.reader(io.StringIO(record), delimiter=sep, quotechar=quote or None), [])


def text_cells(separator: str | None, widths: list[int] | None) -> Cells:
    """The fields of a text line, by a separator regular expression or fixed widths (`format: text`)."""
    if widths:
        starts = [sum(widths[:i]) for i in range(len(widths))]
        return lambda line: [line[s : s + w] for s, w in zip(starts, widths, strict=True)]
    pattern = re.compile(separator or r"\s+")
    return lambda line: pattern.split(line.strip())


def scrub_text(
    text: str, kind: str, person: Person, header: bool, cells: Cells | None = None, quote: str = '"'
) -> tuple[str, int]:
    """`text` without the person's records, and how many were removed. `kind` is json (JSON lines: a record
    holding one of the person's JSON-quoted tokens), csv (a record with a cell equal to one of their values, a
    quoted field's line breaks inside its record) or text (a line with such a field); `cells` splits a record
    (default: CSV with commas)."""
    if kind in ("csv", "text"):
        split = cells or csv_cells()
        values = {v.strip().lower() for v in person.keys | person.emails | person.phones | person.export_hashes}
        values.discard("")
        records = list(_csv_records(text, quote)) if kind == "csv" else _lines(text)
        head, body = (records[:1], records[1:]) if header else ([], records)
        kept = [r for r in body if not any(_visible(cell).strip().lower() in values for cell in split(r))]
    else:
        tokens = person.tokens
        head, body = [], _lines(text)
        kept = [r for r in body if not any(t in _visible(r).lower() for t in tokens)]
    return "".join(head + kept), len(body) - len(kept)


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.erasure")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def scrub_file(path: Path, kind: str, person: Person, header: bool, cells: Cells | None = None) -> int:
    """Rewrite one text file (gzip or plain) without the person's records (`scrub_text`); returns the records
    removed."""
    packed = path.suffix == ".gz"
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if packed else raw).decode("utf-8", errors="surrogateescape")
    scrubbed, removed = scrub_text(text, kind, person, header, cells)
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


def scrub_landing(
    pattern: str, fmt: str, person: Person, header: bool, cells: Cells | None = None, drop_unreadable: bool = False
) -> dict[str, int]:
    """Records removed per landing file matching the glob `pattern` (a local path); `cells` splits a csv or text
    record as the source's reader does. A file that cannot be read (a truncated archive) is logged and left as it
    is, or deleted with `drop_unreadable` (the lake's own copies of files it could not ingest)."""
    removed = {}
    for name in sorted(glob.glob(pattern.removeprefix("file://").removeprefix("file:"))):
        path = Path(name)
        try:
            n = _scrub_parquet(path, person) if fmt == "parquet" else scrub_file(path, fmt, person, header, cells)
        except (OSError, EOFError, zlib.error, ValueError) as exc:
            if drop_unreadable:
                path.unlink()
                log.warning("erasure: %s cannot be read (%s); the lake's copy is deleted", path, exc)
            else:
                log.warning("erasure: %s cannot be read (%s); not scrubbed: replace or remove it", path, exc)
            continue
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
