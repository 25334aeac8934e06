"""Activation commands: the `audience` group (check, preview, rebuild), `measure` and `suppress`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from audiencelake.audiences.measure import DEFAULT_WINDOW_DAYS
from audiencelake.cli.options import AsOf, Env, RunId, Sets, context, locked
from audiencelake.core.config import load_settings
from audiencelake.core.errors import AudiencelakeError

audience_app = typer.Typer(no_args_is_help=True, help="Audiences of conf/audiences.yaml: check, preview, rebuild.")


@audience_app.command("check")
def audience_check(
    file: Annotated[Path | None, typer.Option(help="Audience definitions (default: activation.audiences).")] = None,
    env: Env = "local",
    sets: Sets = None,
) -> None:
    """Validate the audience definitions without Spark (against the configured tag catalogue and the tags the lake's
    silver tables can give); print every rule."""
    from audiencelake.audiences.loader import load_audiences
    from audiencelake.core.lake import tables_on_disk
    from audiencelake.tags.loader import load_catalogue

    settings = load_settings(env, sets or [])
    tables, unavailable = tables_on_disk(settings, "silver"), {}
    if tables:
        unavailable = load_catalogue(settings.profile.tags, settings.overrides("tags")).available(tables)[1]
    else:  # nothing ingested yet, or a lake elsewhere: the rules are checked against the catalogue only
        where = "no silver table yet" if tables is not None else f"the lake {settings.lake_root} is not on this machine"
        typer.echo(f"tags not checked against the lake's sources: {where}")
    definitions = load_audiences(
        file or settings.activation.audiences, settings.profile.tags, unavailable, settings.overrides("audiences"),
        settings.overrides("tags"),
    )  # fmt: skip
    for name, audience in definitions.audiences.items():
        typer.echo(f"{name} [{audience.channel} -> {', '.join(audience.destinations)}]: {definitions.rule_text(name)}")
    typer.echo(f"{definitions.file}: {len(definitions.audiences)} audiences OK")


@audience_app.command("preview")
def audience_preview(
    name: Annotated[str, typer.Argument(help="Audience name.")],
    env: Env = "local",
    as_of: AsOf = None,
    sets: Sets = None,
) -> None:
    """Print an audience's funnel, its size per group and its overlap with the other audiences; writes nothing."""
    from audiencelake.audiences.build import build_audiences
    from audiencelake.audiences.fields import Inputs
    from audiencelake.audiences.runs import current_definitions, overlaps
    from audiencelake.report.summary import text_table

    ctx = context(env, as_of, "preview", sets)
    definitions = current_definitions(ctx.lake)
    if name not in definitions.audiences:
        raise AudiencelakeError(f"unknown audience '{name}'; have {', '.join(definitions.audiences)}")
    built, skipped = build_audiences(definitions, Inputs.current(ctx.lake), "preview", ctx.run.as_of)
    if name in skipped:
        raise AudiencelakeError(f"audience {name} cannot be built as of {ctx.run.as_of}: {skipped[name]}")
    mine = next(b for b in built if b.audience.name == name)
    typer.echo(f"{name} as of {ctx.run.as_of}: {mine.rule}")
    typer.echo(text_table(mine.funnel, ("step", "users")))
    typer.echo(f"final: {mine.treatment + mine.holdout} ({mine.treatment} treatment, {mine.holdout} holdout)")
    typer.echo(text_table(sorted(overlaps(built, name).items()), ("overlaps with", "users")))


@audience_app.command("rebuild")
def audience_rebuild(
    run_id: Annotated[str, typer.Option("--run-id", help="The run whose audiences to rebuild.")],
    env: Env = "local",
    sets: Sets = None,
) -> None:
    """Rebuild a run's audiences from the Delta versions it recorded and check they equal its stored members."""
    from audiencelake.audiences.runs import rebuild

    _, results = rebuild(context(env, None, run_id, sets).lake, run_id)
    for name, (members, differ) in results.items():
        typer.echo(f"{name}: {members} members, {'identical' if not differ else f'{differ} rows differ'}")
    if any(differ for _, differ in results.values()):
        raise AudiencelakeError(f"run '{run_id}': the rebuilt members differ from gold.audience_members")


