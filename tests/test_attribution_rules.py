"""Rules-based attribution on journeys written out by hand: each model's credits per channel equal the values worked
out here from the models' definitions, and every model's credits sum to the conversions with a touchpoint and their
revenue (a journey without touchpoints is not attributed)."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import pytest

from audiencelake.attribution.rules import MODELS, attribute
from audiencelake.core.contracts import contract
from audiencelake.tags.channels import AttributionModels

AT = datetime(2026, 10, 10, 12, 0)
JOURNEYS = [  # order, revenue, touchpoints (age in days before the conversion, channel, campaign, kind)
    ("o1", 100.0, [(10, "organic_search", "", "visit"), (3, "email", "CMP1", "open"), (1 / 24, "direct", "", "visit")]),
    ("o2", 50.0, [(2, "paid_search", "brand", "visit")]),
    ("o3", 30.0, [(5, "direct", "", "visit"), (1, "direct", "", "visit")]),  # all direct: the last one keeps it
    ("o4", 20.0, []),  # nothing before it: not attributed
]


def _decay(ages: list[float]) -> list[float]:
    w = [0.5 ** (a / 7) for a in ages]
    return [x / sum(w) for x in w]


J1 = _decay([10, 3, 1 / 24])
EXPECTED = {  # model -> channel -> (conversions, revenue)
    "first_touch": {"organic_search": (1, 100), "paid_search": (1, 50), "direct": (1, 30)},
    "last_touch": {"direct": (2, 130), "paid_search": (1, 50)},
    "last_non_direct": {"email": (1, 100), "paid_search": (1, 50), "direct": (1, 30)},
    "linear": {"organic_search": (1 / 3, 100 / 3), "email": (1 / 3, 100 / 3), "direct": (4 / 3, 100 / 3 + 30),
               "paid_search": (1, 50)},
    "time_decay": {"organic_search": (J1[0], 100 * J1[0]), "email": (J1[1], 100 * J1[1]),
                   "direct": (J1[2] + 1, 100 * J1[2] + 30), "paid_search": (1, 50)},
    "position_based": {"organic_search": (0.4, 40), "email": (0.2, 20), "direct": (1.4, 70), "paid_search": (1, 50)},
}  # fmt: skip


@pytest.fixture(scope="module")
def attributed(spark):
    rows = [
        ("u", order, AT, revenue, [(AT - timedelta(days=age), ch, camp, kind) for age, ch, camp, kind in points],
         date(2026, 10, 31))
        for order, revenue, points in JOURNEYS
    ]  # fmt: skip
    journeys = spark.createDataFrame(rows, contract("journeys").table_schema())
    return [r.asDict() for r in attribute(journeys, AttributionModels(), date(2026, 10, 31)).collect()]


@pytest.mark.parametrize("model", MODELS)
def test_each_model_credits_the_touchpoints_as_defined(attributed, model):
    got: dict[str, list[float]] = {}
    for r in attributed:
        if r["model"] == model:
            assert r["period"] == "2026-10"
            total = got.setdefault(r["channel"], [0.0, 0.0])
            total[0] += r["conversions"]
            total[1] += r["revenue"]
    assert set(got) == set(EXPECTED[model])
    for channel, (conversions, revenue) in EXPECTED[model].items():
        assert math.isclose(got[channel][0], conversions, rel_tol=1e-9), (channel, got[channel])
        assert math.isclose(got[channel][1], revenue, rel_tol=1e-9), (channel, got[channel])
    # the credits sum to the three conversions with a touchpoint and their revenue
    assert math.isclose(sum(v[0] for v in got.values()), 3) and math.isclose(sum(v[1] for v in got.values()), 180)


def test_campaigns_are_kept_apart(attributed):
    email = [r for r in attributed if r["model"] == "linear" and r["channel"] == "email"]
    assert [r["campaign"] for r in email] == ["CMP1"]
