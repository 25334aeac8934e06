"""What every command shares: the common options, the stage context, and the lake lock for commands that write."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Annotated

import typer

from audiencelake.core.config import load_settings
from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run

Env = Annotated[str, typer.Option("--env", help="Configuration: conf/<env>.yaml.")]
AsOf = Annotated[str | None, typer.Option("--as-of", help="Run date, YYYY-MM-DD (default: today, UTC).")]
RunId = Annotated[str | None, typer.Option("--run-id", help="Run id (default: a new time-ordered id).")]
Sets = Annotated[list[str] | None, typer.Option("--set", help="Override a setting: section.key=value.")]


def context(env: str, as_of: str | None, run_id: str | None, sets: list[str] | None, **options):
    """A stage context: settings of `env` with `sets`, the Spark session they configure, and the run."""
    from audiencelake.core.session import build_session
    from audiencelake.stages.declaration import StageContext

    settings = load_settings(env, sets or [])
    spark = build_session(settings)
    spark.sparkContext.setLogLevel("ERROR")
    return StageContext(Lake(spark, settings), Run.create(as_of, run_id), options)


@contextmanager
def locked(command: str, env: str, sets: list[str] | None, run_id: str | None = None):
    """Hold the lake's lock (`audiencelake.core.lake_lock`) for a command that writes; taken before Spark starts."""
    from audiencelake.core.lake_lock import lake_lock

    with lake_lock(load_settings(env, sets or []), command, run_id):
        yield
