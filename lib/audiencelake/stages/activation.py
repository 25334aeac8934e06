"""The activation stages, after the models: `audiences` (members with consent, suppression, caps and holdouts),
`export` (files and manifests per destination), `measure` (uplift against the holdouts) and `attribution` (which
channels earned the conversions)."""

from __future__ import annotations

from audiencelake.attribution.run import attribution_stage
from audiencelake.audiences.export import export_activation
from audiencelake.audiences.measure import measure_stage
from audiencelake.audiences.runs import activate
from audiencelake.models.catalog import MODELS
from audiencelake.stages.declaration import EXPORT_FILES, StageContext, stage

MEMBERS = ("gold.audience_members", "ops.audience_runs")
CONTACTS = ("silver.crm_profiles", "silver_restricted.crm_profiles_pii")


# consent comes from the CRM: without it only audiences on opt-out channels are built (`build.unreachable`). An
# audience reads the model scores its rules use
@stage(
    "audiences",
    reads=("gold.user_profile",),
    uses=(*(m.table for m in MODELS.values()), "silver.campaign_touches", *CONTACTS, "ops.suppression"),
    writes=MEMBERS,
)
def audiences(ctx: StageContext) -> dict:
    """Build every audience of conf/audiences.yaml into gold.audience_members, recording its inputs' versions.

    The last run's audiences are kept when its definitions and inputs are unchanged (`activate`)."""
    return activate(ctx.lake, ctx.run)


@stage("export", reads=MEMBERS, uses=CONTACTS, writes=(EXPORT_FILES,))
def export(ctx: StageContext) -> dict:
    """Write the run's audiences to their destinations: data files and manifest.json, treatment members only.

    Exports already in place as this library writes them are kept (`export_activation`)."""
    return export_activation(ctx.lake, ctx.run)


# campaigns are measured from silver.campaign_touches, audience runs from their members: either may be missing
@stage(
    "measure", reads=("silver.orders",), uses=(*MEMBERS, "silver.campaign_touches"), writes=("gold.campaign_results",)
)
def measure(ctx: StageContext) -> dict:
    """Measure uplift against the holdout of every campaign and every audience run whose window has ended."""
    return measure_stage(ctx.lake, ctx.run)


# journeys need conversions; visits and campaign touches are their touchpoints, whichever exist
@stage(
    "attribution",
    reads=("silver.orders",),
    uses=("silver.clickstream_events", "silver.campaign_touches"),
    writes=("gold.journeys", "gold.attribution"),
)
def attribution(ctx: StageContext) -> dict:
    """Build each conversion's journey (gold.journeys) and credit its channels under every rules-based model."""
    return attribution_stage(ctx.lake, ctx.run)
