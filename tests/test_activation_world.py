"""Activation on the trained models world: audiences with consent first and stable holdouts, exports with manifests
that are complete, reproducible and free of PII, rebuilds by time travel, and uplift of the planted campaigns.

Expected values come from the raw landing files (tests/raw_world.py) and the planted truth, not from the code
under test. Tests that change the lake work on a copy of it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from audiencelake.audiences.runs import rebuild
from audiencelake.cli.main import main
from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from audiencelake.stages.declaration import StageContext
from audiencelake.stages.runner import run_stage
from conftest import TEST_OVERRIDES, lake_settings
from raw_world import read_world

pytestmark = pytest.mark.e2e
RUN = "models-1"


@pytest.fixture(scope="module")
def raw(models_world):
    return read_world(models_world["root"] / "landing", models_world["truth"])


def members(lake: Lake, run_id: str = RUN) -> pd.DataFrame:
    return lake.read(lake.ref("gold", "audience_members")).where(f"run_id = '{run_id}'").toPandas()


def exports(lake: Lake, run_id: str = RUN) -> dict[tuple[str, str], Path]:
    root = Path(lake.settings.exports_root)
    return {(p.parts[-3], p.parts[-2]): p for p in root.glob(f"*/*/{run_id}") if p.is_dir()}


def read_export(folder: Path) -> pd.DataFrame:
    files = sorted(folder.glob("part-*"))
    if not files:
        return pd.DataFrame()
    if files[0].suffix == ".parquet":
        return pd.concat([pq.read_table(f).to_pandas() for f in files])
    return pd.concat([pd.read_csv(f, dtype=str) for f in files])


def cli_sets(root: Path) -> list[str]:
    """--set flags for a CLI call on the lake under `root`, with the suite's Spark settings."""
    pairs = [*TEST_OVERRIDES, f"lake.root={root / 'lake'}", f"lake.landing={root / 'landing'}"]
    return [arg for pair in pairs for arg in ("--set", pair)]


def e164(phone: str) -> str:
    digits = "".join(c for c in phone if c.isdigit())
    international = phone.strip().startswith(("+", "00"))
    digits = digits[2:] if phone.strip().startswith("00") else digits
    if not international and len(digits) == 11 and digits.startswith("1"):
        digits = "86" + digits
    return "+" + digits


def test_every_audience_is_built_with_consent_first(models_world, raw):
    lake = models_world["lake"]
    counts = models_world["counts"]["audiences"]
    got = members(lake)
    assert counts["audiences"] == 5 and got["audience"].nunique() == 5
    assert counts["treatment"] == (got["group"] == "treatment").sum() > 0
    definitions = {a: json.loads(d)["audience"] for a, d in
                   lake.read(lake.ref("ops", "audience_runs")).select("audience", "definition").collect()}  # fmt: skip
    for row in got.itertuples():
        channel = definitions[row.audience]["channel"]
        crm = raw.crm[row.user_id]  # the customer's latest CRM record in the raw files
        assert crm[f"consent_{channel}"] == "true", (row.audience, row.user_id)
        if channel == "email":
            assert crm["email"]
    assert not got.duplicated(["audience", "user_id"]).any()
    # cross-sell leaves out win-back members (treatment and holdout alike), as its rule says
    winback = set(got[got["audience"] == "winback_high_value"]["user_id"])
    assert winback and not winback & set(got[got["audience"] == "cross_sell"]["user_id"])


def test_groups_are_the_hash_of_user_and_salt(models_world):
    got = members(models_world["lake"])
    pct = {"winback_high_value": 10, "cross_sell": 10, "price_sensitive_promo": 15, "dormant_reactivation": 20,
           "new_customer_nurture": 10}  # fmt: skip
    for row in got.itertuples():
        bucket = int(hashlib.sha256(f"{row.audience}:{row.user_id}".encode()).hexdigest()[:15], 16) % 10_000
        assert row.group == ("holdout" if bucket < pct[row.audience] * 100 else "treatment")


