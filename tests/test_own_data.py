"""The README's worked examples ("Your own data"): files shaped like what shops export, set up by a sources file
alone (tests/data/shops/*.yaml). `sources check` reports each one without writing; the expected counts are read
from the files here with the csv and json modules, not by the code under test."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from audiencelake.core.resources import project_root
from audiencelake.ingest.check import check_sources
from conftest import lake_settings

pytestmark = pytest.mark.e2e
SHOPS = project_root() / "tests" / "data" / "shops"


def _settings(root: Path, example: str):
    return lake_settings(root, f"sources_file={SHOPS / example}.yaml")


def test_sources_check_reports_each_example_and_writes_nothing(spark, tmp_path: Path) -> None:
    from datetime import date

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
