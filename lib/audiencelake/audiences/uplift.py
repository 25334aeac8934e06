"""Uplift statistics of a treatment group against its holdout from per-group sums (bounded, whatever the number
of users): conversion lift with Newcombe's 95% interval and the two-proportion score test (statsmodels), revenue
per user lift with Welch's interval and t-test (scipy)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

ALPHA = 0.05


@dataclass(frozen=True)
class GroupSums:
    users: int
    conversions: int
    revenue: float  # sum over users of their revenue in the window
    revenue_squares: float  # sum over users of the square of their revenue

    @property
    def rate(self) -> float | None:
        return self.conversions / self.users if self.users else None

    @property
    def mean(self) -> float | None:
        return self.revenue / self.users if self.users else None

    @property
    def variance(self) -> float | None:
        if self.users < 2:
            return None
        return max(0.0, (self.revenue_squares - self.users * self.mean**2) / (self.users - 1))


def conversion_lift(t: GroupSums, h: GroupSums) -> dict[str, float | None]:
    """Absolute and relative lift of the conversion rate, its 95% interval and the two-sided p-value."""
    if not t.users or not h.users:
        return {"lift": None, "relative_lift": None, "lift_ci_low": None, "lift_ci_high": None, "lift_p_value": None}
    lift = t.rate - h.rate
    with np.errstate(divide="ignore", invalid="ignore"):  # statsmodels also computes ratios, unused here
        low, high = confint_proportions_2indep(
            t.conversions, t.users, h.conversions, h.users, method="newcomb", compare="diff", alpha=ALPHA
        )
        if t.conversions + h.conversions in (0, t.users + h.users):
            p_value = 1.0  # no variation at all: no evidence of a difference
        else:
            args = (t.conversions, t.users, h.conversions, h.users)
            p_value = float(test_proportions_2indep(*args, method="score", compare="diff").pvalue)
    return {
        "lift": lift,
        "relative_lift": lift / h.rate if h.rate else None,
        "lift_ci_low": float(low),
        "lift_ci_high": float(high),
        "lift_p_value": p_value,
    }


def revenue_lift(t: GroupSums, h: GroupSums) -> dict[str, float | None]:
    """Difference of revenue per user, Welch's 95% interval and two-sided p-value."""
    out = {"revenue_lift": None, "revenue_ci_low": None, "revenue_ci_high": None, "revenue_p_value": None}
    if not t.users or not h.users:
        return out
    out["revenue_lift"] = diff = t.mean - h.mean
    if t.variance is None or h.variance is None:
        return out
    se2 = t.variance / t.users + h.variance / h.users
    if se2 == 0:
        return out | {"revenue_ci_low": diff, "revenue_ci_high": diff, "revenue_p_value": 1.0 if diff == 0 else 0.0}
    result = stats.ttest_ind_from_stats(
        t.mean, math.sqrt(t.variance), t.users, h.mean, math.sqrt(h.variance), h.users, equal_var=False
    )
    dof = se2**2 / ((t.variance / t.users) ** 2 / (t.users - 1) + (h.variance / h.users) ** 2 / (h.users - 1))
    half = float(stats.t.ppf(1 - ALPHA / 2, dof)) * math.sqrt(se2)
    return out | {
        "revenue_ci_low": diff - half,
        "revenue_ci_high": diff + half,
        "revenue_p_value": float(result.pvalue),
    }


def uplift(t: GroupSums, h: GroupSums, cost_per_contact: float | None = None) -> dict[str, float | int | None]:
    """Every figure of a gold.campaign_results row but its identity and window."""
    conv, rev = conversion_lift(t, h), revenue_lift(t, h)
    cost = cost_per_contact * t.users if cost_per_contact is not None else None
    incremental_revenue = rev["revenue_lift"] * t.users if rev["revenue_lift"] is not None else None
    roi = (incremental_revenue - cost) / cost if cost and incremental_revenue is not None else None
    return {
        "treatment_users": t.users,
        "holdout_users": h.users,
        "treatment_conversions": t.conversions,
        "holdout_conversions": h.conversions,
        "treatment_rate": t.rate,
        "holdout_rate": h.rate,
        **conv,
        "treatment_revenue_per_user": t.mean,
        "holdout_revenue_per_user": h.mean,
        **rev,
        "incremental_conversions": conv["lift"] * t.users if conv["lift"] is not None else None,
        "incremental_revenue": incremental_revenue,
        "cost": cost,
        "roi": roi,
        # the decision follows the reported interval (the score test's p-value can sit on the other side of 0.05
        # when the interval's bound is within a hair of zero)
        "significant": conv["lift_ci_low"] is not None and (conv["lift_ci_low"] > 0 or conv["lift_ci_high"] < 0),
    }
