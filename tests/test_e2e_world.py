"""End to end on a small generated world, checked against the planted truth (computed by the generator, or
read from the landing files here, never by the pipeline)."""

from __future__ import annotations

import csv
import gzip
import json
from datetime import timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from audiencelake.core.contracts import contract
from audiencelake.core.lake import RESTRICTED

pytestmark = pytest.mark.e2e

SILVER = {"clickstream": "clickstream_events", "orders": "orders", "crm_profiles": "crm_profiles",
          "campaign_touches": "campaign_touches", "social": "social_interactions"}  # fmt: skip
# planted kind -> (quarantine stage, quarantine reason)
QUARANTINED_KINDS = {
    "malformed": ("bronze", "malformed_record"),
    "missing_required": ("silver", "missing_required"),
    "wrong_type": ("silver", "wrong_type"),
    "impossible_value": ("quality", "expectation"),
    "conflict": ("silver", "conflicting_versions"),
}


def _manifest(world) -> dict:
    return json.loads((world["truth"] / "manifest.json").read_text())


def _landing_records(folder: Path) -> int:
    """Records in a source's landing files, counted from the files themselves."""
    total = 0
    for path in sorted(folder.iterdir()):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as fh:
            lines = [line for line in fh.read().split("\n") if line.strip()]
        total += len(lines) - (1 if path.suffix == ".csv" else 0)
    return total


def _table(world, layer: str, name: str):
    lake = world["lake"]
    return lake.read(lake.ref(layer, name))


def test_every_record_read_is_accounted_for(world) -> None:
    audit = (
        _table(world, "ops", "ingest_audit")
        .groupBy("source")
        .agg(
            *[
                F.sum(c).alias(c)
                for c in (
                    "rows_read",
                    "rows_bronze_rejected",
                    "rows_silver_rejected",
                    "rows_duplicate",
                    "rows_superseded",
                    "rows_to_silver",
                )
            ]  # fmt: skip
        )
    )
    folders = {"clickstream": "clickstream", "orders": "orders", "crm_profiles": "crm",
               "campaign_touches": "campaign_touches", "social": "social"}  # fmt: skip
    quarantine = _table(world, "ops", "quarantine")
    for row in audit.collect():
        source = row["source"]
        assert row["rows_read"] == _landing_records(world["root"] / "landing" / folders[source]), source
        silver_rows = _table(world, "silver", SILVER[source]).count()
        in_quarantine = quarantine.where(F.col("source") == source).count()
        assert row["rows_to_silver"] == silver_rows, source
        assert row["rows_bronze_rejected"] + row["rows_silver_rejected"] == in_quarantine, source
        assert row["rows_read"] == silver_rows + in_quarantine + row["rows_duplicate"] + row["rows_superseded"], source


def test_silver_holds_exactly_the_valid_records(world) -> None:
    valid = _manifest(world)["valid_rows"]
    for source, table in SILVER.items():
        assert _table(world, "silver", table).count() == valid[source], table
    late = _manifest(world)["bad_records"]["clickstream"]["late_arriving"]
    assert late > 0  # late events are among the valid ones counted above


def test_planted_bad_records_are_in_quarantine_with_their_reason(world) -> None:
    planted = _manifest(world)["bad_records"]
    found = {
        (r["source"], r["stage"], r["reason"]): r["count"]
        for r in _table(world, "ops", "quarantine").groupBy("source", "stage", "reason").count().collect()
    }
    expected: dict[tuple, int] = {}
    for source, kinds in planted.items():
        for kind, count in kinds.items():
            if kind in QUARANTINED_KINDS and count:
                key = (source, *QUARANTINED_KINDS[kind])
                expected[key] = expected.get(key, 0) + count
    assert found == expected
    duplicates = {
        r["source"]: r["d"]
        for r in _table(world, "ops", "ingest_audit")
        .groupBy("source")
        .agg(F.sum("rows_duplicate").alias("d"))
        .collect()
    }
    assert duplicates == {s: kinds.get("exact_duplicate", 0) for s, kinds in planted.items()}


def test_quarantined_expectations_name_the_rule(world) -> None:
    rules = {
        (r["source"], r["rule"])
        for r in _table(world, "ops", "quarantine")
        .where(F.col("stage") == "quality")
        .select("source", "rule")
        .collect()
    }
    assert rules == {("orders", "price_not_negative"), ("crm_profiles", "birth_date_plausible")}


