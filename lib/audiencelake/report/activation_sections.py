"""The report's sections on activation: audience runs and uplift against the holdouts."""

from __future__ import annotations

import json

from pyspark.sql import functions as F

from audiencelake.core import charts
from audiencelake.report.blocks import (
    Context,
    chart,
    lacking,
    missing,
    read_table,
    table,
)


def _audience_run(ctx: Context):
    runs = read_table(ctx, "ops", "audience_runs")
    if runs is None:
        return None, []
    run_id = ctx.run_id or runs.agg(F.max("run_id")).first()[0]
    return run_id, runs.where(F.col("run_id") == run_id).orderBy("audience").collect()


def audiences(ctx: Context) -> str:
    run_id, runs = _audience_run(ctx)
    if not runs:
        return lacking(ctx, "audiences", ("silver.crm_profiles",), "ops.audience_runs (run the audiences stage)")
    steps = [step for step, _ in json.loads(runs[0]["funnel"])]
    series = {r["audience"]: [n for _, n in json.loads(r["funnel"])] for r in runs}
    out = chart(
        charts.line(
            f"Audience funnels of run {run_id}",
            "step",
            "users",
            {a: (list(range(len(v))), v) for a, v in series.items()},
        ),
        "Steps: " + ", ".join(f"{i} {s}" for i, s in enumerate(steps)),
    )
    members = read_table(ctx, "gold", "audience_members").where(F.col("run_id") == run_id).select("audience", "user_id")
    pairs = members.alias("a").join(members.alias("b"), "user_id").groupBy("a.audience", "b.audience").count().collect()
    names = [r["audience"] for r in runs]
    counts = {(r[0], r[1]): r[2] for r in pairs}
    cells = [[counts.get((a, b), 0) for b in names] for a in names]
    out += chart(
        charts.heatmap("Audience overlaps (members in both)", "audience", "audience", names, names, cells),
        "The diagonal is each audience's size, treatment and holdout together.",
    )
    return out + table(
        ["audience", "channel", "treatment", "holdout", "rule"],
        [[r["audience"], r["channel"], r["treatment"], r["holdout"], r["rule"]] for r in runs],
    )


def uplift(ctx: Context) -> str:
    results = read_table(ctx, "gold", "campaign_results")
    if results is None:
        return lacking(
            ctx, "campaign measurement", ("silver.orders",),
            "gold.campaign_results (run the measure stage)",
        )  # fmt: skip
    rows = [r for r in results.orderBy("kind", "name", "run_id").collect() if r["lift"] is not None]
    if not rows:
        return missing("a measured campaign or audience")
    labels = [f"{r['kind']} {r['name']}" + (f" ({r['run_id']})" if r["run_id"] else "") for r in rows]
    out = chart(
        charts.intervals(
            "Conversion lift over the holdout, with 95% intervals",
            "treatment rate - holdout rate",
            labels,
            [r["lift"] for r in rows],
            [r["lift_ci_low"] for r in rows],
            [r["lift_ci_high"] for r in rows],
        ),
        "Newcombe intervals; an interval that excludes zero is significant.",
    )
    return out + table(
        [
            "measured",
            "users T/H",
            "conv. T",
            "conv. H",
            "lift",
            "95% CI",
            "p",
            "revenue/user lift",
            "incr. revenue",
            "significant",
        ],
        [
            [
                label,
                f"{r['treatment_users']}/{r['holdout_users']}",
                r["treatment_rate"],
                r["holdout_rate"],
                r["lift"],
                f"[{r['lift_ci_low']:.4f}, {r['lift_ci_high']:.4f}]",
                r["lift_p_value"],
                r["revenue_lift"],
                r["incremental_revenue"],
                r["significant"],
            ]
            for label, r in zip(labels, rows, strict=True)
        ],
    )
