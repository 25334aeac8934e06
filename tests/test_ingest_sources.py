"""Ingest of hand-written landing files: a custom column mapping, and batches that arrive over time."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from audiencelake.core.lake import RESTRICTED, Lake
from audiencelake.core.runs import Run
from audiencelake.core.source_settings import SourceSettings
from audiencelake.ingest.pipeline import ingest_source
from conftest import lake_settings

pytestmark = pytest.mark.e2e

SHOP_CSV = """Bestellnummer;Pos;Art;Kunde;Zeit;Artikel;Kategorie;Menge;Preis;Rabatt;Kanal
A-1;1;purchase;C1;2026-03-01 20:30:00;SKU1;books;2;10.00;1.50;web
A-1;2;purchase;C1;2026-03-01 20:30:00;SKU2;toys;1;5,00;0;web
A-2;1;refund;C2;2026-03-02 09:00:00;SKU3;home;1;20.00;0;store
"""
SHOP = SourceSettings(
    path="{landing}/shop/*.csv", format="csv", table="orders", options={"header": "true", "sep": ";"},
    mapping={"Bestellnummer": "order_id", "Pos": "line_no", "Art": "line_type", "Kunde": "customer_id",
             "Zeit": "order_ts", "Artikel": "item_id", "Kategorie": "category", "Menge": "quantity",
             "Preis": "unit_price", "Rabatt": "discount", "Kanal": "channel"},
    timestamp_formats={"order_ts": "yyyy-MM-dd HH:mm:ss"}, time_zone="Asia/Shanghai",
)  # fmt: skip
CRM_HEADER = ("customer_id,first_name,last_name,email,phone,birth_date,gender,city,signup_date,consent_email,"
              "consent_sms,consent_push,consent_ads,updated_at")  # fmt: skip


def _crm(customer: str, city: str, at: str, email: str = "a@example.com") -> str:
    return f"{customer},Ann,Lee,{email},13812345678,1990-01-01,F,{city},2025-01-01,true,false,true,false,{at}"


def _lake(spark, tmp_path: Path, **sources: SourceSettings) -> Lake:
    settings = lake_settings(tmp_path)
    if sources:
        settings = settings.model_copy(update={"sources": sources})
    return Lake(spark, settings)


def test_own_export_through_a_column_mapping(spark, tmp_path: Path) -> None:
    (tmp_path / "landing" / "shop").mkdir(parents=True)
    (tmp_path / "landing" / "shop" / "export.csv").write_text(SHOP_CSV)
    lake = _lake(spark, tmp_path, shop=SHOP)
    [audit] = ingest_source(lake, "shop", Run.create("2026-11-25", "r1"))
    assert (audit.rows_read, audit.rows_to_silver, audit.rows_silver_rejected) == (3, 2, 1)
    rows = {(r["order_id"], r["line_no"]): r for r in lake.read(lake.ref("silver", "orders")).collect()}
    assert set(rows) == {("A-1", 1), ("A-2", 1)}
    assert rows[("A-1", 1)]["order_ts"] == datetime(2026, 3, 1, 12, 30)  # 20:30 in Shanghai
    assert rows[("A-1", 1)]["amount"] == Decimal("18.50")
    assert rows[("A-2", 1)]["amount"] == Decimal("-20.00")
    bad = lake.read(lake.ref("ops", "quarantine")).collect()
    assert [(r["reason"], r["rule"], r["file"].endswith("export.csv")) for r in bad] == [
        ("wrong_type", "unit_price", True)
    ]


def test_csv_is_read_as_rfc_4180(spark, tmp_path: Path) -> None:
    """A quoted field may hold a line break and doubled quotes (an address, a note): one record, not two malformed
    ones, with the reader's defaults (the source sets only its separator). Identifiers lose invisible characters."""
    header = SHOP_CSV.splitlines()[0]
    text = (f'{header}\nA-1;1;purchase;C1;2026-03-01 20:30:00;SKU1;"home\nand ""garden""";2;10.00;0;web\n'
            "A-1;2;purchase;C1\u200b;2026-03-01 20:30:00;SKU2;toys;1;5.00;0;web\n")  # fmt: skip
    (tmp_path / "landing" / "shop").mkdir(parents=True)
    (tmp_path / "landing" / "shop" / "export.csv").write_text(text)
    lake = _lake(spark, tmp_path, shop=SHOP)
    [audit] = ingest_source(lake, "shop", Run.create("2026-11-25", "r1"))
    assert (audit.rows_read, audit.rows_to_silver, audit.rows_bronze_rejected) == (2, 2, 0)
    rows = lake.read(lake.ref("silver", "orders")).collect()
    assert {r["line_no"]: r["category"] for r in rows} == {1: 'home\nand "garden"', 2: "toys"}
    # a zero-width space copied into a customer id is stripped (counted), not a new customer; a note keeps its line
    assert {r["customer_id"] for r in rows} == {"C1"} and audit.rows_ids_cleaned == 1


