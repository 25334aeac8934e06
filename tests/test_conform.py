from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

from audiencelake.core.pii import with_salt
from audiencelake.core.source_settings import SourceSettings
from audiencelake.ingest.conform import conform
from audiencelake.ingest.derive import derive
from helpers import make_contract, make_source


def _bronze(spark, records: list[object]):
    rows = [
        (json.dumps(r) if isinstance(r, dict) else r, "malformed_record" if isinstance(r, str) else None, "f.json")
        for r in records
    ]
    return spark.createDataFrame(rows, "_raw string, _error string, _file string")


def test_types_reasons_and_mapping(spark) -> None:
    c = make_contract()
    src = make_source(
        mapping={"OrderNo": "order_id", "When": "ts"},
        timestamp_formats={"ts": "yyyy-MM-dd HH:mm:ss", "day": "dd/MM/yyyy"},
        time_zone="Asia/Shanghai",
    )
    records = [
        {"OrderNo": "A", "When": "2026-07-01 08:00:00", "price": "9.50", "qty": 2, "paid": "Yes", "day": "31/12/2025"},
        {"OrderNo": "B", "When": "2026-07-01 08:00:00", "price": "9.x"},
        {"OrderNo": " ", "When": "2026-07-01 08:00:00", "price": "1"},
        {"OrderNo": "C", "When": "July 1st", "price": "1"},
        {"OrderNo": "D", "When": "2026-07-01 08:00:00", "price": "1", "paid": "maybe"},
        "{not json",
    ]
    out = {r["_raw"]: r for r in conform(_bronze(spark, records), c, src).collect()}
    good = out[json.dumps(records[0])]
    assert good["_reason"] is None
    assert good["order_id"] == "A"
    assert good["ts"] == datetime(2026, 7, 1, 0, 0)  # Shanghai 08:00 is 00:00 UTC
    assert good["price"] == Decimal("9.50") and good["qty"] == 2 and good["paid"] is True
    assert good["day"] == date(2025, 12, 31)
    reasons = {r["order_id"] or r["_raw"]: (r["_stage"], r["_reason"], r["_rule"]) for r in out.values()}
    assert reasons["B"] == ("silver", "wrong_type", "price")
    assert reasons[json.dumps(records[2])] == ("silver", "missing_required", "order_id")
    assert reasons["C"] == ("silver", "wrong_type", "ts")
    assert reasons["D"] == ("silver", "wrong_type", "paid")
    assert reasons["{not json"] == ("bronze", "malformed_record", "_raw")


def test_timestamps_with_an_offset_are_not_shifted(spark) -> None:
    c = make_contract()
    src = make_source(timestamp_formats={"ts": "yyyy-MM-dd'T'HH:mm:ssXXX"}, time_zone="Asia/Shanghai")
    df = _bronze(spark, [{"order_id": "A", "ts": "2026-07-01T08:00:00+02:00", "price": "1"}])
    assert conform(df, c, src).first()["ts"] == datetime(2026, 7, 1, 6, 0)


def test_derive_hashes_pii_and_evaluates_expressions(spark) -> None:
    import hashlib

    c = make_contract()
    df = _bronze(spark, [{"order_id": "A", "ts": "2026-07-01T00:00:00", "price": "2.5", "qty": "4",
                          "email": "  Ann.Lee@Example.COM "}])  # fmt: skip
    row = derive(with_salt(conform(df, c, make_source()), "pepper"), c).first()
    assert row["total"] == Decimal("10.00")
    assert row["email_hash"] == hashlib.sha256(b"pepperann.lee@example.com").hexdigest()


def test_timestamps_without_a_pattern_use_the_source_zone_unless_they_carry_an_offset(spark) -> None:
    c = make_contract()
    src = make_source(time_zone="Asia/Shanghai")
    df = _bronze(spark, [{"order_id": "A", "ts": "2026-07-01 08:00:00", "price": "1"},
                         {"order_id": "B", "ts": "2026-07-01T08:00:00+02:00", "price": "1"},
                         {"order_id": "C", "ts": "2026-07-01T08:00:00Z", "price": "1"}])  # fmt: skip
    got = {r["order_id"]: r["ts"] for r in conform(df, c, src).collect()}
    assert got == {"A": datetime(2026, 7, 1, 0, 0), "B": datetime(2026, 7, 1, 6, 0), "C": datetime(2026, 7, 1, 8, 0)}


RETAIL = {  # an order log as shops export it: no line number, no line type, refunds as C-invoices of negative quantity
    "columns": {
        "order_id": "Invoice",
        "line_no": "row_number() OVER (PARTITION BY _file, Invoice ORDER BY _raw)",
        "line_type": "CASE WHEN Invoice LIKE 'C%' THEN 'refund' ELSE 'purchase' END",
        "quantity": "abs(Quantity)",
        "discount": 0,
    },
    "mapping": {"StockCode": "item_id", "InvoiceDate": "order_ts", "Price": "unit_price", "Customer ID": "customer_id"},
}


def test_computed_columns_make_contract_rows_of_an_order_log(spark) -> None:
    from audiencelake.core.contracts import contract

    src = SourceSettings.model_validate({"path": "x", "format": "csv", "table": "orders", **RETAIL})
    lines = [
        {"Invoice": "489434", "StockCode": "85048", "Quantity": "12", "InvoiceDate": "2009-12-01 07:45:00",
         "Price": "6.95", "Customer ID": "13085"},
        {"Invoice": "489434", "StockCode": "79323P", "Quantity": "12", "InvoiceDate": "2009-12-01 07:45:00",
         "Price": "6.75", "Customer ID": "13085"},
        {"Invoice": "C489449", "StockCode": "22087", "Quantity": "-12", "InvoiceDate": "2009-12-01 10:33:00",
         "Price": "2.95", "Customer ID": "16321"},
        {"Invoice": "489435", "StockCode": "22350", "Quantity": "twelve", "InvoiceDate": "2009-12-01 07:46:00",
         "Price": "2.55", "Customer ID": "13085"},
        {"Invoice": "\u200b489436", "StockCode": "22350", "Quantity": "1", "InvoiceDate": "2009-12-01 07:47:00",
         "Price": "2.55", "Customer ID": "13085"},  # an id computed from a value with a zero-width space
    ]  # fmt: skip
    before = spark.conf.get("spark.sql.ansi.enabled")
    runs = [
        {(r["order_id"], r["line_no"]): r for r in conform(_bronze(spark, order), contract("orders"), src).collect()}
        for order in (lines, lines[::-1])
    ]
    assert spark.conf.get("spark.sql.ansi.enabled") == before
    assert {k: (r["item_id"], r["_reason"]) for k, r in runs[0].items()} == {
        k: (r["item_id"], r["_reason"]) for k, r in runs[1].items()
    }  # the same lines get the same keys whatever order they are read in
    got = runs[0]
    assert sorted(k for k in got if k[0] == "489434") == [("489434", 1), ("489434", 2)]
    refund = got[("C489449", 1)]
    assert (refund["line_type"], refund["quantity"], refund["discount"]) == ("refund", 12, Decimal("0.00"))
    assert got[("489434", 1)]["line_type"] == "purchase"
    bad = got[("489435", 1)]  # text where a number belongs: that row is quarantined, the batch goes on
    assert (bad["_reason"], bad["_rule"]) == ("missing_required", "quantity")
    assert got[("489436", 1)]["_ids_cleaned"] and not got[("489434", 1)]["_ids_cleaned"]