def test_exports_hold_treatment_only_with_checksummed_files_and_manifests(models_world, raw):
    lake = models_world["lake"]
    got = members(lake)
    found = exports(lake)
    assert set(found) == {("email_platform", "winback_high_value"), ("push_service", "cross_sell"),
                          ("sms_gateway", "price_sensitive_promo"), ("ad_platform", "dormant_reactivation"),
                          ("ads_customer_match", "dormant_reactivation"),
                          ("email_platform", "new_customer_nurture")}  # fmt: skip
    assert not list((Path(lake.settings.exports_root) / ".staging").glob("*"))  # nothing left half-written
    for (destination, audience), folder in found.items():
        manifest = json.loads((folder / "manifest.json").read_text())
        mine = got[got["audience"] == audience]
        treatment = set(mine[mine["group"] == "treatment"]["user_id"])
        assert manifest["counts"]["treatment"] == len(treatment)
        assert manifest["counts"]["holdout"] == (mine["group"] == "holdout").sum()
        for f in manifest["files"]:
            assert hashlib.sha256((folder / f["name"]).read_bytes()).hexdigest() == f["sha256"]
        assert sum(f["rows"] for f in manifest["files"]) == manifest["counts"]["exported"]
        assert manifest["rule"] and manifest["audience_version"] and manifest["inputs"]["gold.user_profile"] >= 0
        data = read_export(folder)
        if destination == "ads_customer_match":
            emails = {hashlib.sha256(raw.crm[u]["email"].strip().lower().encode()).hexdigest()
                      for u in treatment if raw.crm[u]["email"].strip()}  # fmt: skip
            phones = {hashlib.sha256(e164(raw.crm[u]["phone"]).encode()).hexdigest()
                      for u in treatment if raw.crm[u]["phone"].strip()}  # fmt: skip
            assert set(data["email_sha256"].dropna()) == emails
            assert set(data["phone_sha256"].dropna()) == phones
            assert list(data.columns) == ["email_sha256", "phone_sha256"]
        else:
            assert set(data["user_id"]) == treatment  # every treatment member, no holdout member
            assert manifest["changes"] == {"previous_run_id": None, "added": len(treatment), "removed": 0,
                                           "unchanged": 0}  # fmt: skip
    cross_sell = read_export(found[("push_service", "cross_sell")])
    assert {"send_hour", "top_recommendation"} <= set(cross_sell.columns)


def test_no_raw_pii_in_gold_tables_or_exports(models_world):
    lake = models_world["lake"]
    with open(models_world["truth"] / "users.csv", newline="") as fh:
        people = list(csv.DictReader(fh))
    needles = {p[k] for p in people for k in ("email", "phone") if p[k]}
    needles |= {f"{p['first_name']} {p['last_name']}" for p in people}
    gold = Path(lake.settings.lake_root) / "gold"
    for table in sorted(p.name for p in gold.iterdir() if p.is_dir()):
        df = lake.read(lake.ref("gold", table))
        strings = [f.name for f in df.schema.fields if f.dataType.simpleString() == "string"]
        values = {v for row in df.select(*strings).distinct().collect() for v in row if v} if strings else set()
        text = "\n".join(values)
        assert not [n for n in needles if n in text], table
    for folder in exports(lake).values():
        for path in folder.iterdir():
            text = path.read_bytes().decode("latin-1")
            assert not [n for n in needles if n in text], path


def test_nothing_new_keeps_the_activation_and_exporting_again_writes_byte_identical_files(models_world):
    lake, as_of, counts = models_world["lake"], models_world["ctx"].run.as_of, models_world["counts"]
    before = {p: p.read_bytes() for folder in exports(lake).values() for p in folder.iterdir()}
    assert len(before) >= 12
    tables = [
        lake.ref("gold", "audience_members"),
        lake.ref("ops", "audience_runs"),
        lake.ref("gold", "campaign_results"),
    ]
    versions = [lake.version(t) for t in tables]
    # a new run of the same date with the same inputs and definitions: the first run's audiences stay the activation;
    # of its exports, a folder removed since is written again and one a destination added a file to is left alone
    removed, acknowledged = sorted(exports(lake).values())[:2]
    shutil.rmtree(removed)
    (acknowledged / "ack.txt").write_text("taken\n")
    again = StageContext(lake, Run.create(as_of=as_of, run_id="models-again"), {})
    assert run_stage("audiences", again) == {**counts["audiences"], "kept": 1}
    assert run_stage("export", again) == counts["export"]
    assert run_stage("measure", again) == {**counts["measure"], "kept": 1}
    assert [lake.version(t) for t in tables] == versions and not exports(lake, "models-again")
    assert (acknowledged / "ack.txt").exists()
    (acknowledged / "ack.txt").unlink()
    assert {p: p.read_bytes() for folder in exports(lake).values() for p in folder.iterdir()} == before
    # the run built again from what it recorded, then exported again (on another day: the run's own date is used)
    run_stage("audiences", StageContext(lake, Run.create(as_of=as_of, run_id=RUN), {}))
    run_stage("export", StageContext(lake, Run.create(run_id=RUN), {}))
    after = {p: p.read_bytes() for folder in exports(lake).values() for p in folder.iterdir()}
    assert after == before


