"""One writer per lake: the commands that write take `<lake.root>/_lock.json` for their whole run.

Two runs started at once on the same lake do not interleave: the second fails at once, before Spark starts, with
one line naming the lock file and the run holding it (exit 2). Delta's optimistic concurrency already keeps each
table consistent; the lock keeps a run's stages from reading another run's half-written set of tables.

A local lake's lock is created whole by a hard link, which fails when the lock exists (atomic on POSIX file
systems). A lock left by a process that died on this host is taken over (its pid no longer runs); one from
another host is only reported, and `audiencelake unlock` removes it. On object stores (`s3://`, `abfss://`,
...), create-if-absent is not atomic: there, schedule one pipeline at a time (the Databricks bundle sets
`max_concurrent_runs: 1`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from audiencelake.core.config import Settings
from audiencelake.core.errors import AudiencelakeError

log = logging.getLogger("audiencelake.lock")

LOCK_FILE = "_lock.json"


class LakeBusyError(AudiencelakeError):
    """Another run holds the lake's lock."""


def lock_path(settings: Settings) -> Path | None:
    """The lock file of a lake on a local file system; None for a lake on a remote store."""
    root = settings.lake_root
    if "://" in root and not root.startswith("file://"):
        return None
    return Path(root.removeprefix("file://")) / LOCK_FILE


def _alive_here(holder: dict) -> bool:
    """Whether the holder runs on this host (True when it runs elsewhere: it cannot be checked from here)."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder.get("pid", -1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def read_holder(path: Path) -> dict:
    """The lock file's record ({} when it is unreadable: a writer killed between create and write)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _describe(path: Path, holder: dict) -> str:
    who = ", ".join(f"{k} {holder[k]}" for k in ("command", "run_id", "pid", "host", "since") if holder.get(k))
    return f"lake lock {path} is held ({who or 'no record'})"


def _create(path: Path, record: dict) -> bool:
    """Create the lock with its record complete: written to a file of this process, then hard-linked into place
    (`link` fails when the lock exists), so no reader ever sees a lock without its holder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mine = path.with_name(f".{path.name}.{os.getpid()}")
    mine.write_text(json.dumps(record))
    try:
        os.link(mine, path)
    except FileExistsError:
        return False
    finally:
        mine.unlink(missing_ok=True)
    return True


_held: dict[Path, int] = {}  # locks this process holds -> nesting depth


@contextmanager
def lake_lock(settings: Settings, command: str, run_id: str | None = None) -> Iterator[None]:
    """Hold the lake's lock while the block runs (re-entrant within one process).

    Raises:
        LakeBusyError: another live run holds it; the message names the file and the holder.
    """
    path = lock_path(settings)
    if path is None:
        yield
        return
    if path in _held:
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    record = {
        "command": command,
        "run_id": run_id,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if not _create(path, record):
        holder = read_holder(path)
        if not holder or _alive_here(holder):
            raise LakeBusyError(f"{_describe(path, holder)}; wait for it, or run `audiencelake unlock` if it is gone")
        log.warning("%s by a process that is gone; taking it over", _describe(path, holder))
        path.unlink(missing_ok=True)
        if not _create(path, record):
            raise LakeBusyError(_describe(path, read_holder(path)))
    _held[path] = 1
    try:
        yield
    finally:
        del _held[path]
        if read_holder(path).get("pid") == record["pid"]:
            path.unlink(missing_ok=True)


def unlock(settings: Settings) -> dict | None:
    """Remove the lake's lock; returns the record it held (None when there was no lock).

    Raises:
        LakeBusyError: the holder still runs on this host.
    """
    path = lock_path(settings)
    if path is None or not path.exists():
        return None
    holder = read_holder(path)
    if holder.get("host") == socket.gethostname() and _alive_here(holder):
        raise LakeBusyError(f"{_describe(path, holder)} by a process that still runs; stop it first")
    path.unlink()
    return holder
