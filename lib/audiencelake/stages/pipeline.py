"""The stages from landing files to the profile: synth, ingest, identity, quality, optimize, profile."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from audiencelake.core.errors import AudiencelakeError
from audiencelake.identity.stitch import stitch_identities
from audiencelake.ingest.failed_files import failed_files
from audiencelake.ingest.layout import optimize_tables
from audiencelake.ingest.pipeline import ingest_all
from audiencelake.quality.tables import validate_tables
from audiencelake.stages.declaration import LANDING_FILES, SILVER, StageContext, one_of, stage
from audiencelake.synth import WorldSpec, generate_world, recorded_spec
from audiencelake.tags.profile import build_profile


def requested_world(options: dict) -> WorldSpec | None:
    """The world a run asks for with the `users`, `days` and `seed` options, or None."""
    if not options.get("users"):
        return None
    return WorldSpec(users=int(options["users"]), days=int(options.get("days", 120)), seed=int(options.get("seed", 42)))


@stage("synth", writes=(LANDING_FILES,))
def synth(ctx: StageContext) -> dict:
    """Generate a synthetic world into the landing folder (only when the run asks for it with `users`).

    Raises:
        AudiencelakeError: the folder already holds a world generated from another spec.
    """
    spec = requested_world(ctx.options)
    if spec is None:
        return {"skipped": 1}
    out = Path(ctx.lake.settings.landing_root).parent
    existing = recorded_spec(out)
    if existing == spec.as_dict():
        return {"skipped": 1}  # the same spec gives the same bytes: nothing to write
    if existing is not None:
        raise AudiencelakeError(
            f"{out} holds a world generated with {existing}, not {spec.as_dict()}; remove it or use another lake.root"
        )
    summary = generate_world(out, spec)
    return {f"rows_{k}": v for k, v in summary.valid_rows.items()}


@stage(
    "ingest",
    uses=(LANDING_FILES, "ops.identity_map"),
    writes=("bronze.*", "silver.*", "silver_restricted.*", "ops.ingest_audit", "ops.ingest_files",
            "ops.quarantine", "ops.quality_results"),
)  # fmt: skip
def ingest(ctx: StageContext) -> dict:
    """Append new landing files to bronze and process pending batches into silver behind the quality gate."""
    audits = ingest_all(ctx.lake, ctx.run, ctx.options.get("sources"))
    totals: dict[str, int] = {"batches": len(audits)}
    for audit in audits:
        for key, value in asdict(audit).items():
            if key.startswith("rows_"):
                totals[key] = totals.get(key, 0) + value
    return totals | {"files_failed": failed_files(ctx.lake, ctx.run)}


# a source without rows yet reads as empty; relabels set user_id in clickstream and, when a customer changes person,
# in every customer table ("silver.*": written only then)
@stage(
    "identity",
    uses=(*SILVER, "silver_restricted.crm_profiles_pii"),
    writes=("identity.*", "ops.identity_map", "silver.*"),
)
def identity(ctx: StageContext) -> dict:
    """Update the identity graph and its persistent person ids, then credit clickstream events to their persons.

    Edges come from logins, devices, CRM identifiers and probabilistic CRM matches (Splink); merges and splits
    of persons are logged in identity.identity_changes."""
    return stitch_identities(ctx.lake, ctx.run)


@stage("quality", uses=SILVER, writes=("ops.quality_results",))  # validates the silver tables there are
def quality(ctx: StageContext) -> dict:
    """Validate every silver table as a whole with its Great Expectations suite and record the results."""
    return validate_tables(ctx.lake, ctx.run)


# compaction rewrites any crowded table's files (its rows unchanged) and sets configured properties on any table
@stage("optimize", uses=("silver.*",), writes=("*.*",))
def optimize(ctx: StageContext) -> dict:
    """Compact the silver event tables' recent partitions, Z-ordered by user_id, and set the configured properties.

    `lake.optimize_days` days up to the run date are rewritten (late events and identity relabels land there);
    the properties of `lake.table_properties` are set on tables created before they were configured. Where Delta
    does not compact after each commit (locally), every table with a crowded partition is compacted too."""
    return optimize_tables(ctx.lake, ctx.run)


@stage(
    "profile",
    reads=(one_of(*SILVER),),
    uses=SILVER,
    writes=("gold.user_profile", "gold.user_tags", "gold.tag_catalog", "work.profile_aggregates_*"),
)
def profile(ctx: StageContext) -> dict:
    """Compute every tag of conf/tags.yaml as of the run date into gold.user_profile, user_tags and tag_catalog.

    Tags whose sources' tables do not exist are unavailable: null columns, with why in gold.tag_catalog."""
    return asdict(build_profile(ctx.lake, ctx.run))
