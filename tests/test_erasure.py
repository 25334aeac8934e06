"""Erasure on request (issue 10): `audiencelake forget` takes a person out of every table, landing file and export
of a copy of the trained world; after VACUUM no file under it holds their email, phone or any hash of them; they are
on the suppression list, a later audience run leaves them out, and the request is logged without the identifier.

The person's values are read from the landing files (tests/raw_world.py), not from the code under test, and the
files are searched decoded (Parquet values, gzip text), so compression cannot hide a value from the search.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from audiencelake.cli.main import main
from audiencelake.core.lake import RESTRICTED, Lake
from audiencelake.core.runs import Run
from audiencelake.stages.declaration import StageContext
from audiencelake.stages.runner import run_stage
from conftest import captured_logs, lake_settings
from raw_world import read_world
from test_activation_world import cli_sets, e164, exports, members, read_export

pytestmark = pytest.mark.e2e


def file_text(path: Path) -> str:
    """What a file says, decoded: a Parquet file's values (Delta data files and checkpoints), gzip's text, else the
    bytes as text."""
    if path.suffix == ".parquet":
        return str(pq.read_table(path).to_pylist())
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def holders(root: Path, needles: dict[str, str]) -> dict[str, list[str]]:
    """For each named needle, the files under `root` that hold it (decoded, case-insensitive)."""
    found: dict[str, list[str]] = {name: [] for name in needles}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        text = file_text(path).lower()
        for name, needle in needles.items():
            if needle.lower() in text:
                found[name].append(str(path.relative_to(root)))
    return {name: files for name, files in found.items() if files}


@pytest.fixture(scope="module")
def erasure_copy(models_world, spark, tmp_path_factory):
    """A copy of the trained world's lake and landing files, VACUUM retention 0 h."""
    root = tmp_path_factory.mktemp("erasure-copy")
    shutil.copytree(models_world["root"] / "lake", root / "lake")
    shutil.copytree(models_world["root"] / "landing", root / "landing")
    extra = [f"models.config={models_world['config']}", "lake.vacuum_retention_hours=0"]
    sets = cli_sets(root) + ["--set", f"models.config={models_world['config']}"]
    sets += ["--set", "lake.vacuum_retention_hours=0"]
    return Lake(spark, lake_settings(root, *extra)), root, sets


@pytest.fixture(scope="module")
def raw(models_world):
    return read_world(models_world["root"] / "landing", models_world["truth"])


def _landing_crm(root: Path) -> list[dict]:
    rows = []
    for path in sorted((root / "landing" / "crm").glob("*.csv")):
        with open(path, newline="") as fh:
            rows += list(csv.DictReader(fh))
    return rows


def _exported_person(lake: Lake, raw, root: Path) -> str:
    """A treatment member of an audience exported as customer-match hashes, whose email and phone are on record and
    appear in no other customer's CRM records."""
    m = members(lake)
    ads = {a for (destination, a) in exports(lake) if destination == "ads_customer_match"}
    treated = m[(m["group"] == "treatment") & m["audience"].isin(ads)]["user_id"]
    crm = _landing_crm(root)
    owners = {}
    for r in crm:
        for value in ((r["email"] or "").strip().lower(), e164(r["phone"]) if r["phone"] else ""):
            owners.setdefault(value, set()).add(r["customer_id"])

    def unique(user: str) -> bool:
        r = raw.crm.get(user) or {}
        values = [(r.get("email") or "").strip().lower(), e164(r["phone"]) if r.get("phone") else ""]
        return all(v and owners.get(v) == {r["customer_id"]} for v in values)

    return next(u for u in sorted(set(treated)) if unique(u))


def _needles(lake: Lake, person: dict) -> dict[str, str]:
    salt = lake.settings.pii_salt()
    email, phone = person["email"], person["phone"]
    normal = email.strip().lower()
    return {
        "email": normal,
        "email salted hash": hashlib.sha256((salt + normal).encode()).hexdigest(),
        "email sha256 (exports)": hashlib.sha256(normal.encode()).hexdigest(),
        "phone": phone.strip(),
        "phone salted hash": hashlib.sha256((salt + e164(phone)[1:]).encode()).hexdigest(),
        "phone sha256 (exports)": hashlib.sha256(e164(phone).encode()).hexdigest(),
    }


