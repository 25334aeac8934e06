"""The README's worked examples ("Your own data"): files shaped like what shops export, set up by a sources file
alone (tests/data/shops/*.yaml). `sources check` reports each one without writing; the expected counts are read
from the files here with the csv and json modules, not by the code under test."""

from __future__ import annotations

import csv
import gzip
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from audiencelake.audiences.export import export_folder
from audiencelake.core.lake import Lake
from audiencelake.core.resources import project_root
from audiencelake.core.runs import Run
from audiencelake.ingest.check import check_sources
from audiencelake.report.html import report_path
from audiencelake.stages.declaration import StageContext
from audiencelake.stages.runner import run_pipeline
from conftest import lake_settings, small_models_config

pytestmark = pytest.mark.e2e
SHOPS = project_root() / "tests" / "data" / "shops"


def _settings(root: Path, example: str):
    return lake_settings(root, f"sources_file={SHOPS / example}.yaml")


def test_sources_check_reports_each_example_and_writes_nothing(spark, tmp_path: Path) -> None:

    with open(SHOPS / "online_retail.csv", newline="") as f:
        lines = list(csv.DictReader(f))
    with gzip.open(SHOPS / "web_events.jsonl.gz", "rt") as f:
        events = [json.loads(line) for line in f]
    cdnow = (project_root() / "tests" / "data" / "cdnow_sample.txt").read_text().split("\n")

    [orders, customers] = check_sources(spark, _settings(tmp_path, "retail"), date(2011, 12, 9))
    assert orders.sampled == len(lines)
    assert orders.quarantined == {("missing_required", "customer_id"): sum(not r["Customer ID"] for r in lines)}
    assert max(int(r["Quantity"]) for r in lines) > 1000  # the wholesale line passes: the source raised the cap
    assert {c.name: c.origin for c in orders.columns}["quantity"] == "= abs(Quantity)"
    assert (orders.unread, orders.shared_keys) == (["Country", "Description"], 0)
    assert (customers.sampled, customers.quarantined) == (220, {})
    [web] = check_sources(spark, _settings(tmp_path, "web"), date(2024, 3, 31))
    assert web.quarantined == {("expectation", "known_event_type"): sum(e["event_name"] == "scroll" for e in events)}
    [text] = check_sources(spark, _settings(tmp_path, "cdnow"), date(1998, 6, 30), sample=100)
    assert (text.sampled, text.quarantined, text.files) == (100, {}, 1) and len(cdnow) > 100
    assert "would be quarantined: 0" in text.render()
    assert not (tmp_path / "lake").exists()  # a dry run


def _run(spark, root: Path, example: str, as_of: str, *extra: str) -> tuple[Lake, dict]:
    config = small_models_config(root / "models.yaml")
    lake = Lake(spark, lake_settings(root, f"sources_file={SHOPS / example}.yaml", f"models.config={config}", *extra))
    counts = run_pipeline(StageContext(lake, Run.create(as_of=as_of, run_id=f"{example}-1")), start="ingest")
    return lake, counts


def test_an_order_log_alone_the_cdnow_log(spark, tmp_path: Path) -> None:
    """Worked example 1: the CDNOW purchase log (public, 1997-98, whitespace text with no header) through the
    sources file alone: every line enters silver with its dollars as the amount, the profile, segments, churn and
    CLV are computed, recommendations (one product) are skipped in one line. With ads declared opt-out (no CRM
    holds consent), the dormant customers get the ads audience and its export by customer id; the audiences that
    need recorded consent or an address are skipped, each with its reason."""
    lines = [line.split() for line in (project_root() / "tests/data/cdnow_sample.txt").read_text().splitlines()]
    lake, counts = _run(spark, tmp_path, "cdnow", "1998-06-30", "audiences.opt_out_channels=[ads]")
    orders = lake.read(lake.ref("silver", "orders"))
    assert orders.count() == len(lines) == counts["ingest"]["rows_to_silver"]
    assert orders.agg(F.sum("amount")).first()[0] == sum(Decimal(line[4]) for line in lines)
    assert counts["profile"]["users"] == len({line[0] for line in lines})
    stages = lake.read(lake.ref("gold", "user_profile")).groupBy("lifecycle_stage").count().collect()
    assert {r[0] for r in stages} <= {"active", "dormant", "churned", "invalid"}  # no CRM: no one is 'new'

    assert sum(r[1] for r in stages if r[0] == "churned") > 0  # CDNOW's buyers mostly left (the papers' point)
    for model in ("segmentation", "churn", "clv"):
        assert counts[f"train_{model}"]["promoted"] == 1, counts[f"train_{model}"]
    assert counts["train_recommendations"]["skipped"].startswith("recommendations: no user with interactions")
    assert {k: counts["audiences"][k] for k in ("audiences", "skipped")} == {"audiences": 1, "skipped": 4}
    members = lake.read(lake.ref("gold", "audience_members")).toPandas()
    assert set(members["audience"]) == {"dormant_reactivation"} and len(members) > 0
    last, spend = {}, {}
    for customer, _, day, _, dollars in lines:
        last[customer] = max(last.get(customer, date.min), date(int(day[:4]), int(day[4:6]), int(day[6:])))
        spend[customer] = spend.get(customer, 0) + float(dollars)
    # conf/tags.yaml and audiences.yaml: silent for more than 30 days (dormant or churned), not 'invalid' (silent
    # for a year and under 20 spent), lifetime spend between 1 and 1,000,000
    silent = {c: (date(1998, 6, 30) - d).days for c, d in last.items()}
    expected = {c for c in last if silent[c] > 30 and not (silent[c] > 365 and spend[c] < 20) and spend[c] >= 1}
    assert set(members["user_id"]) == expected
    assert counts["audiences"]["treatment"] == (members["group"] == "treatment").sum() > 0
    folder = export_folder(lake, "ad_platform", "dormant_reactivation", "cdnow-1")
    assert json.loads((folder / "manifest.json").read_text())["counts"]["exported"] == counts["audiences"]["treatment"]
    match = json.loads((export_folder(lake, "ads_customer_match", "dormant_reactivation", "cdnow-1") /
                        "manifest.json").read_text())["counts"]  # fmt: skip
    assert (match["exported"], match["not_matched"]) == (0, match["treatment"])  # no e-mail or phone to match on
    report = report_path(lake, "cdnow-1").read_text()  # what the lake lacks, and which export would give it
    assert "dormant_reactivation" in report.split("<h2>Audiences</h2>", 1)[1]


