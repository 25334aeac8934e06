"""The stages of the pipeline, registered in order. Each calls one library function."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from audiencelake.identity.stitch import stitch_identities
from audiencelake.ingest.pipeline import ingest_all
from audiencelake.quality.tables import validate_tables
from audiencelake.stages import StageContext, stage
from audiencelake.synth import WorldSpec, generate_world


@stage("synth")
def synth(ctx: StageContext) -> dict:
    """Generate a synthetic world into the landing folder (only when the run asks for it with `users`)."""
    if not ctx.options.get("users"):
        return {"skipped": 1}
    spec = WorldSpec(
        users=int(ctx.options["users"]), days=int(ctx.options.get("days", 120)), seed=int(ctx.options.get("seed", 42))
    )
    out = Path(ctx.lake.settings.landing_root).parent
    summary = generate_world(out, spec)
    return {f"rows_{k}": v for k, v in summary.valid_rows.items()}


@stage("ingest", depends_on=("synth",))
def ingest(ctx: StageContext) -> dict:
    """Append new landing files to bronze and process pending batches into silver behind the quality gate."""
    audits = ingest_all(ctx.lake, ctx.run, ctx.options.get("sources"))
    totals: dict[str, int] = {"batches": len(audits)}
    for audit in audits:
        for key, value in asdict(audit).items():
            if key.startswith("rows_"):
                totals[key] = totals.get(key, 0) + value
    return totals


@stage("identity", depends_on=("ingest",))
def identity(ctx: StageContext) -> dict:
    """Stitch anonymous ids and devices to users (connected components over login and device edges)."""
    return asdict(stitch_identities(ctx.lake, ctx.run))


@stage("quality", depends_on=("identity",))
def quality(ctx: StageContext) -> dict:
    """Validate every silver table as a whole with its Great Expectations suite and record the results."""
    return validate_tables(ctx.lake, ctx.run)