def test_quarantined_and_warned_rows_carry_every_failing_rule(world) -> None:
    """An expectation's row lists every rule it fails (its first error rule is `rule`); a row rejected before the
    expectations lists its reason; a row kept with warnings carries them in silver, as many as the audit counts."""
    for r in _table(world, "ops", "quarantine").select("stage", "reason", "rule", "failures").collect():
        failures = [tuple(f) for f in r["failures"]]
        if r["stage"] == "quality":
            assert failures[0][0] == r["rule"] and failures[0][2] == "error"
            assert all(severity in ("error", "warn") for _, _, severity in failures)
        else:
            assert failures == [(r["reason"], r["rule"], "error")]
    warned = sum(r["rows_warned"] for r in _table(world, "ops", "ingest_audit").collect())
    kept = sum(_table(world, "silver", t).where(F.col("_warnings").isNotNull()).count()
               for t in ("orders", "crm_profiles", "clickstream_events", "social_interactions"))  # fmt: skip
    assert kept == warned


def test_crm_silver_keeps_the_latest_version(world) -> None:
    with open(world["truth"] / "users.csv") as fh:
        truth = {r["customer_id"]: r for r in csv.DictReader(fh)}
    with open(world["truth"] / "persons.csv") as fh:
        records = {r["customer_id"] for r in csv.DictReader(fh)}  # customers, their duplicates, test accounts
    silver = {r["customer_id"]: r for r in _table(world, "silver", "crm_profiles").collect()}
    assert set(silver) == records and set(truth) < records
    assert all(silver[c]["city"] == truth[c]["city"] for c in truth)
    assert all(str(silver[c]["consent_email"]).lower() == truth[c]["consent_email"].lower() for c in truth)


def test_identity_stitching_recovers_planted_links(world) -> None:
    with open(world["truth"] / "identities.csv") as fh:
        truth = {r["anonymous_id"]: r["customer_id"] or None for r in csv.DictReader(fh)}
    events = _table(world, "silver", "clickstream_events").select("anonymous_id", "user_id").distinct().collect()
    stitched = {r["anonymous_id"]: r["user_id"] for r in events}
    assert len(stitched) == len({r["anonymous_id"] for r in events}), "an anonymous id maps to two users"
    predicted = {a for a, u in stitched.items() if u is not None}
    correct = {a for a in predicted if truth[a] == stitched[a]}
    relevant = {a for a in stitched if truth.get(a)}
    precision, recall = len(correct) / len(predicted), len(correct) / len(relevant)
    assert precision >= 0.99 and recall >= 0.99, (precision, recall)
    assert any(a.startswith("ck_") and a.endswith("b") for a in correct), "a reset cookie linked via its device"


def _raw_pii(world) -> set[str]:
    values: set[str] = set()
    for path in sorted((world["root"] / "landing" / "crm").iterdir()):
        with open(path) as fh:
            for row in csv.DictReader(fh):
                values |= {row[k] for k in ("email", "phone", "first_name", "last_name") if row.get(k)}
    return values


def test_no_raw_pii_outside_restricted_zones(world, spark) -> None:
    lake = world["lake"]
    pii = spark.createDataFrame([(v,) for v in _raw_pii(world)], "value string")
    checked = 0
    for layer, name in [("silver", t) for t in SILVER.values()] + [
        ("ops", t) for t in ("ingest_audit", "ingest_files", "quality_results", "identity_map")
    ]:
        df = lake.read(lake.ref(layer, name))
        for field in df.schema.fields:
            if isinstance(field.dataType, T.StringType):
                column = df.select(F.col(f"`{field.name}`").alias("value"))
            elif isinstance(field.dataType, T.ArrayType):
                column = df.select(F.explode(f"`{field.name}`").alias("value"))
                if isinstance(element := field.dataType.elementType, T.StructType):  # each string of the structs
                    texts = [F.col(f"value.{f.name}") for f in element.fields if isinstance(f.dataType, T.StringType)]
                    column = column.select(F.explode(F.array(*texts)).alias("value"))
            else:
                continue
            leaks = column.join(pii, "value").count()
            assert leaks == 0, f"{layer}.{name}.{field.name} holds raw PII"
            checked += 1
    assert checked > 40
    crm = contract("crm_profiles")
    restricted = lake.read(lake.ref(RESTRICTED, "crm_profiles_pii"))
    assert {c.name for c in crm.pii_columns} <= set(restricted.columns)
    assert restricted.join(pii, restricted["email"] == pii["value"]).count() > 0  # the restricted table does hold it


