"""The activation stages, after the models: `audiences` (members with consent, suppression, caps and holdouts),
`export` (files and manifests per destination) and `measure` (uplift against the holdouts)."""

from __future__ import annotations

from audiencelake import model_stages  # noqa: F401  (registers the score stages these depend on)
from audiencelake.model_stages import MODELS
from audiencelake.stages import StageContext, stage


@stage("audiences", depends_on=tuple(f"score_{m}" for m in MODELS))
def audiences(ctx: StageContext) -> dict:
    """Build every audience of conf/audiences.yaml into gold.audience_members, recording its inputs' versions."""
    from audiencelake.audiences.runs import run_audiences

    result = run_audiences(ctx.lake, ctx.run)
    return {
        "audiences": len(result.built),
        "treatment": sum(b.treatment for b in result.built),
        "holdout": sum(b.holdout for b in result.built),
    }


@stage("export", depends_on=("audiences",))
def export(ctx: StageContext) -> dict:
    """Write the run's audiences to their destinations: data files and manifest.json, treatment members only."""
    from audiencelake.audiences.export import export_run

    exports = export_run(ctx.lake, ctx.run.run_id)
    return {"exports": len(exports), "rows": sum(e.manifest["counts"]["exported"] for e in exports)}


@stage("measure", depends_on=("export",))
def measure(ctx: StageContext) -> dict:
    """Measure uplift against the holdout of every campaign and every audience run whose window has ended."""
    from audiencelake.audiences.measure import measure_all, write_results

    rows = measure_all(ctx.lake)
    write_results(ctx.lake, rows)
    return {"results": len(rows), "significant": sum(bool(r["significant"]) for r in rows)}
