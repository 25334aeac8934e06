"""The profile job on the small generated world: values against an independent plain-Python reading of the raw
files, planted truth showing through, one scan per silver table, point-in-time correctness and idempotence."""

from __future__ import annotations

import csv
import json
import math
import random
import shutil
from datetime import date, timedelta

import numpy as np
import pytest
from pyspark.sql import functions as F
from scipy.stats import spearmanr

from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from audiencelake.tags.loader import load_catalogue
from audiencelake.tags.profile import build_profile
from plans import last_execution_id, scanned_locations
from raw_world import CATEGORIES, ExpectedTags, read_world

pytestmark = pytest.mark.e2e

AS_OF = date(2026, 10, 31)  # the generated world's last day
SILVER = ["crm_profiles", "orders", "clickstream_events", "campaign_touches", "social_interactions"]


@pytest.fixture(scope="module")
def profiled(world):
    lake: Lake = world["lake"]
    before = last_execution_id(lake.spark)
    result = build_profile(lake, Run.create(AS_OF, "profile-1"))
    scans = scanned_locations(lake.spark, before)
    profile = {r["user_id"]: r.asDict() for r in lake.read(lake.ref("gold", "user_profile")).collect()}
    return {"result": result, "scans": scans, "profile": profile, "lake": lake}


@pytest.fixture(scope="module")
def expected(world):
    raw = read_world(world["root"] / "landing", world["truth"])
    return ExpectedTags(raw, AS_OF)


def test_each_silver_table_is_scanned_once(profiled, world):
    root = world["lake"].settings.lake_root
    for table in SILVER:
        assert profiled["scans"][f"{root}/silver/{table}"] == 1, (table, dict(profiled["scans"]))


def test_more_tags_add_no_scan(world):
    lake: Lake = world["lake"]
    few = load_catalogue().select(["orders_90d", "sessions_30d", "gender", "email_sends_90d", "social_actions_90d"])
    assert len(few.tags) == 5
    before = last_execution_id(lake.spark)
    build_profile(lake, Run.create(AS_OF - timedelta(days=7), "profile-few"), few)
    scans = scanned_locations(lake.spark, before)
    root = lake.settings.lake_root
    assert {t: scans[f"{root}/silver/{t}"] for t in SILVER} == dict.fromkeys(SILVER, 1)


def test_one_row_per_user_with_every_tag_typed(profiled, expected):
    catalogue = load_catalogue()
    lake = profiled["lake"]
    df = lake.read(lake.ref("gold", "user_profile")).where(F.col("as_of") == AS_OF)
    types = dict(df.dtypes)
    for tag in catalogue.tags:
        want = {"long": "bigint", "array<string>": "array<string>"}.get(tag.type, tag.type)
        assert types[tag.name] == want, tag.name
    assert df.count() == df.select("user_id").distinct().count() == len(expected.users())
    assert profiled["result"].users == len(expected.users())


def test_a_person_with_two_crm_records_has_one_profile_row(profiled):
    lake = profiled["lake"]
    merged = lake.read(lake.ref("silver", "crm_profiles")).where("user_id <> customer_id").collect()
    assert merged  # the world plants duplicate CRM records and identity links them
    assert not [r["customer_id"] for r in merged if r["customer_id"] in profiled["profile"]]
    assert all(r["user_id"] in profiled["profile"] for r in merged if r["signup_date"] <= AS_OF)


def test_every_tag_matches_an_independent_computation_from_the_raw_files(profiled, expected):
    catalogue = load_catalogue()
    sample = random.Random(11).sample(sorted(expected.users()), 80)
    mismatches = []
    for user in sample:
        want, got = expected.tags(user), profiled["profile"][user]
        crm_only = {"gender", "city", "age", "age_band", "city_tier", "tenure_days", "has_email"}
        assert not {t.name for t in catalogue.tags} - set(want) - crm_only  # every tag is computed here too
        for tag in catalogue.tags:
            w, g = want.get(tag.name), got[tag.name]
            if tag.type in ("int", "long", "double") and w is not None and g is not None:
                ok = math.isclose(w, g, rel_tol=1e-6, abs_tol=0.051 if tag.name == "engagement_score" else 1e-6)
            else:
                ok = w == g
            if not ok:
                mismatches.append((user, tag.name, w, g))
    assert not mismatches, mismatches[:20]


