"""The uplift statistics from per-group sums, against the textbook formulas computed here on the raw values, and
their coverage over many simulated experiments with a known effect."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from audiencelake.audiences.uplift import GroupSums, uplift


def sums(converted: np.ndarray, revenue: np.ndarray) -> GroupSums:
    return GroupSums(len(converted), int(converted.sum()), float(revenue.sum()), float((revenue**2).sum()))


def wilson(k: int, n: int, z: float) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """Newcombe's hybrid score interval (method 10 of Newcombe 1998) for p1 - p2."""
    z = stats.norm.ppf(0.975)
    (l1, u1), (l2, u2) = wilson(k1, n1, z), wilson(k2, n2, z)
    p1, p2 = k1 / n1, k2 / n2
    d = p1 - p2
    return (d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def test_figures_match_the_formulas_on_the_raw_values():
    rng = np.random.default_rng(4)
    t_conv, h_conv = rng.random(5000) < 0.12, rng.random(600) < 0.09
    t_rev = np.where(t_conv, rng.gamma(2.0, 40.0, 5000), 0.0)
    h_rev = np.where(h_conv, rng.gamma(2.0, 40.0, 600), 0.0)
    out = uplift(sums(t_conv, t_rev), sums(h_conv, h_rev), cost_per_contact=0.5)
    p1, p2 = t_conv.mean(), h_conv.mean()
    assert out["lift"] == pytest.approx(p1 - p2)
    assert out["relative_lift"] == pytest.approx((p1 - p2) / p2)
    low, high = newcombe(int(t_conv.sum()), 5000, int(h_conv.sum()), 600)
    assert (out["lift_ci_low"], out["lift_ci_high"]) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9))
    pooled = (t_conv.sum() + h_conv.sum()) / 5600
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / 5000 + 1 / 600))
    assert out["lift_p_value"] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=0.02)
    welch = stats.ttest_ind(t_rev, h_rev, equal_var=False)
    ci = welch.confidence_interval(0.95)
    assert out["revenue_lift"] == pytest.approx(t_rev.mean() - h_rev.mean())
    assert (out["revenue_ci_low"], out["revenue_ci_high"]) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert out["revenue_p_value"] == pytest.approx(welch.pvalue)
    assert out["incremental_conversions"] == pytest.approx((p1 - p2) * 5000)
    assert out["incremental_revenue"] == pytest.approx((t_rev.mean() - h_rev.mean()) * 5000)
    assert out["significant"] == (low > 0 or high < 0)
    assert out["cost"] == pytest.approx(2500.0)
    assert out["roi"] == pytest.approx((out["incremental_revenue"] - 2500.0) / 2500.0)


def test_intervals_cover_a_known_effect_and_a_null_effect_is_rarely_significant():
    rng = np.random.default_rng(9)
    covered = significant_null = 0
    trials = 400
    for _ in range(trials):
        t, h = rng.random(2000) < 0.15, rng.random(300) < 0.10  # true lift 0.05
        out = uplift(sums(t, t * 1.0), sums(h, h * 1.0))
        covered += out["lift_ci_low"] <= 0.05 <= out["lift_ci_high"]
        a, b = rng.random(2000) < 0.10, rng.random(300) < 0.10
        significant_null += uplift(sums(a, a * 1.0), sums(b, b * 1.0))["significant"]
    assert 0.92 <= covered / trials <= 0.98
    assert significant_null / trials <= 0.08


def test_degenerate_groups_give_no_figures_instead_of_errors():
    empty = GroupSums(0, 0, 0.0, 0.0)
    out = uplift(GroupSums(10, 2, 20.0, 200.0), empty)
    assert out["lift"] is None and out["revenue_lift"] is None and out["significant"] is False
    nobody = uplift(GroupSums(50, 0, 0.0, 0.0), GroupSums(20, 0, 0.0, 0.0), cost_per_contact=1.0)
    assert nobody["lift"] == 0 and nobody["lift_p_value"] == 1.0 and nobody["roi"] == -1.0
