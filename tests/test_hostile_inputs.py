"""Hostile landing files (issue 10): each is quarantined row by row with a precise reason, or stops its source with
one error naming the file; no record is lost. Per readable file, bronze rows = silver rows + quarantined rows."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from audiencelake.stages.declaration import StageContext
from audiencelake.stages.runner import run_stage
from conftest import lake_settings

pytestmark = pytest.mark.e2e

ORDERS = "order_no,line,type,customer,created_at,sku,category,qty,price,discount,channel"
ORDER = "{id},1,purchase,C1,{ts},SKU1,home,1,{price},0.0,app"
CRM = ("customer_id,first_name,last_name,email,phone,birth_date,gender,city,signup_date,consent_email,consent_sms,"
       "consent_push,consent_ads,updated_at")  # fmt: skip
PERSON = "{id},Ann,Lee,{id}@mail.example.cn,13800000000,1990-01-02,F,{city},2025-01-01,true,true,true,true,{ts}"
TS = "2026-10-24T10:18:16.000+00:00"


def touch(i: int) -> str:
    return json.dumps({"touch_id": f"T{i}", "customer_id": "C1", "campaign_id": "CMP001", "channel": "email",
                       "touch_type": "send", "touch_ts": TS, "group": "treatment"})  # fmt: skip


def social(i: int, target: str = "post1") -> str:
    return json.dumps({"interaction_id": f"S{i}", "customer_id": "C1", "platform": "instagram", "action": "like",
                       "target_id": target, "interaction_ts": TS}, ensure_ascii=False)  # fmt: skip


def land(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / "landing" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "landing" / rel).write_bytes(data)


def ingest(spark, root: Path) -> tuple[Lake, dict]:
    lake = Lake(spark, lake_settings(root))
    return lake, run_stage("ingest", StageContext(lake, Run.create(as_of="2026-10-31", run_id="hostile"), {}))


def outcome(lake: Lake) -> dict[str, dict]:
    """Per landing file name: bronze rows, silver rows, and quarantined rows by (reason, rule)."""
    out: dict[str, dict] = {}
    for source in lake.settings.sources:
        ref = lake.ref("bronze", source)
        if lake.exists(ref):
            for r in lake.read(ref).groupBy("_file").count().collect():
                out.setdefault(Path(r["_file"]).name, {"silver": 0, "quarantine": {}})["bronze"] = r["count"]
    for table in ("orders", "crm_profiles", "campaign_touches", "social_interactions"):
        ref = lake.ref("silver", table)
        if lake.exists(ref):
            for r in lake.read(ref).groupBy("_file").count().collect():
                out[Path(r["_file"]).name]["silver"] = r["count"]
    for r in lake.read(lake.ref("ops", "quarantine")).groupBy("file", "reason", "rule").count().collect():
        out[Path(r["file"]).name]["quarantine"][(r["reason"], r["rule"])] = r["count"]
    return out


def assert_accounted(files: dict[str, dict]) -> None:
    for name, f in files.items():
        assert f["bronze"] == f["silver"] + sum(f["quarantine"].values()), (name, f)


def test_hostile_files_are_quarantined_with_a_reason_and_nothing_is_lost(spark, tmp_path: Path) -> None:
    drifted = ORDERS + ",coupon"  # a column added upstream: kept in bronze, logged
    land(tmp_path, {
        "campaign_touches/array.jsonl": ("[" + ",".join(touch(i) for i in range(3)) + "]\n").encode(),
        "campaign_touches/bom.jsonl": ("\ufeff" + touch(3) + "\n" + touch(4) + "\n").encode(),
        "campaign_touches/empty.jsonl": b"",
        "campaign_touches/all_bad.jsonl": b"not json\n{broken\n12\n",
        "social/latin1.jsonl": (social(1, "café") + "\n" + social(2) + "\n").encode("latin-1"),
        "social/huge.jsonl": (social(3, "x" * 50_000_000) + "\n").encode(),  # one 50 MB line
        "orders/a_numbers_and_times.csv": "\n".join([
            drifted,
            ORDER.format(id="O1", ts="2026-10-24 15:52:36", price="41.41") + ",X",
            ORDER.format(id="O2", ts="2026-10-24 15:52:36", price='"1,234.50"') + ",X",  # thousands separator
            ORDER.format(id="O3", ts="2026/10/24 15:52", price="1.00") + ",X",  # another format
            ORDER.format(id="O4", ts="2026-10-24T15:52:36+08:00", price="1.00") + ",X",  # with a zone
            ORDER.format(id="O5", ts="2026-10-24 15:52:36", price="1.00").replace(",app", ",kiosk") + ",X",  # warn
            ORDER.format(id="O6", ts="2026-10-24 15:52:36", price="-1.00").replace(",app", ",kiosk") + ",X",
        ]).encode() + b"\n",
        "orders/b_header_only.csv": (drifted + "\n").encode(),
        "crm/latin1.csv": "\n".join([
            CRM, PERSON.format(id="C1", city="Zürich", ts=TS), PERSON.format(id="C2", city="Hangzhou", ts=TS)
        ]).encode("latin-1") + b"\n",
    })  # fmt: skip
    lake, counts = ingest(spark, tmp_path)
    files = outcome(lake)
    assert_accounted(files)
    q = {name: f["quarantine"] for name, f in files.items()}
    assert q["array.jsonl"] == {("json_array", "_raw"): 1}
    assert files["bom.jsonl"] == {"bronze": 2, "silver": 2, "quarantine": {}}
    assert q["all_bad.jsonl"] == {("malformed_record", "_raw"): 3}
    assert files["latin1.jsonl"]["silver"] == 1 and q["latin1.jsonl"] == {("invalid_encoding", "_raw"): 1}
    assert files["latin1.csv"]["silver"] == 1 and q["latin1.csv"] == {("invalid_encoding", "_raw"): 1}
    assert q["huge.jsonl"] == {("record_too_large", "_raw"): 1}
    huge = lake.read(lake.ref("ops", "quarantine")).where(F.col("reason") == "record_too_large")
    assert huge.select(F.length("raw")).first()[0] > 50_000_000  # kept whole, for the sender to inspect
    assert files["a_numbers_and_times.csv"]["silver"] == 2
    assert q["a_numbers_and_times.csv"] == {("wrong_type", "unit_price"): 1, ("wrong_type", "order_ts"): 2,
                                            ("expectation", "price_not_negative"): 1}  # fmt: skip
    # every rule a row fails, in the contract's order (dqx's errors and warnings): quarantined, or kept with warnings
    failures = {
        json.loads(r["raw"])["order_no"]: [tuple(f) for f in r["failures"]]
        for r in lake.read(lake.ref("ops", "quarantine")).where(F.col("table") == "orders").collect()
    }
    assert failures["O6"] == [("price_not_negative", "unit_price", "error"), ("known_channel", "channel", "warn")]
    assert failures["O2"] == [("wrong_type", "unit_price", "error")]
    warnings = {r["order_id"]: r["_warnings"] for r in lake.read(lake.ref("silver", "orders")).collect()}
    assert warnings == {"O1": None, "O5": [("known_channel", "channel", "warn")]}
    assert counts["rows_warned"] == 1
    ledger = {Path(r["file"]).name for r in lake.read(lake.ref("ops", "ingest_files")).collect()}
    assert {"empty.jsonl", "b_header_only.csv"} <= ledger  # read, found empty, recorded: not retried forever
    assert "b_header_only.csv" not in files and "empty.jsonl" not in files
    assert counts["rows_read"] == sum(f["bronze"] for f in files.values())


def test_a_truncated_gzip_is_quarantined_as_a_file_and_read_once_replaced(spark, tmp_path: Path) -> None:
    """A truncated archive is set aside (ledgered as failed, with the reader's reason in one line) while the
    source's other file lands; re-delivered, it is read."""
    good = gzip.compress("".join(touch(i) + "\n" for i in range(200)).encode())
    other = gzip.compress("".join(touch(i) + "\n" for i in range(200, 250)).encode())
    land(tmp_path, {"campaign_touches/t.jsonl.gz": good[:-40], "campaign_touches/u.jsonl.gz": other})
    lake = Lake(spark, lake_settings(tmp_path, "sources.campaign_touches.path={landing}/campaign_touches/*.jsonl.gz"))
    ctx = StageContext(lake, Run.create(as_of="2026-10-31", run_id="gz"), {})
    counts = run_stage("ingest", ctx)
    assert (counts["rows_to_silver"], counts["files_failed"]) == (50, 1)
    [failed] = lake.read(lake.ref("ops", "ingest_files")).where("status = 'failed'").collect()
    assert failed["file"].endswith("t.jsonl.gz") and failed["reason"].count("\n") == 0
    assert "java.io.EOFException: Unexpected end of input stream" in failed["reason"]
    assert "truncated or corrupt compressed file" in failed["reason"]
    land(tmp_path, {"campaign_touches/t.jsonl.gz": good})  # the sender re-delivers the file
    counts = run_stage("ingest", StageContext(lake, Run.create(as_of="2026-10-31", run_id="gz2"), {}))
    assert (counts["rows_to_silver"], counts["files_failed"]) == (200, 0)


def test_renamed_columns_and_a_wrong_delimiter_are_quarantined_and_logged(
    spark, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    land(tmp_path, {
        "orders/renamed.csv": "\n".join([
            ORDERS.replace("qty", "quantity_units"), ORDER.format(id="O1", ts="2026-10-24 15:52:36", price="1.0")
        ]).encode() + b"\n",
        "crm/semicolon.csv": "\n".join([
            CRM.replace(",", ";"), PERSON.format(id="C1", city="Wuhan", ts=TS).replace(",", ";")
        ]).encode() + b"\n",
    })  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="audiencelake"):
        lake, _ = ingest(spark, tmp_path)
    files = outcome(lake)
    assert_accounted(files)
    assert files["renamed.csv"]["quarantine"] == {("missing_required", "quantity"): 1}
    assert files["semicolon.csv"]["quarantine"] == {("missing_required", "customer_id"): 1}
    assert "renamed.csv: columns ['quantity_units'] are not in contract 'orders'" in caplog.text
    assert "renamed.csv: columns ['qty'] of contract 'orders' are missing from the header" in caplog.text
    assert "semicolon.csv: columns ['customer_id;first_name;" in caplog.text