def test_a_file_the_reader_cannot_take_is_quarantined_as_a_file(spark, tmp_path: Path) -> None:
    """A file whose header repeats a column is kept aside whole and ledgered as failed with the reason, while the
    files beside it land, one of them with its columns in another order; it is left alone until replaced, then
    ingested."""
    import os

    folder = tmp_path / "landing" / "shop"
    folder.mkdir(parents=True)
    (folder / "a.csv").write_text(SHOP_CSV)
    swapped = [line.split(";") for line in SHOP_CSV.replace("A-", "C-").splitlines()]
    (folder / "c.csv").write_text("\n".join(";".join([f[1], f[0], *f[2:]]) for f in swapped) + "\n")  # Pos first
    bad = SHOP_CSV.replace("Bestellnummer;Pos", "Bestellnummer;Bestellnummer")
    (folder / "b.csv").write_text(bad)
    lake = _lake(spark, tmp_path, shop=SHOP)
    [audit] = ingest_source(lake, "shop", Run.create("2026-11-25", "r1"))
    assert (audit.rows_read, audit.rows_to_silver) == (6, 4)  # a.csv and c.csv, each read by its own header
    assert {r["order_id"] for r in lake.read(lake.ref("silver", "orders")).collect()} == {"A-1", "A-2", "C-1", "C-2"}
    ledger = {Path(r["file"]).name: r for r in lake.read(lake.ref("ops", "ingest_files")).collect()}
    failed = ledger["b.csv"]
    assert (failed["status"], failed["batch_id"]) == ("failed", "failed-r1")
    assert failed["reason"] == "its header repeats the columns ['Bestellnummer']"
    assert Path(failed["kept_at"].removeprefix("file:")).read_text() == bad  # its bytes, kept
    assert ledger["a.csv"]["status"] is None
    assert ingest_source(lake, "shop", Run.create("2026-11-25", "r2")) == []  # not tried again as it is
    (folder / "b.csv").write_text(SHOP_CSV.replace("A-1;", "B-1;").replace("A-2;", "B-2;"))  # replaced
    os.utime(folder / "b.csv", (1_900_000_000, 1_900_000_000))
    [again] = ingest_source(lake, "shop", Run.create("2026-11-25", "r3"))
    assert (again.rows_read, again.rows_to_silver) == (3, 2)
    ledger = lake.read(lake.ref("ops", "ingest_files")).where("file LIKE '%b.csv'").collect()
    assert [(r["status"], r["batch_id"]) for r in ledger] == [(None, again.batch_id)]  # the failure forgotten
    assert not Path(failed["kept_at"].removeprefix("file:")).exists()  # and its copy


def _silver_crm(lake: Lake) -> list[tuple]:
    df = lake.read(lake.ref("silver", "crm_profiles"))
    return sorted((r["customer_id"], r["city"], r["updated_at"]) for r in df.collect())


def test_batches_over_time_latest_version_wins_and_reruns_are_no_ops(spark, tmp_path: Path) -> None:
    folder = tmp_path / "landing" / "crm"
    folder.mkdir(parents=True)
    lake = _lake(spark, tmp_path)
    (folder / "crm_1.csv").write_text("\n".join([CRM_HEADER, _crm("C1", "Wuhan", "2026-01-01T00:00:00.000Z"),
                                                 _crm("C2", "Xiamen", "2026-01-05T00:00:00.000Z")]) + "\n")  # fmt: skip
    [first] = ingest_source(lake, "crm_profiles", Run.create("2026-11-25", "r1"))
    assert first.rows_to_silver == 2
    # all keys new: silver was appended to; a re-run of the batch after a stop replaces its rows, adds none
    lake.delta(lake.ref("ops", "ingest_audit")).delete(F.col("batch_id") == first.batch_id)
    assert ingest_source(lake, "crm_profiles", Run.create("2026-11-25", "r1b")) == [first]
    assert [r[:2] for r in _silver_crm(lake)] == [("C1", "Wuhan"), ("C2", "Xiamen")]
    (folder / "crm_2.csv").write_text("\n".join([CRM_HEADER, _crm("C1", "Chengdu", "2026-02-01T00:00:00.000Z"),
                                                 _crm("C2", "Kunming", "2026-01-02T00:00:00.000Z"),  # late, stale
                                                 _crm("C3", "Nanjing", "2026-02-03T00:00:00.000Z", "c@x.org")]) + "\n")  # fmt: skip
    [second] = ingest_source(lake, "crm_profiles", Run.create("2026-11-25", "r2"))
    assert (second.rows_read, second.rows_to_silver, second.rows_superseded) == (3, 2, 1)
    expected = [("C1", "Chengdu", datetime(2026, 2, 1)), ("C2", "Xiamen", datetime(2026, 1, 5)),
                ("C3", "Nanjing", datetime(2026, 2, 3))]  # fmt: skip
    assert _silver_crm(lake) == expected
    restricted = lake.read(lake.ref(RESTRICTED, "crm_profiles_pii"))
    assert restricted.where(F.col("customer_id") == "C3").first()["email"] == "c@x.org"

    # nothing new: no batch, no table changes
    refs = [lake.ref("bronze", "crm_profiles"), lake.ref("silver", "crm_profiles"), lake.ref("ops", "ingest_audit")]
    versions = [lake.version(r) for r in refs]
    assert ingest_source(lake, "crm_profiles", Run.create("2026-11-25", "r3")) == []
    assert [lake.version(r) for r in refs] == versions

    # a run that stopped after silver's MERGE but before the audit row: the batch is processed again, same outcome
    lake.delta(lake.ref("ops", "ingest_audit")).delete(F.col("batch_id") == second.batch_id)
    [again] = ingest_source(lake, "crm_profiles", Run.create("2026-11-25", "r4"))
    assert again == second
    assert _silver_crm(lake) == expected

    # a run that stopped after the bronze append but before the ledger: the files are not read again
    bronze_rows = lake.read(lake.ref("bronze", "crm_profiles")).count()
    lake.delta(lake.ref("ops", "ingest_files")).delete(F.col("batch_id") == second.batch_id)
    assert ingest_source(lake, "crm_profiles", Run.create("2026-11-25", "r5")) == []
    assert lake.read(lake.ref("bronze", "crm_profiles")).count() == bronze_rows
    ledger = lake.read(lake.ref("ops", "ingest_files")).where(F.col("batch_id") == second.batch_id)
    assert [r["file"].rsplit("/", 1)[1] for r in ledger.collect()] == ["crm_2.csv"]


