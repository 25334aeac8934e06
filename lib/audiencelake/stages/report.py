"""The last stage: the HTML report, so that every front door (`run`, `demo`, the Databricks job) writes it."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import functions as F

from audiencelake.core.lake import Lake
from audiencelake.report.html import report_path, write_report
from audiencelake.stages.declaration import REPORT_FILES, StageContext, stage


@stage("report", uses=("*.*",), writes=(REPORT_FILES,))
def report(ctx: StageContext) -> dict:
    """Write the HTML report of the lake: sources, quality, tags, models, audiences, uplift.

    It shows the run's audiences (the latest audience run when the run built none) and goes to
    <lake>/reports/report-<run id>.html, or to the `report_out` option's path (`audiencelake report --out`)."""
    lake, run_id = ctx.lake, ctx.run.run_id
    out = ctx.options.get("report_out")
    shown = run_id if _has_audiences(lake, run_id) else None
    path = write_report(lake, shown, Path(out) if out else report_path(lake, run_id))
    return {"bytes": path.stat().st_size}


def _has_audiences(lake: Lake, run_id: str) -> bool:
    ref = lake.ref("ops", "audience_runs")
    return lake.exists(ref) and lake.read(ref).where(F.col("run_id") == run_id).limit(1).count() > 0