def _among_buyers(expected: ExpectedTags, tag: str) -> list[float]:
    return [t[tag] for t in (expected.base_tags(u) for u in expected.users()) if t["orders_365d"] > 0]


def test_rfm_scores_use_recorded_quantile_cut_points(profiled, expected):
    lake = profiled["lake"]
    catalog = {
        r["name"]: r for r in lake.read(lake.ref("gold", "tag_catalog")).where(F.col("as_of") == AS_OF).collect()
    }
    for score, of, higher in (("rfm_recency_score", "recency_days", False),
                              ("rfm_frequency_score", "orders_365d", True),
                              ("rfm_monetary_score", "spend_365d", True)):  # fmt: skip
        cuts = json.loads(catalog[score]["details"])["cut_points"]
        values = _among_buyers(expected, of)
        # percentile_approx returns the smallest value with at least p of the values at or below it
        want_cuts = [float(np.quantile(values, p, method="inverted_cdf")) for p in (0.2, 0.4, 0.6, 0.8)]
        assert cuts == pytest.approx(want_cuts, abs=0.011), score
        for user, row in profiled["profile"].items():
            value = row[of]
            if row["orders_365d"] > 0:
                want = 1 + sum((value > c) if higher else (value < c) for c in cuts)
                assert row[score] == want, (user, score, value, cuts)
            else:
                assert row[score] is None


def _truth(world) -> dict[str, dict]:
    with open(world["truth"] / "users.csv", newline="") as fh:
        return {r["customer_id"]: r for r in csv.DictReader(fh)}


def test_top_category_recovers_the_planted_affinity(profiled, world, expected):
    """Active users (10+ product views in the last 30 days, counted from the raw files) whose planted favourite
    category is clearly ahead of their second (by 0.1 or more; closer ones are a coin toss for any estimator)."""
    truth = _truth(world)

    def clear(u: str) -> bool:
        first, second = sorted((float(truth[u][f"affinity_{c}"]) for c in CATEGORIES), reverse=True)[:2]
        return first - second >= 0.1

    active = [(u, r) for u, r in profiled["profile"].items()
              if u in truth and expected.base_tags(u)["product_views_30d"] >= 10 and clear(u)]  # fmt: skip
    assert len(active) >= 150
    hits = sum(r["top_category"] == max(CATEGORIES, key=lambda c: float(truth[u][f"affinity_{c}"])) for u, r in active)
    assert hits / len(active) >= 0.9, (hits, len(active))


def test_price_sensitivity_recovers_the_planted_discount_affinity(profiled, world):
    truth = _truth(world)
    buyers = [(float(truth[u]["discount_affinity"]), r) for u, r in profiled["profile"].items()
              if u in truth and r["orders_365d"] >= 3]  # fmt: skip
    assert len(buyers) >= 40
    affinity = [a for a, _ in buyers]
    rho_discount = spearmanr(affinity, [r["discount_order_share_365d"] for _, r in buyers]).statistic
    rho_drops = spearmanr(affinity, [r["price_drop_purchase_share_365d"] for _, r in buyers]).statistic
    assert rho_discount >= 0.6, rho_discount
    assert rho_drops >= 0.3, rho_drops
    high = [a for a, r in buyers if r["price_sensitivity"] == "high"]
    low = [a for a, r in buyers if r["price_sensitivity"] == "low"]
    assert high and low and np.mean(high) > np.mean(low) + 0.3


def test_long_form_and_catalog_agree_with_the_profile(profiled):
    lake = profiled["lake"]
    catalogue = load_catalogue()
    at = F.col("as_of") == AS_OF
    long = lake.read(lake.ref("gold", "user_tags")).where(at)
    profile = profiled["profile"]
    non_null = sum(1 for r in profile.values() for t in catalogue.tags if r[t.name] is not None)
    assert long.count() == non_null == profiled["result"].tag_values
    some = next(iter(profile))
    values = {r["tag"]: r["value"] for r in long.where(F.col("user_id") == some).collect()}
    assert values["top_categories_3"] == json.dumps(profile[some]["top_categories_3"], separators=(",", ":"))
    assert values["orders_90d"] == str(profile[some]["orders_90d"])
    catalog = {r["name"]: r for r in lake.read(lake.ref("gold", "tag_catalog")).where(at).collect()}
    assert set(catalog) == {t.name for t in catalogue.tags}
    for tag in catalogue.tags:
        row = catalog[tag.name]
        nulls = sum(1 for r in profile.values() if r[tag.name] is None) / len(profile)
        assert row["null_rate"] == pytest.approx(nulls), tag.name
        present = [r[tag.name] for r in profile.values() if r[tag.name] is not None]
        assert row["distinct_values"] == len({tuple(v) if isinstance(v, list) else v for v in present}), tag.name
        assert (row["kind"], row["owner"], row["value_type"]) == (tag.kind, tag.owner, tag.type)


