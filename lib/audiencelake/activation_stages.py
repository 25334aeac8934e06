"""The activation stages, after the models: `audiences` (members with consent, suppression, caps and holdouts),
`export` (files and manifests per destination) and `measure` (uplift against the holdouts)."""

from __future__ import annotations

from audiencelake import model_stages  # noqa: F401  (registers the score stages these depend on)
from audiencelake.model_stages import MODELS
from audiencelake.stages import StageContext, stage


@stage("audiences", depends_on=tuple(f"score_{m}" for m in MODELS))
def audiences(ctx: StageContext) -> dict:
    """Build every audience of conf/audiences.yaml into gold.audience_members, recording its inputs' versions.

    The last run's audiences are kept when its definitions and inputs are unchanged (`activate`)."""
    from audiencelake.audiences.runs import activate

    return activate(ctx.lake, ctx.run)


@stage("export", depends_on=("audiences",))
def export(ctx: StageContext) -> dict:
    """Write the run's audiences to their destinations: data files and manifest.json, treatment members only.

    Exports already in place as this library writes them are kept (`export_activation`)."""
    from audiencelake.audiences.export import export_activation

    return export_activation(ctx.lake, ctx.run)


@stage("measure", depends_on=("export",))
def measure(ctx: StageContext) -> dict:
    """Measure uplift against the holdout of every campaign and every audience run whose window has ended."""
    from audiencelake.audiences.measure import measure_stage

    return measure_stage(ctx.lake, ctx.run)
