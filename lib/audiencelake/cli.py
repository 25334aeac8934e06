"""`audiencelake`: one command per stage, `run` for the pipeline, plus `synth`, `demo`, `summary`, `contracts`.

Every stage command takes the same flags: --env, --as-of, --run-id and --set section.key=value (repeatable).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from audiencelake.config import load_settings
from audiencelake.errors import AudiencelakeError
from audiencelake.lake import Lake
from audiencelake.runs import Run

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
contracts_app = typer.Typer(no_args_is_help=True, help="Data contracts under schemas/.")
app.add_typer(contracts_app, name="contracts")
tags_app = typer.Typer(no_args_is_help=True, help="The tag catalogue (conf/tags.yaml) and its coverage.")
app.add_typer(tags_app, name="tags")
models_app = typer.Typer(
    no_args_is_help=True, help="The MLflow model registry (train_<model> and score_<model> are stages)."
)
app.add_typer(models_app, name="models")
audience_app = typer.Typer(no_args_is_help=True, help="Audiences of conf/audiences.yaml: check, preview, rebuild.")
app.add_typer(audience_app, name="audience")

Env = Annotated[str, typer.Option("--env", help="Configuration: conf/<env>.yaml.")]
AsOf = Annotated[str | None, typer.Option("--as-of", help="Run date, YYYY-MM-DD (default: today, UTC).")]
RunId = Annotated[str | None, typer.Option("--run-id", help="Run id (default: a new time-ordered id).")]
Sets = Annotated[list[str] | None, typer.Option("--set", help="Override a setting: section.key=value.")]


def _context(env: str, as_of: str | None, run_id: str | None, sets: list[str] | None, **options):
    from audiencelake.session import build_session
    from audiencelake.stages import StageContext

    settings = load_settings(env, sets or [])
    spark = build_session(settings)
    spark.sparkContext.setLogLevel("ERROR")
    return StageContext(Lake(spark, settings), Run.create(as_of, run_id), options)


@contextmanager
def _locked(command: str, env: str, sets: list[str] | None, run_id: str | None = None):
    """Hold the lake's lock (`audiencelake.lake_lock`) for a command that writes; taken before Spark starts."""
    from audiencelake.lake_lock import lake_lock

    with lake_lock(load_settings(env, sets or []), command, run_id):
        yield


def _stage_command(name: str):
    def command(env: Env = "local", as_of: AsOf = None, run_id: RunId = None, sets: Sets = None) -> None:
        from audiencelake.stages import run_stage

        with _locked(name, env, sets, run_id):
            counts = run_stage(name, _context(env, as_of, run_id, sets))
        typer.echo(f"{name}: {counts}")

    from audiencelake.stages import REGISTRY, load_stages

    load_stages()
    command.__doc__ = REGISTRY[name].description
    return command


def _stage_names() -> list[str]:
    from audiencelake.stages import REGISTRY, load_stages

    load_stages()
    # synth and measure have commands of their own, with their own options
    return [name for name in REGISTRY if name not in ("synth", "measure")]


for _name in _stage_names():  # ingest, identity, quality, profile, train_/score_<model>, audiences, export
    app.command(_name)(_stage_command(_name))


@app.command()
def run(
    env: Env = "local",
    as_of: AsOf = None,
    run_id: RunId = None,
    sets: Sets = None,
    start: Annotated[str | None, typer.Option("--from", help="First stage to run.")] = None,
    stop: Annotated[str | None, typer.Option("--to", help="Last stage to run.")] = None,
) -> None:
    """Run the pipeline's stages in dependency order."""
    from audiencelake.report.summary import lake_summary
    from audiencelake.report.tables import stage_table
    from audiencelake.stages import run_pipeline

    with _locked("run", env, sets, run_id):
        ctx = _context(env, as_of, run_id, sets)
        counts = run_pipeline(ctx, start, stop)
    typer.echo(lake_summary(ctx.lake))
    typer.echo("\n" + stage_table(counts, ctx.seconds))