def test_a_computed_profile_has_the_built_rows_and_one_date_is_computed_once(profiled, world, monkeypatch):
    """`compute_profile` (training's earlier dates) gives the rows `build_profile` wrote for the date; asked again
    while silver is unchanged (churn's reference date is propensity's first snapshot), it reads silver no more."""
    from audiencelake.tags import profile as module

    monkeypatch.setattr(module, "_COMPUTED", {})
    lake: Lake = profiled["lake"]

    def rows(df) -> list[str]:
        return sorted(json.dumps(r.asDict(), sort_keys=True, default=str) for r in df.collect())

    before = last_execution_id(lake.spark)
    first, second = rows(module.compute_profile(lake, AS_OF)), rows(module.compute_profile(lake, AS_OF))
    scans = scanned_locations(lake.spark, before)
    root = lake.settings.lake_root
    assert {t: scans[f"{root}/silver/{t}"] for t in SILVER} == dict.fromkeys(SILVER, 1)
    assert first == second == rows(lake.read(lake.ref("gold", "user_profile")).where(F.col("as_of") == AS_OF))


def test_rerun_keeps_or_replaces_the_partition_with_the_same_rows(profiled):
    lake = profiled["lake"]
    tables = ["user_profile", "user_tags", "tag_catalog"]
    at = F.col("as_of") == AS_OF

    def snapshot():
        return {t: sorted(map(str, lake.read(lake.ref("gold", t)).where(at).collect())) for t in tables}

    first = snapshot()
    others = lake.read(lake.ref("gold", "user_profile")).where(~at).count()
    # built again when another date's profile wrote the gold tables since (in this module's order, the 5-tag one
    # did), else kept; either way the same counts
    assert build_profile(lake, Run.create(AS_OF, "profile-2")) == profiled["result"]
    assert snapshot() == first
    versions = {t: lake.version(lake.ref("gold", t)) for t in tables}
    # nothing changed since: the profile is kept (no commit), with the counts of the run that built it
    assert build_profile(lake, Run.create(AS_OF, "profile-2b")) == profiled["result"]
    assert {t: lake.version(lake.ref("gold", t)) for t in tables} == versions
    # without the record of what it read, it is built again and replaces the partition with the same rows
    inputs = lake.ref("ops", "stage_inputs")
    lake.delta(inputs).delete(f"stage = 'profile' AND key = '{AS_OF}'")
    assert build_profile(lake, Run.create(AS_OF, "profile-3")) == profiled["result"]
    assert {t: lake.version(lake.ref("gold", t)) for t in tables} != versions
    assert snapshot() == first
    assert lake.read(lake.ref("gold", "user_profile")).where(~at).count() == others


def test_events_after_the_as_of_date_change_nothing(world, tmp_path):
    """A lake holding only the events up to D, and the world's lake, which also holds later ones, give the same
    profile as of D."""
    from conftest import lake_settings

    lake: Lake = world["lake"]
    as_of = date(2026, 10, 20)
    cut = F.lit("2026-10-21").cast("timestamp")
    early = Lake(lake.spark, lake_settings(tmp_path))
    times = {"orders": "order_ts", "clickstream_events": "event_ts", "campaign_touches": "touch_ts",
             "social_interactions": "interaction_ts"}  # fmt: skip
    later = 0
    for table in SILVER:
        df = lake.read(lake.ref("silver", table))
        if table in times:
            later += df.where(F.col(times[table]) >= cut).count()
            df = df.where(F.col(times[table]) < cut)
        early.overwrite(df, early.ref("silver", table))
    assert later > 1000  # the world's lake really has events after D

    def profile_of(target: Lake) -> list:
        build_profile(target, Run.create(as_of, "pit"))
        rows = target.read(target.ref("gold", "user_profile")).where(F.col("as_of") == as_of).collect()
        return sorted(map(str, rows))

    assert profile_of(lake) == profile_of(early)


