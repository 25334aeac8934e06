"""Plain-text tables the CLI prints: stages run, models, audiences of a run, uplift results."""

from __future__ import annotations

import json

from pyspark.sql import functions as F

from audiencelake.core.lake import Lake
from audiencelake.report.summary import text_table


def stage_table(counts: dict[str, dict], seconds: dict[str, float], elapsed: float | None = None) -> str:
    """One line per stage run: seconds and the counts it reported; their total, and the stages' `elapsed` wall time
    when some ran at once (then it is less than the total)."""
    rows = [
        (name, f"{seconds.get(name, 0.0):.1f}", ", ".join(f"{k}={v}" for k, v in c.items()) or "-")
        for name, c in counts.items()
    ]
    total = sum(seconds.get(name, 0.0) for name in counts)
    rows.append(("total", f"{total:.1f}", ""))
    if elapsed is not None and elapsed < total - 0.05:
        rows.append(("elapsed", f"{elapsed:.1f}", "from the first stage's start to the last one's end"))
    return text_table(rows, ("stage", "seconds", "counts"))


def audiences_table(lake: Lake, run_id: str) -> str:
    """Each audience of a run: channel, groups and where it was exported."""
    from audiencelake.audiences.export import export_folder

    runs = lake.read(lake.ref("ops", "audience_runs")).where(F.col("run_id") == run_id).orderBy("audience").collect()
    rows = []
    for r in runs:
        destinations = json.loads(r["definition"])["audience"]["destinations"]
        folders = ", ".join(str(export_folder(lake, d, r["audience"], run_id)) for d in destinations)
        rows.append((r["audience"], r["channel"], r["treatment"], r["holdout"], folders))
    return f"audiences of run {run_id}\n" + text_table(rows, ("audience", "channel", "treatment", "holdout", "exports"))


def campaign_results(lake: Lake) -> list[dict]:
    """The rows of gold.campaign_results by kind, name and run; none when nothing has been measured yet."""
    ref = lake.ref("gold", "campaign_results")
    if not lake.exists(ref):
        return []
    return [r.asDict() for r in lake.read(ref).orderBy("kind", "name", "run_id").collect()]


def results_table(rows: list[dict]) -> str:
    """Uplift results, one line per campaign or audience run."""

    def pct(v):
        return "-" if v is None else f"{100 * v:.2f}%"

    def num(v):
        return "-" if v is None else f"{v:.2f}"

    table = [
        (r["kind"], r["name"], r["run_id"] or "-", f"{r['treatment_users']}/{r['holdout_users']}",
         pct(r["treatment_rate"]), pct(r["holdout_rate"]), pct(r["lift"]),
         f"[{pct(r['lift_ci_low'])}, {pct(r['lift_ci_high'])}]", num(r["lift_p_value"]),
         num(r["revenue_lift"]), num(r["incremental_revenue"]), num(r["roi"]), "yes" if r["complete"] else "no")
        for r in rows
    ]  # fmt: skip
    header = ("kind", "name", "run", "users T/H", "conv T", "conv H", "lift", "95% CI", "p", "rev/user lift",
              "incr. revenue", "ROI", "complete")  # fmt: skip
    return text_table(table, header)


def models_table(lake: Lake) -> str:
    """Each model's champion version, primary metric and training date."""
    from audiencelake.models.catalog import MODELS
    from audiencelake.models.registry import list_models

    rows = [
        (r.name, r.version or "-", r.metric, r.value, r.trained, r.versions) for r in list_models(lake, list(MODELS))
    ]
    return text_table(rows, ("model", "champion", "metric", "value", "trained (UTC)", "versions"))