def test_the_measure_stage_measures_every_planted_campaign(models_world):
    """Coverage of the planted effects is tested over many seeds in test_uplift_planted; here the stage's rows."""
    lake = models_world["lake"]
    results = lake.read(lake.ref("gold", "campaign_results")).toPandas().set_index("name")
    with open(models_world["truth"] / "campaigns.csv", newline="") as fh:
        campaigns = {c["campaign_id"]: date.fromisoformat(c["date"]) for c in csv.DictReader(fh)}
    assert set(results.index) == set(campaigns) and set(results["kind"]) == {"campaign"}
    for campaign, sent in campaigns.items():
        row = results.loc[campaign]
        assert (row["window_start"], row["window_end"]) == (sent, sent + timedelta(days=6)) and row["complete"]
        assert row["lift_ci_low"] <= row["lift"] <= row["lift_ci_high"]
        assert row["incremental_conversions"] == pytest.approx(row["lift"] * row["treatment_users"])


@pytest.fixture(scope="module")
def lake_copy(models_world, spark, tmp_path_factory):
    """A copy of the trained world's lake, for tests that change it, with a landing folder of its own (empty: the
    lake's ingest ledger knows the original landing files by their path)."""
    root = tmp_path_factory.mktemp("activation-copy")
    shutil.copytree(models_world["root"] / "lake", root / "lake")
    (root / "landing" / "crm").mkdir(parents=True)
    return Lake(spark, lake_settings(root, f"models.config={models_world['config']}")), root


def withdraw_email_consent(root: Path, user: str, raw) -> None:
    """A CRM export landing later than every other, in which `user` withdrew email consent."""
    crm = dict(raw.crm[user], consent_email="false", updated_at="2026-10-31T23:00:00.000+00:00")
    path = root / "landing" / "crm" / "crm_profiles_2026-11-01_part9999.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(crm), lineterminator="\n")
        writer.writeheader()
        writer.writerow(crm)


def test_withdrawn_consent_and_suppression_reach_every_export_and_rebuild_time_travels(lake_copy, raw, capsys):
    lake, root = lake_copy
    first = members(lake)
    email_users = first[(first["audience"] == "winback_high_value") & (first["group"] == "treatment")]["user_id"]
    withdrawn = sorted(email_users)[0]
    anywhere = first[first["group"] == "treatment"]
    suppressed = sorted(set(anywhere["user_id"]) - {withdrawn})[0]
    withdraw_email_consent(root, withdrawn, raw)
    sets = cli_sets(root)
    main(["suppress", "--reason", "unsubscribe", "--email", f"  {raw.crm[suppressed]['email'].upper()} ", *sets])
    as_of = Run.create(as_of="2026-10-31").as_of
    ctx = StageContext(lake, Run.create(as_of=as_of, run_id="r2"), {})
    for stage in ("ingest", "audiences", "export"):
        run_stage(stage, ctx)
    second = members(lake, "r2")
    email_audiences = {"winback_high_value", "new_customer_nurture"}
    assert withdrawn not in set(second[second["audience"].isin(email_audiences)]["user_id"])
    assert suppressed not in set(second["user_id"])
    for (destination, _), folder in exports(lake, "r2").items():
        data = read_export(folder)
        if destination != "ads_customer_match":
            assert suppressed not in set(data["user_id"])
            if destination == "email_platform":
                assert withdrawn not in set(data["user_id"])
    manifest = json.loads((exports(lake, "r2")[("email_platform", "winback_high_value")] / "manifest.json").read_text())
    assert manifest["changes"]["previous_run_id"] == RUN and manifest["changes"]["removed"] >= 1
    # the first run rebuilt from the versions it recorded: consent and suppression as they stood then
    result, compared = rebuild(lake, RUN)
    assert compared == {name: (n, 0) for name, (n, _) in compared.items()} and len(compared) == 5
    winback = next(b for b in result.built if b.audience.name == "winback_high_value").members
    assert withdrawn in {r["user_id"] for r in winback.where("group = 'treatment'").collect()}


def test_preview_prints_the_funnel_and_rebuild_checks_without_writing(lake_copy, capsys):
    lake, root = lake_copy
    tables = [lake.ref("gold", "audience_members"), lake.ref("ops", "audience_runs")]
    versions = [lake.version(t) for t in tables]
    sets = cli_sets(root)
    capsys.readouterr()
    main(["audience", "preview", "cross_sell", "--as-of", "2026-10-31", *sets])
    out = capsys.readouterr().out
    for step in ("profiled users", "consent to push", "not suppressed", "NOT IN AUDIENCE winback_high_value",
                 "final:", "overlaps with"):  # fmt: skip
        assert step in out, out
    main(["audience", "rebuild", "--run-id", "r2", *sets])
    assert capsys.readouterr().out.count("identical") == 5
    assert [lake.version(t) for t in tables] == versions
