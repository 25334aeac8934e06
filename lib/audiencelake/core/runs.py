"""The parameters every stage runs with: a run id and an as-of date."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

from audiencelake.core.errors import ConfigError

# Run ids end up in table predicates and paths: keep them to safe characters.
IDENTIFIER = re.compile(r"(?!\.+$)[A-Za-z0-9_.:-]+")  # not `.` or `..`: run ids name export folders


@dataclass(frozen=True)
class Run:
    run_id: str
    as_of: date

    @classmethod
    def create(cls, as_of: date | str | None = None, run_id: str | None = None) -> Run:
        """A run with the given id and date; by default a fresh time-ordered id and today's UTC date.

        Raises:
            ConfigError: the date is not YYYY-MM-DD, or the run id has characters other than letters, digits, `._:-`.
        """
        now = datetime.now(UTC)
        if isinstance(as_of, str):
            try:
                as_of = date.fromisoformat(as_of)
            except ValueError as exc:
                raise ConfigError("--as-of", as_of, "expected a date YYYY-MM-DD") from exc
        if run_id is not None and not IDENTIFIER.fullmatch(run_id):
            raise ConfigError("--run-id", run_id, f"use letters, digits and . _ : - only ({IDENTIFIER.pattern})")
        return cls(run_id=run_id or f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}", as_of=as_of or now.date())