def test_email_and_phone_hashes_are_salted_sha256_of_normalised_values(world) -> None:
    import hashlib

    salt = world["lake"].settings.pii_salt()
    restricted = {r["customer_id"]: r for r in _table(world, RESTRICTED, "crm_profiles_pii").collect()}
    for row in _table(world, "silver", "crm_profiles").limit(50).collect():
        raw = restricted[row["customer_id"]]
        digits = "".join(ch for ch in raw["phone"] if ch.isdigit()).removeprefix("00")
        digits = "86" + digits if len(digits) == 11 and digits.startswith("1") else digits
        assert row["email_hash"] == hashlib.sha256((salt + raw["email"].strip().lower()).encode()).hexdigest()
        assert row["phone_hash"] == hashlib.sha256((salt + digits).encode()).hexdigest()


def test_great_expectations_and_predicates_agree(world) -> None:
    results = _table(world, "ops", "quality_results").where(F.col("predicate_count").isNotNull()).collect()
    assert len(results) > 50
    for r in results:
        assert (r["unexpected_count"] or 0) == r["predicate_count"], (r["table"], r["expectation"])
    failing = {(r["table"], r["expectation"]) for r in results if not r["success"] and r["scope"] == "batch"}
    assert failing == {("orders", "price_not_negative"), ("crm_profiles", "birth_date_plausible")}
    table_scope = [r for r in _table(world, "ops", "quality_results").collect() if r["scope"] == "table"]
    assert table_scope and all(r["success"] for r in table_scope)


def test_rerun_changes_no_table(world) -> None:
    from audiencelake.stages.declaration import StageContext
    from audiencelake.stages.runner import run_pipeline

    lake = world["lake"]
    refs = (
        [lake.ref("silver", t) for t in SILVER.values()]
        + [lake.ref("bronze", s) for s in SILVER]
        + [lake.ref("ops", t) for t in ("ingest_audit", "ingest_files", "quarantine")]
    )
    before = {str(r): lake.version(r) for r in refs}
    ctx = world["ctx"]
    run_pipeline(StageContext(lake, ctx.run, {}), start="ingest", stop="ingest")
    assert {str(r): lake.version(r) for r in refs} == before


def test_quality_carries_over_unchanged_tables_and_validates_the_rest(world) -> None:
    from audiencelake.core.runs import Run
    from audiencelake.stages.declaration import StageContext
    from audiencelake.stages.runner import run_stage

    lake, first = world["lake"], world["ctx"].run
    again = run_stage("quality", StageContext(lake, Run.create(as_of=first.as_of, run_id="e2e-again"), {}))
    assert again["carried_over"] == again["tables"] == len(SILVER)
    later_day = Run.create(as_of=first.as_of + timedelta(days=1), run_id="e2e-later")
    later = run_stage("quality", StageContext(lake, later_day, {}))
    # the contracts bounding a date by {as_of} (clickstream_events, crm_profiles, orders) are validated again
    assert later["carried_over"] == later["tables"] - 3
    rows = _table(world, "ops", "quality_results").where(F.col("scope") == "table").collect()
    by_run = {run: {(r["table"], r["expectation"]): r for r in rows if r["run_id"] == run}
              for run in (first.run_id, "e2e-again", "e2e-later")}  # fmt: skip
    assert by_run["e2e-again"].keys() == by_run[first.run_id].keys() == by_run["e2e-later"].keys()
    for key, r in by_run[first.run_id].items():
        carried = by_run["e2e-again"][key]
        fields = ("success", "unexpected_count", "validated_at", "table_version")
        assert [carried[f] for f in fields] == [r[f] for f in fields], key
        validated_again = key[0] in ("clickstream_events", "crm_profiles", "orders")
        assert (by_run["e2e-later"][key]["validated_at"] > r["validated_at"]) == validated_again, key
