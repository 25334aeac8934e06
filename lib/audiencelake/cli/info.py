"""Commands that describe the project and the lake without changing it: `summary`, `stages`, `report`, `bundle`, and the
`contracts`, `tags` and `models` groups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from audiencelake.cli.options import AsOf, Env, Sets, context
from audiencelake.core.config import load_settings
from audiencelake.core.lake import Lake

contracts_app = typer.Typer(no_args_is_help=True, help="Data contracts under schemas/.")
tags_app = typer.Typer(no_args_is_help=True, help="The tag catalogue (conf/tags.yaml) and its coverage.")
sources_app = typer.Typer(no_args_is_help=True, help="Landing sources (conf/sources.yaml).")
models_app = typer.Typer(
    no_args_is_help=True, help="The MLflow model registry (train_<model> and score_<model> are stages)."
)


def summary(env: Env = "local", sets: Sets = None) -> None:
    """Print rows per table, the accounting per source and the quarantine reasons."""
    from audiencelake.report.summary import lake_summary

    typer.echo(lake_summary(context(env, None, None, sets).lake))


@contracts_app.command("docs")
def contracts_docs(
    out: Annotated[Path, typer.Option(help="Markdown file to write.")] = Path("docs/data_dictionary.md"),
    env: Env = "local",
    sets: Sets = None,
) -> None:
    """Write the data dictionary (Markdown) from the contracts, with the environment's business thresholds."""
    from audiencelake.report.dictionary import data_dictionary

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(data_dictionary(load_settings(env, sets or [])))
    typer.echo(f"wrote {out}")


@sources_app.command("check")
def sources_check(
    env: Env = "local",
    as_of: AsOf = None,
    sets: Sets = None,
    sample: Annotated[int, typer.Option(help="Records read per source.", min=1)] = 10_000,
    source: Annotated[list[str] | None, typer.Option("--source", help="Check only this source (repeatable).")] = None,
) -> None:
    """Dry-run ingest on a sample of each source: the contract's columns as mapped and typed, and what would be
    quarantined, by reason. Writes nothing."""
    from audiencelake.ingest.check import check_sources

    ctx = context(env, as_of, None, sets)
    checks = check_sources(ctx.lake.spark, ctx.lake.settings, ctx.run.as_of, sample, source)
    typer.echo("\n\n".join(check.render() for check in checks))


def bundle(
    out: Annotated[Path, typer.Option(help="Bundle file to write.")] = Path("databricks.yml"),
) -> None:
    """Write the Databricks asset bundle (one wheel task per registered stage) from the stage registry."""
    from audiencelake.stages.bundle import bundle_yaml

    out.write_text(bundle_yaml())
    typer.echo(f"wrote {out}")


def stages() -> None:
    """List the stages in the order `run` runs them (Markdown): what each reads, writes and runs after."""
    from audiencelake.stages.listing import stage_list

    typer.echo(stage_list(), nl=False)


def report(
    env: Env = "local",
    as_of: AsOf = None,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="Audience run shown (default: the latest); names the file.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="HTML file (default: <lake>/reports/report-<run>.html).")] = None,
    sets: Sets = None,
) -> None:
    """Write one self-contained HTML report of the lake (the `report` stage): sources, quality, tags, models,
    audiences, uplift."""
    from audiencelake.report.html import report_path
    from audiencelake.stages.runner import run_stage

    ctx = context(env, as_of, run_id, sets)
    target = out or (report_path(ctx.lake) if run_id is None else report_path(ctx.lake, run_id))  # no run: latest
    ctx.options["report_out"] = str(target)
    counts = run_stage("report", ctx)
    typer.echo(f"report: {target} ({counts['bytes']} bytes)")


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

    typer.echo(coverage_table(context(env, None, None, sets).lake, as_of))


@models_app.command("list")
def models_list(env: Env = "local", sets: Sets = None) -> None:
    """Each model's champion version, primary metric and training date."""
    from audiencelake.report.tables import models_table

    typer.echo(models_table(Lake(None, load_settings(env, sets or []))))