def measure(
    audience: Annotated[str | None, typer.Option(help="Measure this audience of --run-id only.")] = None,
    campaign: Annotated[str | None, typer.Option(help="Measure this campaign of silver.campaign_touches only.")] = None,
    window_days: Annotated[int, typer.Option(help="Days measured from a campaign's send day.")] = DEFAULT_WINDOW_DAYS,
    env: Env = "local",
    as_of: AsOf = None,
    run_id: RunId = None,
    sets: Sets = None,
) -> None:
    """Measure uplift against the holdout into gold.campaign_results (without options: the `measure` stage)."""
    from audiencelake.audiences.measure import measure_all, measure_audience, measure_campaigns, write_results
    from audiencelake.report.tables import campaign_results, results_table
    from audiencelake.stages.runner import run_stage

    if audience and not run_id:
        raise AudiencelakeError("--audience needs the --run-id that built it")
    with locked("measure", env, sets, run_id):
        ctx = context(env, as_of, run_id, sets)
        lake = ctx.lake
        if not audience and not campaign and window_days == DEFAULT_WINDOW_DAYS:  # the stage (keeps what is current)
            typer.echo(f"measure: {run_stage('measure', ctx)}")
            rows = campaign_results(lake)
        else:
            if audience:
                rows = [measure_audience(lake, audience, run_id)]
            elif campaign:
                rows = measure_campaigns(lake, window_days, campaign)
            else:
                rows = measure_all(lake, window_days)
            write_results(lake, rows)
    typer.echo(results_table(rows) if rows else "nothing to measure")


def suppress(
    reason: Annotated[str, typer.Option(help="unsubscribe, complaint, do_not_contact or erasure.")],
    user_id: Annotated[str | None, typer.Option("--user-id")] = None,
    email: Annotated[str | None, typer.Option()] = None,
    phone: Annotated[str | None, typer.Option()] = None,
    source: Annotated[str, typer.Option(help="Who asked.")] = "cli",
    env: Env = "local",
    sets: Sets = None,
) -> None:
    """Add a person to the global suppression list (ops.suppression); email and phone are stored hashed."""
    from audiencelake.audiences.suppression import suppress as add

    with locked("suppress", env, sets):
        keys = add(context(env, None, None, sets).lake, reason, source, user_id=user_id, email=email, phone=phone)
    typer.echo(f"suppressed ({reason}): {len(keys)} entries")


def forget(
    email: Annotated[str | None, typer.Option(help="The person's email address.")] = None,
    user_id: Annotated[str | None, typer.Option("--user-id", help="The person's user id.")] = None,
    source: Annotated[str, typer.Option(help="Who asked.")] = "cli",
    env: Env = "local",
    sets: Sets = None,
) -> None:
    """Erase a person on request: their rows leave every table, landing file and past export, they go on the
    suppression list, and the changed tables are vacuumed with lake.vacuum_retention_hours."""
    from audiencelake.erasure.request import check_request
    from audiencelake.erasure.request import forget as erase

    check_request(email, user_id)
    with locked("forget", env, sets):
        record = erase(context(env, None, None, sets).lake, source, email=email, user_id=user_id)
    if not (record["user_ids"] or record["rows_erased"] or record["landing_records"] or record["export_rows"]):
        typer.echo(f"erasure request {record['request_id']}: nobody found; recorded")
        return
    typer.echo(
        f"erasure request {record['request_id']}: {record['user_ids']} user ids, {record['rows_erased']} rows "
        f"from {len(json.loads(record['tables']))} tables, {record['landing_records']} landing records, "
        f"{record['export_rows']} export rows; vacuumed with {record['vacuum_retention_hours']} h retention"
    )