@app.command()
def stream(
    env: Env = "local",
    as_of: AsOf = None,
    run_id: RunId = None,
    sets: Sets = None,
    source: Annotated[
        list[str] | None, typer.Option(help="Source to stream (repeatable; default stream.sources).")
    ] = None,
    trigger: Annotated[
        str | None, typer.Option(help="available_now or processing_time (default stream.trigger).")
    ] = None,
    interval: Annotated[str | None, typer.Option(help="processing_time interval, e.g. '30 seconds'.")] = None,
) -> None:
    """Ingest JSON sources with Structured Streaming (landing -> bronze -> silver), checkpointed."""
    from pyspark.errors import StreamingQueryException

    from audiencelake.ingest.stream import start_stream

    ctx = _context(env, as_of, run_id, sets)
    query = start_stream(ctx.lake, ctx.run, source, trigger, interval)
    try:
        query.awaitTermination()
    except KeyboardInterrupt:
        query.stop()
    except StreamingQueryException as exc:  # a micro-batch failed: say which, in one line
        cause = next((line for line in str(exc).splitlines() if line.strip()), "unknown error")
        raise AudiencelakeError(f"stream {query.name} stopped: {cause}") from exc
    last = query.lastProgress
    typer.echo(f"stream {query.name}: stopped after micro-batch {last['batchId'] if last else 'none'}")


@app.command()
def synth(
    users: Annotated[int, typer.Option(help="Customers to generate.")] = 2000,
    days: Annotated[int, typer.Option(help="Days of history.")] = 120,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same bytes.")] = 42,
    out: Annotated[Path, typer.Option(help="Folder for landing/ and truth/.")] = Path("lake"),
    chunk_size: Annotated[int, typer.Option(help="Users generated per chunk (bounds memory).")] = 5000,
) -> None:
    """Generate a synthetic multi-source world with planted ground truth."""
    from audiencelake.synth import WorldSpec, generate_world

    summary = generate_world(out, WorldSpec(users=users, days=days, seed=seed, chunk_size=chunk_size))
    typer.echo(f"landing files in {out / 'landing'}, truth in {out / 'truth'}")
    typer.echo(f"valid rows: {dict(summary.valid_rows)}")
    typer.echo(f"planted bad records: { {k: dict(v) for k, v in summary.bad_records.items()} }")


def _empty_lake(root: Path) -> None:
    """Delete everything under a local lake but its lock (held by the command doing it)."""
    from audiencelake.lake_lock import LOCK_FILE

    for child in root.iterdir():
        if child.name != LOCK_FILE:
            shutil.rmtree(child) if child.is_dir() else child.unlink()


