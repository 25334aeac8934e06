"""The parameters every stage runs with: a run id and an as-of date."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime


@dataclass(frozen=True)
class Run:
    run_id: str
    as_of: date

    @classmethod
    def create(cls, as_of: date | str | None = None, run_id: str | None = None) -> Run:
        """A run with the given id and date; by default a fresh time-ordered id and today's UTC date."""
        now = datetime.now(UTC)
        if isinstance(as_of, str):
            as_of = date.fromisoformat(as_of)
        return cls(run_id=run_id or f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}", as_of=as_of or now.date())
