"""Quantile scores evaluated together: each score's cut points equal a percentile over its own population alone,
whatever other scores share the aggregation; a score of a score waits for it; an empty population scores null."""

from __future__ import annotations

import copy
import shutil
from datetime import date

import yaml
from pyspark.sql import functions as F

from audiencelake.core.resources import resource_dir
from audiencelake.tags.evaluate import Evaluator
from audiencelake.tags.loader import load_catalogue

SCORES = [  # three populations, one of them empty, and a score of a score
    {"name": "buyer_orders_q", "score": {"of": "orders_365d", "bins": 4, "among": "orders_365d > 0"}},
    {"name": "visitor_sessions_q", "score": {"of": "sessions_90d", "bins": 3, "among": "sessions_90d >= 2"}},
    {"name": "nobody_q", "score": {"of": "orders_365d", "bins": 5, "among": "orders_365d > 1000000"}},
    {"name": "orders_q_half", "score": {"of": "buyer_orders_q", "bins": 2, "higher_is_better": False}},
]


def _catalogue(tmp_path):
    data = yaml.safe_load((resource_dir("conf") / "tags.yaml").read_text())
    for tag in SCORES:
        data["tags"].append({**copy.deepcopy(tag), "kind": "rfm", "type": "int", "description": "test score"})
    path = tmp_path / "tags.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    shutil.copy(resource_dir("conf") / "channels.yaml", tmp_path)  # the channel rules it names, beside it
    return load_catalogue(path).select([t["name"] for t in SCORES])


def _alone(frame, of: str, among: str | None, bins: int) -> list[float]:
    """The cut points as one `percentile_approx` over the population filtered first (the definition)."""
    population = frame.where(F.col(of).isNotNull())
    population = population.where(among) if among else population
    cuts = population.agg(F.percentile_approx(F.col(of).cast("double"), [i / bins for i in range(1, bins)])).first()[0]
    return [float(c) for c in cuts or []]


def _binned(value, cuts: list[float], higher_is_better: bool) -> int:
    return 1 + sum(1 for c in cuts if (value > c if higher_is_better else value < c))


def test_scores_of_one_wave_keep_their_own_populations(spark, tmp_path):
    catalogue = _catalogue(tmp_path)
    rows = [(f"u{i}", i % 7 if i % 3 else None, (i * 5) % 11 if i % 4 else None) for i in range(60)]
    aggregates = spark.createDataFrame(rows, "user_id string, orders_365d long, sessions_90d long")
    evaluated = Evaluator(catalogue, date(2026, 10, 31)).evaluate(aggregates)
    result = {r["user_id"]: r for r in evaluated.frame.collect()}
    orders = {u: (o or 0) for u, o, _ in rows}  # aggregate tags: absent counts are 0
    sessions = {u: (s or 0) for u, _, s in rows}
    filled = spark.createDataFrame([(u, orders[u], sessions[u]) for u, _, _ in rows], "user_id string, o long, s long")

    buyers = _alone(filled, "o", "o > 0", 4)
    visitors = _alone(filled, "s", "s >= 2", 3)
    assert evaluated.details["buyer_orders_q"]["cut_points"] == buyers and len(buyers) == 3
    assert evaluated.details["visitor_sessions_q"]["cut_points"] == visitors and len(visitors) == 2
    assert evaluated.details["nobody_q"]["cut_points"] == []
    for user, row in result.items():
        assert row["buyer_orders_q"] == (_binned(orders[user], buyers, True) if orders[user] > 0 else None), user
        assert row["visitor_sessions_q"] == (_binned(sessions[user], visitors, True) if sessions[user] >= 2 else None)
        assert row["nobody_q"] is None

    scored = spark.createDataFrame([(u, r["buyer_orders_q"]) for u, r in result.items()], "user_id string, q int")
    halves = _alone(scored, "q", None, 2)
    assert evaluated.details["orders_q_half"] == {"cut_points": halves, "higher_is_better": False}
    for row in result.values():
        expected = None if row["buyer_orders_q"] is None else _binned(row["buyer_orders_q"], halves, False)
        assert row["orders_q_half"] == expected
