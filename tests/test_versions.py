from __future__ import annotations

from datetime import datetime

from audiencelake.ingest.versions import resolve_versions
from helpers import make_contract

SCHEMA = "order_id string, ts timestamp, _record_hash string, _reason string, _rule string, _stage string, " \
         "_file string, _raw string"  # fmt: skip
T1, T2, T3 = datetime(2026, 1, 1), datetime(2026, 1, 2), datetime(2026, 1, 3)


def _dispositions(spark, rows, existing=None):
    df = spark.createDataFrame([(*r, None, None, None, "f", r[2]) for r in rows], SCHEMA)
    prior = spark.createDataFrame(existing, "order_id string, ts timestamp, _record_hash string") if existing else None
    out = resolve_versions(df, make_contract(), prior).collect()
    return sorted((r["order_id"], r["ts"].day, r["_record_hash"], r["_disposition"], r["_reason"]) for r in out)


def test_duplicates_conflicts_and_superseded_within_a_batch(spark) -> None:
    rows = [
        ("A", T1, "h1"), ("A", T1, "h1"),  # exact duplicate
        ("B", T1, "h1"), ("B", T2, "h2"),  # B@T1 superseded by B@T2
        ("C", T2, "h1"), ("C", T2, "h9"), ("C", T1, "h0"),  # conflict at T2; T1 is the latest clean version
    ]  # fmt: skip
    assert _dispositions(spark, rows) == [
        ("A", 1, "h1", "duplicate", None),
        ("A", 1, "h1", "to_silver", None),
        ("B", 1, "h1", "superseded", None),
        ("B", 2, "h2", "to_silver", None),
        ("C", 1, "h0", "to_silver", None),
        ("C", 2, "h1", "quarantined", "conflicting_versions"),
        ("C", 2, "h9", "quarantined", "conflicting_versions"),
    ]


def test_against_silver(spark) -> None:
    existing = [("A", T2, "h2"), ("B", T2, "h2"), ("C", T2, "h2"), ("D", T1, "h1")]
    rows = [("A", T1, "h1"), ("B", T2, "h2"), ("C", T2, "h3"), ("D", T3, "h3"), ("E", T1, "h1")]
    assert _dispositions(spark, rows, existing) == [
        ("A", 1, "h1", "superseded", None),  # older than silver's
        ("B", 2, "h2", "duplicate", None),  # silver already has it
        ("C", 2, "h3", "quarantined", "conflicting_versions"),  # same version time, other content
        ("D", 3, "h3", "to_silver", None),
        ("E", 1, "h1", "to_silver", None),
    ]