def test_forget_by_email_leaves_no_trace_and_keeps_everyone_else(erasure_copy, raw, capsys) -> None:
    lake, root, sets = erasure_copy
    user = _exported_person(lake, raw, root)
    needles = _needles(lake, raw.crm[user])
    before = holders(root, needles)
    # the search can fail: every needle is somewhere before the request (landing, bronze, silver, exports, ...)
    assert set(before) == set(needles), sorted(set(needles) - set(before))
    # everyone else's rows stay: rows before, and the person's rows before, counted by user id
    kept = (("silver", "crm_profiles"), ("silver", "orders"), ("gold", "user_tags"), ("gold", "churn_scores"))
    counts = {t: (lake.read(lake.ref(*t)).count(), lake.read(lake.ref(*t)).where(f"user_id = '{user}'").count())
              for t in kept}  # fmt: skip
    assert all(mine for _, mine in counts.values())

    with captured_logs() as logs:
        main(["forget", "--email", f" {raw.crm[user]['email'].upper()} ", "--source", "dpo ticket 17", *sets])
    out = capsys.readouterr().out

    leaks = holders(root, needles)
    assert not leaks, f"still under the copy after forget: {leaks}"
    assert "erasure request" in out and "nobody found" not in out
    secrets = [needles["email"], needles["email salted hash"], needles["email sha256 (exports)"]]
    assert not [line for line in logs + [out] if any(s in line.lower() for s in secrets)]
    assert any("erasure request" in line for line in logs)

    for t, (total, mine) in counts.items():
        assert lake.read(lake.ref(*t)).count() == total - mine, t
    [request] = lake.read(lake.ref("ops", "erasure_requests")).collect()
    for layer, name in (("silver", "orders"), ("silver", "clickstream_events"), ("gold", "user_profile"),
                        ("gold", "audience_members"), ("identity", "identity_persons")):  # fmt: skip
        assert not lake.read(lake.ref(layer, name)).where(f"user_id = '{user}'").count(), f"{layer}.{name}"
    suppression = lake.read(lake.ref("ops", "suppression")).where(f"id_value = '{user}'").collect()
    assert [(r["id_type"], r["reason"]) for r in suppression] == [("user_id", "erasure")]
    assert request["id_type"] == "email" and request["source"] == "dpo ticket 17"
    assert request["user_ids"] >= 1 and request["rows_erased"] > 0 and request["landing_records"] > 0
    assert request["export_rows"] > 0 and request["vacuum_retention_hours"] == 0

    # exports: files still match their manifests, which name the request
    changed = 0
    for folder in exports(lake).values():
        manifest = json.loads((folder / "manifest.json").read_text())
        for f in manifest["files"]:
            assert hashlib.sha256((folder / f["name"]).read_bytes()).hexdigest() == f["sha256"]
        assert sum(f["rows"] for f in manifest["files"]) == manifest["counts"]["exported"] == len(read_export(folder))
        changed += bool(manifest.get("erasures"))
        assert user not in set(read_export(folder).get("user_id", []))
    assert changed >= 1


def test_a_later_audience_run_leaves_the_forgotten_person_out(erasure_copy) -> None:
    lake, root, _ = erasure_copy
    [request] = lake.read(lake.ref("ops", "erasure_requests")).collect()
    erased = {r["id_value"] for r in lake.read(lake.ref("ops", "suppression")).where("reason = 'erasure'").collect()}
    assert len(erased) == request["user_ids"]
    ctx = StageContext(lake, Run.create(as_of=Run.create(as_of="2026-10-31").as_of, run_id="after-erasure"), {})
    for stage in ("audiences", "export"):
        run_stage(stage, ctx)
    assert not erased & set(members(lake, "after-erasure")["user_id"])
    for folder in exports(lake, "after-erasure").values():
        assert not erased & set(read_export(folder).get("user_id", []))


def test_delta_logs_hold_no_raw_identifier_or_hash_of_anyone(models_world) -> None:
    """Delta keeps per-file min/max values in its log, which outlives VACUUM: the contracts keep PII, raw records
    and hashes of people out of those statistics (`stats: false`, restricted tables by key only)."""
    lake, root = models_world["lake"], models_world["root"] / "lake"
    pii = lake.read(lake.ref(RESTRICTED, "crm_profiles_pii")).where("email IS NOT NULL").collect()
    hashes = lake.read(lake.ref("silver", "crm_profiles")).where("email_hash IS NOT NULL").collect()
    values = {r["email"].strip().lower() for r in pii} | {r["email_hash"] for r in hashes}
    assert len(values) > 100
    logs = [p for p in root.rglob("*") if p.is_file() and "_delta_log" in p.parts]
    texts = {str(p.relative_to(root)): file_text(p).lower() for p in logs}
    assert any('"stats"' in text for text in texts.values())  # statistics are kept, of the other columns
    leaks = {name for name, text in texts.items() if any(v in text for v in values)}
    assert not leaks, sorted(leaks)[:5]