def test_a_tag_whose_definition_cannot_give_its_type_names_the_tag(world, tmp_path):
    import yaml

    from audiencelake.core.errors import ConfigError
    from audiencelake.core.resources import resource_dir

    data = yaml.safe_load((resource_dir("conf") / "tags.yaml").read_text())
    next(t for t in data["tags"] if t["name"] == "preferred_device")["type"] = "long"
    path = tmp_path / "tags.yaml"
    path.write_text(yaml.safe_dump(data))
    shutil.copy(resource_dir("conf") / "channels.yaml", tmp_path)  # the channel rules it names, beside it
    catalogue = load_catalogue(path).select(["preferred_device"])
    with pytest.raises(ConfigError) as err:
        build_profile(world["lake"], Run.create(AS_OF, "typed"), catalogue)
    assert (err.value.file, err.value.key) == (str(path), "tags.preferred_device.type")
    assert "declared long, but the definition gives string" in err.value.reason


def test_rules_based_attribution_equals_an_independent_reading_of_the_raw_files(world, expected):
    """Journeys and the last-touch and linear credits, worked out from the raw files, the planted channel of each
    visit and conf/channels.yaml's journey settings (orders of the 90 days up to the run date, touchpoints of the 30
    days before each): the same per channel, and each model's credits sum to the conversions with a touchpoint."""
    from collections import defaultdict

    from audiencelake.stages.declaration import StageContext
    from audiencelake.stages.runner import run_stage

    lake: Lake = world["lake"]
    counts = run_stage("attribution", StageContext(lake, Run.create(AS_OF, "attribution-1")))
    version = lake.version(lake.ref("gold", "attribution"))
    again = run_stage("attribution", StageContext(lake, Run.create(AS_OF, "attribution-2")))
    assert again == {**counts, "kept": 1} and lake.version(lake.ref("gold", "attribution")) == version  # no work
    got: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in lake.read(lake.ref("gold", "attribution")).where(F.col("as_of") == AS_OF).collect():
        got[(r["model"], r["channel"])][0] += r["conversions"]
        got[(r["model"], r["channel"])][1] += r["revenue"]

    channel_of_touch = {"email": "email", "sms": "sms_push", "push": "sms_push", "ads": "display"}
    types = {"send", "open", "click", "impression", "ad_click"}
    want: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    conversions = attributed = 0
    for user, lines in expected.orders.items():
        orders: dict[str, list] = {}
        for line in lines:
            if line["type"] == "purchase":
                ts, amount = orders.get(line["order_id"], (line["ts"], 0.0))
                orders[line["order_id"]] = (min(ts, line["ts"]), amount + line["amount"])
        for at, revenue in orders.values():
            if not AS_OF - timedelta(days=89) <= at.date() <= AS_OF:
                continue
            conversions += 1
            since = at - timedelta(days=30)
            points = [(e["ts"], expected.visit_channel.get(e["event_id"], "direct"), e.get("utm_campaign") or "")
                      for e in expected.session_starts.get(user, []) if since <= e["ts"] < at]  # fmt: skip
            points += [(t["ts"], channel_of_touch[t["channel"]], t["campaign_id"]) for t in expected.touches.get(user, [])
                       if t["group"] == "treatment" and t["touch_type"] in types and since <= t["ts"] < at]  # fmt: skip
            if not points:
                continue
            attributed += 1
            points.sort()
            for model, credit in (
                ("last_touch", {len(points) - 1: 1.0}),
                ("linear", dict.fromkeys(range(len(points)), 1 / len(points))),
            ):
                for i, c in credit.items():
                    want[(model, points[i][1])][0] += c
                    want[(model, points[i][1])][1] += c * revenue
    assert (counts["conversions"], counts["attributed"]) == (conversions, attributed)
    for key, (n, revenue) in want.items():
        assert math.isclose(got[key][0], n, abs_tol=1e-6), (key, got[key], n)
        assert math.isclose(got[key][1], revenue, rel_tol=1e-9, abs_tol=1e-4), (key, got[key], revenue)
    assert {k for k in got if k[0] in ("last_touch", "linear")} == set(want)
    for model in {k[0] for k in got}:  # every model credits exactly the journeys with a touchpoint
        assert math.isclose(sum(v[0] for k, v in got.items() if k[0] == model), attributed, abs_tol=1e-6)
