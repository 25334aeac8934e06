"""The quality results and audit rows of one ingest's batches (`ingest/records.py`): one commit per table for all
batches, replacing a re-run batch's rows, two batches of one silver table never waiting together; written when an
error stops the ingest, not after a kill."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from audiencelake.core.errors import QualityGateError
from audiencelake.core.failpoints import InjectedFault
from audiencelake.core.lake import Lake
from audiencelake.ingest.records import BatchRecords, recording


def _audit(source: str, batch: str, rows: int) -> dict:
    return {"source": source, "batch_id": batch, "rows_read": rows, "rows_bronze_rejected": 0,
            "rows_silver_rejected": 0, "rows_duplicate": 0, "rows_superseded": 0, "rows_to_silver": rows,
            "rows_warned": 0, "rows_ids_cleaned": 0, "run_id": "r", "files": 1, "processed_at": datetime.now(UTC)}  # fmt: skip


def _result(table: str, batch: str, unexpected: int) -> dict:
    return {"run_id": "r", "table": table, "scope": "batch", "batch_id": batch, "expectation": "rule",
            "expectation_type": "expect_column_values_to_not_be_null", "column": "c", "severity": "error",
            "policy": "quarantine", "success": unexpected == 0, "element_count": 10, "unexpected_count": unexpected,
            "predicate_count": unexpected, "unexpected_sample": [], "exception": None,
            "validated_at": datetime.now(UTC), "table_version": None, "suite_hash": "h"}  # fmt: skip


def test_batches_are_written_together_and_a_rerun_replaces_its_rows(spark, settings) -> None:
    lake = Lake(spark, settings)
    audit_ref, results_ref = lake.ref("ops", "ingest_audit"), lake.ref("ops", "quality_results")
    records = BatchRecords()
    for source, batch in (("orders", "b1"), ("crm_profiles", "b2")):
        records.add_results(source, batch, [_result(source, batch, 1)], fresh=True)
        records.add_audit(_audit(source, batch, 5), source, fresh=True)
    records.write(lake)
    assert lake.version(audit_ref) == lake.version(results_ref) == 1  # created empty, then one commit each
    with recording(lake) as again:  # b2 processed again by a later run: its rows replaced, b1's kept
        again.add_results("crm_profiles", "b2", [_result("crm_profiles", "b2", 0)], fresh=False)
        again.add_audit(_audit("crm_profiles", "b2", 7), "crm_profiles", fresh=False)
    audits = sorted((r["batch_id"], r["rows_read"]) for r in lake.read(audit_ref).collect())
    results = sorted((r["batch_id"], r["unexpected_count"]) for r in lake.read(results_ref).collect())
    assert audits == [("b1", 5), ("b2", 7)] and results == [("b1", 1), ("b2", 0)]
    version = lake.version(audit_ref)
    records.add_audit(_audit("orders", "b3", 1), "orders", fresh=True)
    records.before_batch(lake, "crm_profiles")  # another table: still waits
    assert lake.version(audit_ref) == version
    records.before_batch(lake, "orders")  # a second batch of orders: b3 is written first
    assert lake.version(audit_ref) == version + 1 and not records.audits


def test_an_error_writes_what_was_recorded_and_a_kill_does_not(spark, settings) -> None:
    lake = Lake(spark, settings)
    results_ref = lake.ref("ops", "quality_results")
    with pytest.raises(InjectedFault), recording(lake) as records:
        records.add_results("orders", "b1", [_result("orders", "b1", 3)], fresh=True)
        raise InjectedFault("stopped")
    assert not lake.exists(results_ref)  # a kill leaves the batch pending; its next run records it
    with pytest.raises(QualityGateError), recording(lake) as records:
        records.add_results("orders", "b1", [_result("orders", "b1", 3)], fresh=True)
        raise QualityGateError("table 'orders' failed its quality gate")
    assert [r["unexpected_count"] for r in lake.read(results_ref).collect()] == [3]  # the record of why