def test_text_and_headerless_files_are_read_by_declared_names(spark, tmp_path: Path) -> None:
    """Whitespace-separated text (the CDNOW log's shape: leading blanks, CRLF), fixed-width text and a CSV without a
    header: each line's fields by the declared names; a line with a field too many or too few is malformed, its text
    kept; a header line that repeats the names, and blank lines, are skipped."""
    from audiencelake.ingest.reader import read_raw

    spaced = tmp_path / "cdnow.txt"
    spaced.write_bytes(b"\xef\xbb\xbfcustomer sample day cds dollars\r\n 00004 0001 19970101  2   29.33\r\n\r\n"
                       b" 00004 0001 19970118  2\r\n 00005 0002 19970802  1   14.96 x\r\n")  # fmt: skip
    fixed = tmp_path / "orders.dat"
    fixed.write_text("A1  2026-01-0112\nB22 2026-01-02 7\nC3  2026-01-03123456\n")
    bare = tmp_path / "orders.csv"
    bare.write_text('1,"x, y",3\n2,z,4\n')
    shapes = [
        ({"format": "text", "names": ["customer", "sample", "day", "cds", "dollars"], "separator": r"\s+"}, spaced),
        ({"format": "text", "names": ["id", "day", "q"], "widths": [4, 10, 2]}, fixed),
        ({"format": "csv", "names": ["a", "b", "c"]}, bare),
    ]
    got = []
    for shape, path in shapes:
        src = SourceSettings.model_validate({"path": "x", "table": "orders", **shape})
        got.append([(r["_raw"], r["_error"]) for r in read_raw(spark, src, [str(path)]).orderBy("_raw").collect()])
    assert got[0] == [
        (" 00004 0001 19970118  2", "malformed_record"),
        (" 00005 0002 19970802  1   14.96 x", "malformed_record"),
        ('{"customer":"00004","sample":"0001","day":"19970101","cds":"2","dollars":"29.33"}', None),
    ]
    assert got[1] == [
        ("C3  2026-01-03123456", "malformed_record"),
        ('{"id":"A1","day":"2026-01-01","q":"12"}', None),
        ('{"id":"B22","day":"2026-01-02","q":"7"}', None),
    ]
    assert got[2] == [('{"a":"1","b":"x, y","c":"3"}', None), ('{"a":"2","b":"z","c":"4"}', None)]


def test_sources_check_names_a_file_ingest_would_set_aside(spark, tmp_path: Path) -> None:
    from datetime import date

    from audiencelake.ingest.check import check_sources

    folder = tmp_path / "landing" / "shop"
    folder.mkdir(parents=True)
    (folder / "a.csv").write_text(SHOP_CSV)
    (folder / "c.csv").write_text(SHOP_CSV.replace("A-1;", "C-1;").replace("A-2;", "C-2;"))
    (folder / "b.csv").write_text(SHOP_CSV.replace("Bestellnummer;Pos", "Bestellnummer;Bestellnummer"))
    lake = _lake(spark, tmp_path, shop=SHOP)
    [check] = check_sources(spark, lake.settings, date(2026, 11, 25))
    assert (check.files, check.sampled, list(check.unreadable)) == (3, 6, [f"file://{folder}/b.csv"])
    assert "would be set aside as a file: " in check.render() and "repeats the columns" in check.render()
    assert not (tmp_path / "lake").exists()
