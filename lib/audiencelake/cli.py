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

from audiencelake.config import load_settings
from audiencelake.errors import AudiencelakeError
from audiencelake.lake import Lake
from audiencelake.runs import Run

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
contracts_app = typer.Typer(no_args_is_help=True, help="Data contracts under schemas/.")
app.add_typer(contracts_app, name="contracts")
tags_app = typer.Typer(no_args_is_help=True, help="The tag catalogue (conf/tags.yaml) and its coverage.")
app.add_typer(tags_app, name="tags")

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


def _stage_command(name: str):
    def command(env: Env = "local", as_of: AsOf = None, run_id: RunId = None, sets: Sets = None) -> None:
        from audiencelake.stages import run_stage

        counts = run_stage(name, _context(env, as_of, run_id, sets))
        typer.echo(f"{name}: {counts}")

    from audiencelake.stages import REGISTRY, load_stages

    load_stages()
    command.__doc__ = REGISTRY[name].description
    return command


for _name in ("ingest", "identity", "quality", "profile"):
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
    from audiencelake.stages import run_pipeline

    ctx = _context(env, as_of, run_id, sets)
    run_pipeline(ctx, start, stop)
    typer.echo(lake_summary(ctx.lake))


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
    from audiencelake.pipeline_stages import requested_world
    from audiencelake.report.summary import lake_summary
    from audiencelake.report.tag_coverage import coverage_table
    from audiencelake.stages import run_pipeline
    from audiencelake.synth import recorded_spec
    from audiencelake.synth.world import DEFAULT_END

    # profiles are as of the generated world's last day
    ctx = _context("local", DEFAULT_END.isoformat(), None, sets, users=users, days=days, seed=seed)
    settings = ctx.lake.settings
    world, out = requested_world(ctx.options), Path(settings.landing_root).parent
    existing = recorded_spec(out)
    if existing is not None and existing != world.as_dict():
        typer.echo(f"the demo lake {settings.lake_root} was built from another world ({existing}); rebuilding it")
        shutil.rmtree(settings.lake_root)
    salt_from = f"${settings.pii.salt_env}" if os.environ.get(settings.pii.salt_env) else "pii.salt in conf/local.yaml"
    typer.echo(f"PII salt: from {salt_from} (production: set ${settings.pii.salt_env} from a secret store)")
    run_pipeline(ctx)
    typer.echo(lake_summary(ctx.lake))
    typer.echo("\n" + coverage_table(ctx.lake, ctx.run.as_of))
    typer.echo(f"\nplanted truth: {Path(settings.landing_root).parent / 'truth'}")


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
