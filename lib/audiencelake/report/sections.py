"""The report's sections: each reads the lake (or the MLflow champion run) and returns HTML with its charts.

A section whose tables do not exist yet says so instead of failing, so the report works after any stage.
"""

from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path

from pyspark.sql import functions as F

from audiencelake.core import charts
from audiencelake.core.lake import Lake
from audiencelake.report.summary import AUDIT_COLUMNS, RULE_HEADER, failed_rules


@dataclass(frozen=True)
class Context:
    lake: Lake
    run_id: str | None  # the audience run shown; None: the latest


def table(header: list[str], rows: list[list]) -> str:
    def cell(v) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return escape("-" if v is None else str(v))

    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def chart(fig, caption: str) -> str:
    return f'<figure class="chart">{charts.svg(fig)}<figcaption>{escape(caption)}</figcaption></figure>'


def image(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode()
    return (
        f'<figure class="chart"><img alt="{escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def missing(what: str) -> str:
    return f'<p class="missing">Not available yet: {escape(what)}.</p>'


# What kind of export fills each silver table: the report names it when a section lacks the table
PROVIDED_BY = {
    "orders": "an order log (a source with table: orders)",
    "crm_profiles": "a CRM customer export with consent (table: crm_profiles)",
    "clickstream_events": "web or app analytics events (table: clickstream_events)",
    "campaign_touches": "campaign send, open and click logs (table: campaign_touches)",
    "social_interactions": "social media interactions (table: social_interactions)",
}


def lacking(ctx: Context, what: str, needs: tuple[str, ...], otherwise: str) -> str:
    """A sentence saying the lake cannot give `what` because it has none of the silver tables of one of `needs`
    ("silver.a|silver.b": either), and which source would provide it; `missing(otherwise)` when it has them (a
    stage has not run yet)."""
    for need in needs:
        tables = [t.removeprefix("silver.") for t in need.split("|")]
        if not any(ctx.lake.exists(ctx.lake.ref("silver", t)) for t in tables):
            names = " or ".join(f"silver.{t}" for t in tables)
            sources = " or ".join(PROVIDED_BY.get(t, t) for t in tables)
            sentence = f"No {what}: this lake has no {names}; {sources} would provide it."
            return f'<p class="missing">{escape(sentence)}</p>'
    return missing(otherwise)


def _read(ctx: Context, layer: str, name: str):
    ref = ctx.lake.ref(layer, name)
    return ctx.lake.read(ref) if ctx.lake.exists(ref) else None


def _latest(df, column: str = "as_of"):
    last = df.agg(F.max(column)).first()[0]
    return df.where(F.col(column) == last), last


def _latest_of(ctx: Context, layer: str, name: str):
    """(rows of the table's latest as-of date, that date), or (None, None) when the table does not exist."""
    df = _read(ctx, layer, name)
    return (None, None) if df is None else _latest(df)


def sources(ctx: Context) -> str:
    audit = _read(ctx, "ops", "ingest_audit")
    if audit is None:
        return missing("ops.ingest_audit (run the ingest stage)")
    absent = [t for t in PROVIDED_BY if not ctx.lake.exists(ctx.lake.ref("silver", t))]
    have = [t for t in PROVIDED_BY if t not in absent]
    intro = f"<p>This lake has {escape(', '.join(f'silver.{t}' for t in have) or 'no silver table')}."
    if absent:
        intro += (f" It lacks {escape(', '.join(f'silver.{t}' for t in absent))}: "
                  f"{escape('; '.join(PROVIDED_BY[t] for t in absent))} would fill "
                  f"{'it' if len(absent) == 1 else 'them'}, and the tags, models and audiences that need "
                  f"{'it' if len(absent) == 1 else 'them'} (below).")  # fmt: skip
    intro += "</p>"
    sums = audit.groupBy("source").agg(*[F.sum(c).alias(c) for c in AUDIT_COLUMNS]).orderBy("source").collect()
    labels = [r["source"] for r in sums]
    series = {c.removeprefix("rows_").replace("_", " "): [r[c] for r in sums] for c in AUDIT_COLUMNS[1:]}
    out = intro + chart(
        charts.bars("Records read per source, by outcome", "source", "records", labels, series, stacked=True),
        "Every record read is accounted for: rejected, duplicate, superseded or in silver.",
    )
    out += table(
        ["source", *[c.removeprefix("rows_") for c in AUDIT_COLUMNS]],
        [[r["source"], *[r[c] for c in AUDIT_COLUMNS]] for r in sums],
    )
    quarantine = _read(ctx, "ops", "quarantine")
    if quarantine is not None:
        reasons = quarantine.groupBy("source", "reason", "rule").count().orderBy(F.desc("count")).collect()
        if reasons:
            labels = [f"{r['source']}: {r['reason']} ({r['rule'] or '-'})" for r in reasons]
            out += chart(
                charts.hbars("Quarantined records by reason", "records", labels, [r["count"] for r in reasons]),
                "ops.quarantine keeps each rejected record with its reason, rule and file.",
            )
            rules = failed_rules(quarantine)
            out += "<p>Every rule the quarantined records fail (a record failing several counts for each):</p>"
            out += table(list(RULE_HEADER), [list(r) for r in rules])
    return out


def quality(ctx: Context) -> str:
    results = _read(ctx, "ops", "quality_results")
    if results is None:
        return missing("ops.quality_results (run the quality stage)")
    whole = results.where(F.col("scope") == "table")
    newest = whole.groupBy("table").agg(F.max("validated_at").alias("validated_at"))  # each table's latest
    rows = whole.join(newest, ["table", "validated_at"]).orderBy("table", "expectation").collect()
    if not rows:
        return missing("a whole-table validation (run the quality stage)")
    passed = sum(r["success"] for r in rows)
    out = f"<p>{passed} of {len(rows)} expectations pass on the whole silver tables (Great Expectations).</p>"
    by_table: dict[str, list[int]] = {}
    for r in rows:
        by_table.setdefault(r["table"], [0, 0])[0 if r["success"] else 1] += 1
    names = sorted(by_table)
    series = {"pass": [by_table[t][0] for t in names], "fail": [by_table[t][1] for t in names]}
    out += chart(
        charts.bars("Expectations per silver table", "table", "expectations", names, series, stacked=True),
        "The latest table-scope validation of each silver table.",
    )
    out += table(
        ["table", "expectation", "severity", "success", "rows", "unexpected (GE)", "failing (predicate)"],
        [
            [
                r["table"],
                r["expectation"],
                r["severity"],
                r["success"],
                r["element_count"],
                r["unexpected_count"],
                r["predicate_count"],
            ]
            for r in rows
        ],
    )
    return out


def tags(ctx: Context) -> str:
    latest, as_of = _latest_of(ctx, "gold", "tag_catalog")
    if latest is None:
        return missing("gold.tag_catalog (run the profile stage)")
    everything = latest.orderBy("kind", "name").collect()
    lacking = [r for r in everything if r.asDict().get("unavailable")]
    rows = [r for r in everything if not r.asDict().get("unavailable")]
    labels = [f"{r['name']} ({r['kind']})" for r in rows]
    filled = [1 - r["null_rate"] for r in rows]
    out = chart(
        charts.hbars(f"Tag coverage as of {as_of}", "share of users with a value", labels, filled),
        f"{len(rows)} tags of conf/tags.yaml over {everything[0]['users'] if everything else 0} users.",
    )
    if lacking:
        out += (
            f"<p>{len(lacking)} tags could not be computed: the sources they read have no table in this lake. "
            "Landing those sources' files makes them available at the next run.</p>"
        )
        out += table(["tag", "kind", "why"], [[r["name"], r["kind"], r["unavailable"]] for r in lacking])
    return out


def rfm(ctx: Context) -> str:
    latest, as_of = _latest_of(ctx, "gold", "user_profile")
    orders = ctx.lake.exists(ctx.lake.ref("silver", "orders"))  # without them the RFM tags are unavailable (null)
    if latest is None or "rfm_recency_score" not in latest.columns or not orders:
        return lacking(ctx, "RFM scores", ("silver.orders",), "gold.user_profile with the RFM tags")
    scored = latest.where(F.col("rfm_recency_score").isNotNull() & F.col("rfm_frequency_score").isNotNull())
    counts = {(r[0], r[1]): r[2] for r in scored.groupBy("rfm_recency_score", "rfm_frequency_score").count().collect()}
    scores = list(range(1, 6))
    cells = [[counts.get((rec, freq), 0) for freq in scores] for rec in reversed(scores)]
    out = chart(
        charts.heatmap(
            f"Buyers by RFM score as of {as_of}",
            "frequency score",
            "recency score",
            scores,
            list(reversed(scores)),
            cells,
        ),
        "Quintile scores; 5 is the most recent or frequent.",
    )
    if "rfm_segment" in latest.columns:
        segments = latest.groupBy("rfm_segment").count().orderBy(F.desc("count")).collect()
        out += table(["RFM segment", "users"], [[r[0], r[1]] for r in segments])
    return out


def segments(ctx: Context) -> str:
    latest, as_of = _latest_of(ctx, "gold", "segments")
    if latest is None:
        return missing("gold.segments (run score_segmentation)")
    rows = latest.groupBy("segment", "description").count().orderBy("segment").collect()
    out = chart(
        charts.bars(
            f"Segment sizes as of {as_of}",
            "segment",
            "users",
            [str(r["segment"]) for r in rows],
            {"users": [r["count"] for r in rows]},
        ),
        "KMeans segments of the champion model.",
    )
    return out + table(
        ["segment", "users", "description"], [[r["segment"], r["count"], r["description"]] for r in rows]
    )


def _champion_run(ctx: Context, model: str):
    from audiencelake.models.registry import champion_model_version
    from audiencelake.models.tracking import client

    mv = champion_model_version(ctx.lake, model)
    if mv is None:
        return None, None
    return mv, client(ctx.lake.settings).get_run(mv.run_id)


def _artifact(ctx: Context, run_id: str, name: str) -> bytes | None:
    import mlflow

    from audiencelake.models.tracking import tracking_uri

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=name, dst_path=tmp, tracking_uri=tracking_uri(ctx.lake.settings)
            )
        except Exception:  # an older run without this plot
            return None
        return Path(path).read_bytes()


def _model_plots(ctx: Context, model: str, plots: dict[str, str], metrics: list[str]) -> str:
    from audiencelake.models.catalog import MODELS

    mv, run = _champion_run(ctx, model)
    if mv is None:
        return lacking(
            ctx, f"{model} model", MODELS[model].needs, f"a champion of the {model} model (run train_{model})"
        )
    out = f"<p>Champion: {escape(mv.name)} version {mv.version} (MLflow run {escape(mv.run_id)}).</p>"
    for name, caption in plots.items():
        png = _artifact(ctx, mv.run_id, name)
        out += image(png, caption) if png else missing(f"{name} in the champion's run")
    values = run.data.metrics
    return out + table(["metric", "value"], [[m, values.get(m)] for m in metrics if m in values])


def churn(ctx: Context) -> str:
    return _model_plots(
        ctx,
        "churn",
        {
            "churn_roc.png": "ROC curve on held-out users",
            "churn_lift.png": "Cumulative gains: share of churners caught per share targeted",
        },
        ["roc_auc", "pr_auc", "top_decile_lift", "top_decile_capture", "test_users"],
    )


def recommendations(ctx: Context) -> str:
    from audiencelake.models.catalog import MODELS

    mv, run = _champion_run(ctx, "recommendations")
    if mv is None:
        return lacking(
            ctx, "recommendations", MODELS["recommendations"].needs,
            "a champion of the recommendations model (run train_recommendations)",
        )  # fmt: skip
    values = run.data.metrics
    names = [m for m in ("precision", "recall", "map", "ndcg", "coverage") if f"{m}_at_k" in values]
    series = {
        "ALS": [values[f"{m}_at_k"] for m in names],
        "popularity": [values.get(f"baseline_{m}_at_k", 0) for m in names],
    }
    ratio = values.get("precision_vs_baseline", 0.0)
    out = f"<p>Champion: {escape(mv.name)} version {mv.version}; precision {ratio:.2f}x the popularity baseline's.</p>"
    out += chart(
        charts.bars("ALS against popularity on held-out days", "metric at k", "value", names, series),
        "Implicit ALS against recommending the most popular items, on the days after the training cut.",
    )
    return out + table(
        ["metric", "ALS", "popularity"], [[m, series["ALS"][i], series["popularity"][i]] for i, m in enumerate(names)]
    )


def clv(ctx: Context) -> str:
    return _model_plots(
        ctx,
        "clv",
        {"holdout_calibration.png": "Predicted against actual purchases in the holdout period"},
        ["holdout_mae", "bgnbd_log_likelihood", "gamma_gamma_log_likelihood", "customers"],
    )


def _audience_run(ctx: Context):
    runs = _read(ctx, "ops", "audience_runs")
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
    members = _read(ctx, "gold", "audience_members").where(F.col("run_id") == run_id).select("audience", "user_id")
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
    results = _read(ctx, "gold", "campaign_results")
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


SECTIONS: list[tuple[str, str, Callable[[Context], str]]] = [
    ("sources", "Sources and quarantine", sources),
    ("quality", "Quality results", quality),
    ("tags", "Tag coverage", tags),
    ("rfm", "RFM grid", rfm),
    ("segments", "Segments", segments),
    ("churn", "Churn model", churn),
    ("recommendations", "Recommendations", recommendations),
    ("clv", "Customer lifetime value", clv),
    ("audiences", "Audiences", audiences),
    ("uplift", "Uplift against the holdouts", uplift),
]