@app.command()
def demo(
    users: Annotated[int, typer.Option(help="Customers in the generated world.")] = 1000,
    days: Annotated[int, typer.Option(help="Days of history.")] = 90,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    sets: Sets = None,
) -> None:
    """Generate a world into the local lake's landing folder, run every stage, print the summary.

    Running it again with the same world is quick (nothing new to ingest); with another world the demo lake is
    rebuilt from scratch.
    """
    from audiencelake.models.tracking import tracking_uri
    from audiencelake.pipeline_stages import requested_world
    from audiencelake.report.html import write_report
    from audiencelake.report.summary import lake_summary
    from audiencelake.report.tables import audiences_table, models_table, results_table, stage_table
    from audiencelake.report.tag_coverage import coverage_table
    from audiencelake.stages import run_pipeline
    from audiencelake.synth import recorded_spec
    from audiencelake.synth.world import DEFAULT_END

    with _locked("demo", "local", sets):
        # profiles are as of the generated world's last day
        ctx = _context("local", DEFAULT_END.isoformat(), None, sets, users=users, days=days, seed=seed)
        settings = ctx.lake.settings
        world, out = requested_world(ctx.options), Path(settings.landing_root).parent
        existing = recorded_spec(out)
        if existing is not None and existing != world.as_dict():
            typer.echo(f"the demo lake {settings.lake_root} was built from another world ({existing}); rebuilding it")
            _empty_lake(Path(settings.lake_root))
        salt_env = settings.pii.salt_env
        salt_from = f"${salt_env}" if os.environ.get(salt_env) else "pii.salt in conf/local.yaml"
        typer.echo(f"PII salt: from {salt_from} (production: set ${salt_env} from a secret store)")
        counts = run_pipeline(ctx)
    typer.echo(lake_summary(ctx.lake))
    typer.echo("\n" + coverage_table(ctx.lake, ctx.run.as_of))
    typer.echo("\n" + models_table(ctx.lake))
    typer.echo("\n" + audiences_table(ctx.lake, ctx.run.run_id))
    results = ctx.lake.read(ctx.lake.ref("gold", "campaign_results")).orderBy("kind", "name", "run_id").collect()
    typer.echo("\nuplift against the holdouts (gold.campaign_results)\n" + results_table([r.asDict() for r in results]))
    typer.echo("\n" + stage_table(counts, ctx.seconds))
    typer.echo(f"\nreport: {write_report(ctx.lake, ctx.run.run_id)}")
    typer.echo(f"planted truth: {Path(settings.landing_root).parent / 'truth'}")
    typer.echo(f"MLflow UI: {Path(sys.executable).parent / 'mlflow'} ui --backend-store-uri {tracking_uri(settings)}")


@app.command()
def summary(env: Env = "local", sets: Sets = None) -> None:
    """Print rows per table, the accounting per source and the quarantine reasons."""
    from audiencelake.report.summary import lake_summary

    typer.echo(lake_summary(_context(env, None, None, sets).lake))


@contracts_app.command("docs")
def contracts_docs(
    out: Annotated[Path, typer.Option(help="Markdown file to write.")] = Path("docs/data_dictionary.md"),
) -> None:
    """Write the data dictionary (Markdown) from the contracts."""
    from audiencelake.report.dictionary import data_dictionary

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(data_dictionary())
    typer.echo(f"wrote {out}")


@app.command()
def bundle(
    out: Annotated[Path, typer.Option(help="Bundle file to write.")] = Path("databricks.yml"),
) -> None:
    """Write the Databricks asset bundle (one wheel task per registered stage) from the stage registry."""
    from audiencelake.bundle import bundle_yaml

    out.write_text(bundle_yaml())
    typer.echo(f"wrote {out}")


@app.command()
def report(
    env: Env = "local",
    run_id: Annotated[str | None, typer.Option("--run-id", help="Audience run shown (default: the latest).")] = None,
    out: Annotated[Path | None, typer.Option(help="HTML file (default: <lake>/reports/report-<run>.html).")] = None,
    sets: Sets = None,
) -> None:
    """Write one self-contained HTML report of the lake: sources, quality, tags, models, audiences, uplift."""
    from audiencelake.report.html import write_report

    typer.echo(f"report: {write_report(_context(env, None, None, sets).lake, run_id, out)}")


@tags_app.command("check")
def tags_check(
    file: Annotated[Path | None, typer.Option(help="Tag catalogue (default: conf/tags.yaml).")] = None,
) -> None:
    """Validate a tag catalogue without Spark and list its tags by kind."""
    from audiencelake.tags.loader import load_catalogue

    catalogue = load_catalogue(file)
    kinds: dict[str, int] = {}
    for tag in catalogue.tags:
        kinds[tag.kind] = kinds.get(tag.kind, 0) + 1
    typer.echo(f"{catalogue.file}: {len(catalogue.tags)} tags OK ({', '.join(f'{k} {n}' for k, n in kinds.items())})")


