"""Locate the project's declarative files (schemas/, conf/) in a source checkout or inside the installed wheel."""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the audiencelake package (this file is in core/)


def resource_dir(name: str) -> Path:
    """Return the folder holding the project's `name` files (`schemas` or `conf`).

    Order: `$AUDIENCELAKE_HOME/<name>`, the source checkout (`lib/audiencelake/../../<name>`), then the copy
    packed into the wheel (`audiencelake/_resources/<name>`), extracted to a temporary folder when the package is
    imported from the wheel file itself (`spark-submit --py-files audiencelake.whl`).

    Raises:
        FileNotFoundError: none of those folders exists.
    """
    candidates = []
    if home := os.environ.get("AUDIENCELAKE_HOME"):
        candidates.append(Path(home) / name)
    archive = _archive()
    if archive is None:
        candidates += [_PACKAGE_DIR.parent.parent / name, _PACKAGE_DIR / "_resources" / name]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    if archive is not None:
        return _extracted(archive, name)
    raise FileNotFoundError(f"no '{name}' folder found; looked in: {', '.join(map(str, candidates))}")


def project_root() -> Path:
    """The folder against which relative local paths (lake root, jars) resolve.

    `$AUDIENCELAKE_HOME` if set, else the source checkout holding conf/, else the working directory (installed wheel).
    """
    if home := os.environ.get("AUDIENCELAKE_HOME"):
        return Path(home)
    checkout = _PACKAGE_DIR.parent.parent
    return checkout if _archive() is None and (checkout / "conf").is_dir() else Path.cwd()


def _archive() -> Path | None:
    """The zip file (a wheel on `--py-files`) this package is imported from, or None for a package on disk."""
    for parent in _PACKAGE_DIR.parents:
        if parent.is_file():
            return parent if zipfile.is_zipfile(parent) else None
    return None


def _extracted(archive: Path, name: str) -> Path:
    """`audiencelake/_resources/<name>/` of the archive, extracted once per archive into the temporary folder."""
    prefix = f"audiencelake/_resources/{name}/"
    stat = archive.stat()
    key = hashlib.sha256(f"{archive}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / f"audiencelake-resources-{key}"
    if not (target / name).is_dir():
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.namelist() if m.startswith(prefix)]
            if not members:
                raise FileNotFoundError(f"no '{name}' folder in {archive} (expected {prefix})")
            staging = Path(tempfile.mkdtemp(prefix=f"{target.name}-", dir=target.parent))
            zf.extractall(staging, members)
            target.mkdir(exist_ok=True)
            try:
                (staging / "audiencelake" / "_resources" / name).rename(target / name)
            except OSError:  # another process extracted it first
                if not (target / name).is_dir():
                    raise
    return target / name
