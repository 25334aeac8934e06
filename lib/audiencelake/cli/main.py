"""`audiencelake`: one command per stage, `run` for the pipeline, plus `synth`, `demo`, `summary`, `contracts`.

Every stage command takes the same flags: --env, --as-of, --run-id and --set section.key=value (repeatable).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from audiencelake.cli.activation import audience_app, forget, measure, suppress
from audiencelake.cli.info import bundle, contracts_app, models_app, report, sources_app, stages, summary, tags_app
from audiencelake.cli.options import AsOf, Env, RunId, Sets, context, locked
from audiencelake.core.config import load_settings
from audiencelake.core.errors import AudiencelakeError
from audiencelake.stages.registry import STAGES

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def _stage_command(name: str):
    def command(env: Env = "local", as_of: AsOf = None, run_id: RunId = None, sets: Sets = None) -> None:
        from audiencelake.stages.runner import run_stage

        with locked(name, env, sets, run_id):
            counts = run_stage(name, context(env, as_of, run_id, sets))
        typer.echo(f"{name}: {counts}")

    command.__doc__ = STAGES[name].description
    return command


# synth, measure and report have commands of their own, with their own options
for _name in [n for n in STAGES if n not in ("synth", "measure", "report")]:
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
    """Run the pipeline's stages in order; a stage whose inputs do not exist is skipped, saying which."""
    with locked("run", env, sets, run_id):
        _pipeline(context(env, as_of, run_id, sets), start, stop)


def _pipeline(ctx, start: str | None = None, stop: str | None = None) -> dict[str, dict]:
    """Run the stages and print the lake's summary and the stage table (what `run` and `demo` share)."""
    from audiencelake.report.summary import lake_summary
    from audiencelake.report.tables import stage_table
    from audiencelake.stages.runner import run_pipeline

    counts = run_pipeline(ctx, start, stop)
    typer.echo(lake_summary(ctx.lake))
    typer.echo("\n" + stage_table(counts, ctx.seconds, ctx.elapsed))
    return counts


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

    from audiencelake.ingest.layout import AUTO_COMPACT
    from audiencelake.ingest.stream import start_stream

    # no optimize stage follows a stream: it compacts after its commits (conf/local.yaml leaves that to the optimize
    # stage of batch runs), unless --set says otherwise
    if not any(s.startswith(f"spark.conf.{AUTO_COMPACT}=") for s in sets or []):
        sets = [*(sets or []), f"spark.conf.{AUTO_COMPACT}=true"]
    ctx = context(env, as_of, run_id, sets)
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
    from audiencelake.core.lake_lock import LOCK_FILE

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
    from audiencelake.report.html import report_path
    from audiencelake.report.tables import audiences_table, campaign_results, models_table, results_table
    from audiencelake.report.tag_coverage import coverage_table
    from audiencelake.stages.pipeline import requested_world
    from audiencelake.synth import recorded_spec
    from audiencelake.synth.world import DEFAULT_END

    with locked("demo", "local", sets):
        # profiles are as of the generated world's last day; the run's synth stage writes the world
        ctx = context("local", DEFAULT_END.isoformat(), None, sets, users=users, days=days, seed=seed)
        settings = ctx.lake.settings
        world, out = requested_world(ctx.options), Path(settings.landing_root).parent
        existing = recorded_spec(out)
        if existing is not None and existing != world.as_dict():
            typer.echo(f"the demo lake {settings.lake_root} was built from another world ({existing}); rebuilding it")
            _empty_lake(Path(settings.lake_root))
        salt_env = settings.pii.salt_env
        salt_from = f"${salt_env}" if os.environ.get(salt_env) else "pii.salt in conf/local.yaml"
        typer.echo(f"PII salt: from {salt_from} (production: set ${salt_env} from a secret store)")
        _pipeline(ctx)
    lake = ctx.lake
    typer.echo("\n" + coverage_table(lake, ctx.run.as_of))
    typer.echo("\n" + models_table(lake))
    typer.echo("\n" + audiences_table(lake, ctx.run.run_id))
    typer.echo("\nuplift against the holdouts (gold.campaign_results)\n" + results_table(campaign_results(lake)))
    typer.echo(f"\nreport: {report_path(lake, ctx.run.run_id)}")
    typer.echo(f"planted truth: {Path(settings.landing_root).parent / 'truth'}")
    typer.echo(f"MLflow UI: {Path(sys.executable).parent / 'mlflow'} ui --backend-store-uri {tracking_uri(settings)}")


@app.command()
def unlock(env: Env = "local", sets: Sets = None) -> None:
    """Remove the lake's lock left by a run that is gone (check first that it no longer runs)."""
    from audiencelake.core.lake_lock import lock_path
    from audiencelake.core.lake_lock import unlock as remove

    settings = load_settings(env, sets or [])
    holder = remove(settings)
    typer.echo(f"removed {lock_path(settings)} ({holder})" if holder is not None else "the lake is not locked")


# the other commands, from their modules
app.add_typer(contracts_app, name="contracts")
app.add_typer(tags_app, name="tags")
app.add_typer(sources_app, name="sources")
app.add_typer(models_app, name="models")
app.add_typer(audience_app, name="audience")
for _command in (summary, stages, report, bundle, measure, suppress, forget):
    app.command()(_command)


def main(argv: list[str] | None = None) -> None:
    """Console entry point; errors of the project print as one line and exit 2."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)  # PySpark logs an analysis error whole
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