@tags_app.command("coverage")
def tags_coverage(env: Env = "local", as_of: AsOf = None, sets: Sets = None) -> None:
    """Print the coverage table of gold.tag_catalog for an as-of date (default: the latest)."""
    from audiencelake.report.tag_coverage import coverage_table

    typer.echo(coverage_table(_context(env, None, None, sets).lake, as_of))


@models_app.command("list")
def models_list(env: Env = "local", sets: Sets = None) -> None:
    """Each model's champion version, primary metric and training date."""
    from audiencelake.report.tables import models_table

    typer.echo(models_table(Lake(None, load_settings(env, sets or []))))


@audience_app.command("check")
def audience_check(
    file: Annotated[Path | None, typer.Option(help="Audience definitions (default: activation.audiences).")] = None,
    env: Env = "local",
    sets: Sets = None,
) -> None:
    """Validate the audience definitions without Spark (against the configured tag catalogue); print every rule."""
    from audiencelake.audiences.loader import load_audiences

    settings = load_settings(env, sets or [])
    definitions = load_audiences(file or settings.activation.audiences, settings.profile.tags)
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

    ctx = _context(env, as_of, "preview", sets)
    definitions = current_definitions(ctx.lake)
    if name not in definitions.audiences:
        raise AudiencelakeError(f"unknown audience '{name}'; have {', '.join(definitions.audiences)}")
    built = build_audiences(definitions, Inputs.current(ctx.lake), "preview", ctx.run.as_of)
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

    _, results = rebuild(_context(env, None, run_id, sets).lake, run_id)
    for name, (members, differ) in results.items():
        typer.echo(f"{name}: {members} members, {'identical' if not differ else f'{differ} rows differ'}")
    if any(differ for _, differ in results.values()):
        raise AudiencelakeError(f"run '{run_id}': the rebuilt members differ from gold.audience_members")


@app.command()
def measure(
    audience: Annotated[str | None, typer.Option(help="Measure this audience of --run-id only.")] = None,
    campaign: Annotated[str | None, typer.Option(help="Measure this campaign of silver.campaign_touches only.")] = None,
    window_days: Annotated[int, typer.Option(help="Days measured from a campaign's send day.")] = 7,
    env: Env = "local",
    as_of: AsOf = None,
    run_id: RunId = None,
    sets: Sets = None,
) -> None:
    """Measure uplift against the holdout into gold.campaign_results (without options: the `measure` stage)."""
    from audiencelake.audiences.measure import measure_all, measure_audience, measure_campaigns, write_results
    from audiencelake.report.tables import results_table

    if audience and not run_id:
        raise AudiencelakeError("--audience needs the --run-id that built it")
    with _locked("measure", env, sets, run_id):
        lake = _context(env, as_of, run_id, sets).lake
        if audience:
            rows = [measure_audience(lake, audience, run_id)]
        elif campaign:
            rows = measure_campaigns(lake, window_days, campaign)
        else:
            rows = measure_all(lake, window_days)
        write_results(lake, rows)
    typer.echo(results_table(rows) if rows else "nothing to measure")


@app.command()
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

    with _locked("suppress", env, sets):
        keys = add(_context(env, None, None, sets).lake, reason, source, user_id=user_id, email=email, phone=phone)
    typer.echo(f"suppressed ({reason}): {len(keys)} entries")


@app.command()
def unlock(env: Env = "local", sets: Sets = None) -> None:
    """Remove the lake's lock left by a run that is gone (check first that it no longer runs)."""
    from audiencelake.lake_lock import lock_path
    from audiencelake.lake_lock import unlock as remove

    settings = load_settings(env, sets or [])
    holder = remove(settings)
    typer.echo(f"removed {lock_path(settings)} ({holder})" if holder is not None else "the lake is not locked")


def main(argv: list[str] | None = None) -> None:
    """Console entry point; errors of the project print as one line and exit 2."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        app(args=argv, standalone_mode=False)
    except AudiencelakeError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        from click import ClickException

        if isinstance(exc, ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
