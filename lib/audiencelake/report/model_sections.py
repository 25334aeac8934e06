"""The report's sections on the models' champions: churn, recommendations and CLV, from their MLflow runs."""

from __future__ import annotations

import tempfile
from html import escape
from pathlib import Path

from audiencelake.core import charts
from audiencelake.models.catalog import MODELS
from audiencelake.report.blocks import (
    Context,
    chart,
    image,
    lacking,
    missing,
    table,
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