def test_web_analytics_alone(spark, tmp_path: Path) -> None:
    """Worked example 3: a web analytics export alone. The visitors who logged in are profiled from their
    clickstream, segmented and get recommendations from what they viewed and carted; every order-based model is
    skipped in one line naming silver.orders."""
    with gzip.open(SHOPS / "web_events.jsonl.gz", "rt") as f:
        events = [json.loads(line) for line in f]
    lake, counts = _run(spark, tmp_path, "web", "2024-03-31")
    assert counts["profile"]["users"] == len({e["user_id"] for e in events if e["event_name"] == "login"})
    assert counts["train_segmentation"]["promoted"] == counts["train_recommendations"]["promoted"] == 1
    assert counts["score_recommendations"]["rows"] > 0
    for stage in ("train_churn", "train_clv", "measure"):
        assert counts[stage] == {"skipped": "silver.orders does not exist (written by stage ingest)"}
    catalog = lake.read(lake.ref("gold", "tag_catalog")).toPandas().set_index("name")
    assert catalog.loc["sessions_30d", "unavailable"] is None
    assert catalog.loc["spend_365d", "unavailable"] == "source orders: silver.orders does not exist"
    report = report_path(lake, "web-1").read_text()
    assert "This lake has silver.clickstream_events. It lacks silver.orders, silver.crm_profiles," in report
    assert "No churn model: this lake has no silver.orders; an order log (a source with table: orders)" in report
    assert "No RFM scores: this lake has no silver.orders;" in report


def test_orders_and_customers_of_one_shop(spark, tmp_path: Path) -> None:
    """Worked example 2: an invoice file (refunds as C invoices, guest lines) and the shop's customer export
    (consent as yes/no words, no birth dates, so identity matching has nothing to learn from and links no one).
    Guest lines are quarantined, every other line enters silver with its signed amount, and the audiences whose
    tags an order log and a CRM give are built, with consent from the export."""
    with open(SHOPS / "online_retail.csv", newline="") as f:
        lines = [r for r in csv.DictReader(f) if r["Customer ID"]]
    with open(SHOPS / "customers.csv", newline="") as f:
        consented = {r["Customer ID"] for r in csv.DictReader(f) if r["Accepts Email Marketing"] == "yes"}
    lake, counts = _run(spark, tmp_path, "retail", "2011-12-09")
    assert counts["ingest"]["rows_silver_rejected"] == 60  # the guest lines (test_sources_check... counts them)
    orders = lake.read(lake.ref("silver", "orders"))
    assert orders.count() == len(lines)
    assert orders.agg(F.sum("amount")).first()[0] == sum(int(r["Quantity"]) * Decimal(r["Price"]) for r in lines)
    assert orders.where("line_type = 'refund'").count() == sum(r["Invoice"].startswith("C") for r in lines)
    assert counts["identity"]["merges"] == 0 and counts["identity"]["persons"] == 220
    assert counts["audiences"]["audiences"] >= 1 and counts["export"]["rows"] > 0
    members = lake.read(lake.ref("gold", "audience_members")).where("audience = 'winback_high_value'")
    assert {r["user_id"] for r in members.select("user_id").collect()} <= consented  # e-mail consent only
