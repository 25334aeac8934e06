"""Locate the project's declarative files (schemas/, conf/) in a source checkout or inside the installed wheel."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """Return the folder holding the project's `name` files (`schemas` or `conf`).

    Order: `$AUDIENCELAKE_HOME/<name>`, the source checkout (`lib/audiencelake/../../<name>`), then the copy
    packed into the wheel (`audiencelake/_resources/<name>`).

    Raises:
        FileNotFoundError: none of those folders exists.
    """
    candidates = []
    if home := os.environ.get("AUDIENCELAKE_HOME"):
        candidates.append(Path(home) / name)
    candidates += [_PACKAGE_DIR.parent.parent / name, _PACKAGE_DIR / "_resources" / name]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no '{name}' folder found; looked in: {', '.join(map(str, candidates))}")


def project_root() -> Path:
    """The folder against which relative local paths (lake root, jars) resolve.

    `$AUDIENCELAKE_HOME` if set, else the source checkout holding conf/, else the working directory (installed wheel).
    """
    if home := os.environ.get("AUDIENCELAKE_HOME"):
        return Path(home)
    checkout = _PACKAGE_DIR.parent.parent
    return checkout if (checkout / "conf").is_dir() else Path.cwd()
