"""Uplift measurement against campaigns whose effect the generator planted, over several seeds.

For every campaign the planted truth lists the orders it caused. The true effect on the treated is computed here
from the raw files: a treated customer converts in the window with every order, and would have converted without
the campaign only through the orders it did not cause; the revenue effect is the value of the caused orders. The
reported 95% intervals must cover these effects (at about their nominal rate), and the campaign planted with no
effect must not be reported as significant.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import date, timedelta

import pytest

from audiencelake.audiences.measure import measure
from audiencelake.synth import WorldSpec, generate_world
from raw_world import read_orders, read_touches

pytestmark = pytest.mark.e2e
SEEDS = (1, 2, 3, 4, 5)
WINDOW = 7


def planted_effects(root, seed):
    """Per campaign: (groups, orders, window start, true conversion effect, true revenue effect, planted scale)."""
    generate_world(root, WorldSpec(users=1000, days=90, seed=seed))
    orders = [o for o in read_orders(root / "landing") if o["type"] == "purchase"]
    value: dict[str, float] = defaultdict(float)
    order_user, order_day = {}, {}
    for o in orders:
        value[o["order_id"]] += o["amount"]
        order_user[o["order_id"]], order_day[o["order_id"]] = o["user"], o["ts"].date()
    with open(root / "truth" / "caused_orders.csv", newline="") as fh:
        caused = {(r["campaign_id"], r["order_id"]) for r in csv.DictReader(fh)}
    with open(root / "truth" / "campaigns.csv", newline="") as fh:
        scale = {c["campaign_id"]: float(c["effect"]) for c in csv.DictReader(fh)}
    groups: dict[str, dict[str, str]] = defaultdict(dict)
    start: dict[str, date] = {}
    for t in read_touches(root / "landing"):
        groups[t["campaign_id"]][t["customer_id"]] = t["group"]
        start[t["campaign_id"]] = min(start.get(t["campaign_id"], t["ts"].date()), t["ts"].date())
    by_user = defaultdict(list)
    for order_id, user in order_user.items():
        by_user[user].append(order_id)
    out = {}
    for campaign, members in groups.items():
        first, last = start[campaign], start[campaign] + timedelta(days=WINDOW - 1)
        treated = [u for u, g in members.items() if g == "treatment"]
        conv = rev = 0.0
        for user in treated:
            window = [o for o in by_user[user] if first <= order_day[o] <= last]
            mine = [o for o in window if (campaign, o) in caused]
            conv += bool(window) - bool(set(window) - set(mine))
            rev += sum(value[o] for o in mine)
        out[campaign] = (members, first, conv / len(treated), rev / len(treated), scale[campaign])
    rows = [(o, order_user[o], order_day[o], value[o]) for o in value]
    return out, rows


def test_intervals_cover_the_planted_effects_and_a_zero_effect_is_not_significant(spark, tmp_path):
    covered_conv = covered_rev = campaigns = 0
    zero_p_values = []
    for seed in SEEDS:
        effects, order_rows = planted_effects(tmp_path / f"seed{seed}", seed)
        orders = spark.createDataFrame(order_rows, "order_id string, user_id string, order_date date, value double")
        orders = orders.cache()
        for campaign, (members, first, true_conv, true_rev, scale) in sorted(effects.items()):
            groups = spark.createDataFrame(sorted(members.items()), "user_id string, group string")
            got = measure(groups, orders, first, first + timedelta(days=WINDOW - 1))
            assert got["treatment_users"] == sum(g == "treatment" for g in members.values())
            if scale == 0:
                assert true_conv == 0 and true_rev == 0  # the planted truth itself
                zero_p_values.append(got["lift_p_value"])
                assert not got["significant"], (seed, campaign, got)
                continue
            campaigns += 1
            covered_conv += got["lift_ci_low"] <= true_conv <= got["lift_ci_high"]
            covered_rev += got["revenue_ci_low"] <= true_rev <= got["revenue_ci_high"]
        orders.unpersist()
    assert len(zero_p_values) == len(SEEDS)
    assert campaigns >= 20
    assert covered_conv / campaigns >= 0.85, (covered_conv, campaigns)
    # Welch's interval under-covers revenue per user when the holdout is small (about 20 people here) and revenue
    # is mostly zeros with a long tail: 20 of 25 on these seeds. The floor says it is still roughly right.
    assert covered_rev / campaigns >= 0.75, (covered_rev, campaigns)
