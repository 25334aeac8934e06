"""Plant bad records of known kinds. Each bad record is an extra line: valid records are never damaged, so the
planted truth (valid counts, identities) stays exact and every bad record can be counted in quarantine."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# kind -> where the pipeline is expected to put it (documented in the truth manifest).
EXPECTED_OUTCOME = {
    "malformed": "quarantine: stage=bronze, reason=malformed_record",
    "missing_required": "quarantine: stage=silver, reason=missing_required",
    "wrong_type": "quarantine: stage=silver, reason=wrong_type",
    "impossible_value": "quarantine: stage=quality, reason=expectation",
    "conflict": "quarantine: stage=silver, reason=conflicting_versions (both rows of each conflict)",
    "exact_duplicate": "ingest_audit.rows_duplicate",
    "late_arriving": "silver (merged into the partition of its event date)",
}


@dataclass(frozen=True)
class BadRecordPlan:
    """Rates of planted bad records for one source, and how to make each kind from a valid record."""

    rates: dict[str, float]
    makers: dict[str, Callable[[dict, np.random.Generator], dict | str]]


def json_malformed(line: str) -> str:
    return line[: max(1, len(line) // 2)]


def drop_field(field: str, id_field: str) -> Callable[[dict, np.random.Generator], dict]:
    def make(record: dict, rng: np.random.Generator) -> dict:
        out = {k: v for k, v in record.items() if k != field}
        if id_field in out:
            out[id_field] = f"{out[id_field]}-M{int(rng.integers(10**9))}"
        return out

    return make


def set_field(field: str, value: object, id_field: str) -> Callable[[dict, np.random.Generator], dict]:
    def make(record: dict, rng: np.random.Generator) -> dict:
        out = dict(record)
        out[field] = value(record) if callable(value) else value
        out[id_field] = f"{out[id_field]}-B{int(rng.integers(10**9))}"
        return out

    return make


def plant(
    rng: np.random.Generator,
    records: list[dict],
    plan: BadRecordPlan,
    render: Callable[[dict], str],
    tally: dict[str, int],
) -> list[tuple[dict, str]]:
    """Return (template record, bad line) pairs for `records`, adding what was planted to `tally`.

    `malformed` lines are cut from the rendered line; `exact_duplicate` repeats it; other kinds render a changed
    copy of the record.
    """
    bad: list[tuple[dict, str]] = []
    if not records:
        return bad
    for kind, rate in plan.rates.items():
        count = int(rng.binomial(len(records), rate))
        for idx in rng.choice(len(records), size=count, replace=True):
            record = records[int(idx)]
            if kind == "malformed":
                line = plan.makers[kind](record, rng) if kind in plan.makers else json_malformed(render(record))
            elif kind == "exact_duplicate":
                line = render(record)
            else:
                made = plan.makers[kind](record, rng)
                line = made if isinstance(made, str) else render(made)
            bad.append((record, line))
        tally[kind] = tally.get(kind, 0) + count
    return bad


def dumps(record: dict) -> str:
    return json.dumps(
        {k: v for k, v in record.items() if not k.startswith("_") and v is not None}, separators=(",", ":")
    )
