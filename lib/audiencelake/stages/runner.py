"""Run one stage, or the pipeline's stages in registry order (`run_pipeline`), some at once when allowed.

Before a stage runs, what it reads must exist: `run_stage` raises `MissingInput` (one line naming the table and
the stage that writes it), and `run_pipeline` skips the stage with that line, so a lake without some source still
runs every stage it can.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from pyspark.util import inheritable_thread_target

from audiencelake.core.errors import MissingData
from audiencelake.core.progress import heartbeat
from audiencelake.models.registry import champion_exists
from audiencelake.models.tracking import configure
from audiencelake.stages.declaration import MODEL, MissingInput, Stage, StageContext, alternatives
from audiencelake.stages.registry import STAGES, named, ordered, writer

log = logging.getLogger("audiencelake.stages")
SKIPPED = "skipped"  # the count a skipped stage reports: why


def missing_input(stage: Stage, ctx: StageContext, stages: dict[str, Stage] = STAGES) -> str | None:
    """Why `stage` cannot run (the first of its `reads` that does not exist, and the stage that writes it), or None."""
    for resource in stage.reads:
        names = alternatives(resource)
        if not any(_exists(ctx, r) for r in names):
            made_by = writer(resource, stages)
            what = f"none of {', '.join(names)} exists" if len(names) > 1 else f"{resource} does not exist"
            return what + (f" (written by stage {made_by})" if made_by else "")
    return None


def _exists(ctx: StageContext, resource: str) -> bool:
    lake = ctx.lake
    if resource.startswith(MODEL):
        return champion_exists(lake, resource.removeprefix(MODEL))
    if "*" in resource:
        return True
    return lake.exists(lake.ref(*resource.split(".", 1)))


def run_stage(name: str, ctx: StageContext, stages: dict[str, Stage] = STAGES) -> dict[str, Any]:
    """Run one stage, logging its counts and seconds.

    Raises:
        MissingInput: something the stage reads does not exist.
    """
    s = named(name, stages)
    if (why := missing_input(s, ctx, stages)) is not None:
        raise MissingInput(f"stage {name}: {why}")
    configure(ctx.lake.settings)  # the process's MLflow: a no-op unless the lake changed (audiencelake.models.tracking)
    started, at = time.perf_counter(), time.time()
    log.info("stage %s: start (run %s, as of %s)", name, ctx.run.run_id, ctx.run.as_of)
    with heartbeat(ctx.lake.spark, f"stage {name}"):
        try:
            counts = s.fn(ctx) or {}
        except MissingData as exc:  # what the stage found it cannot do without, beyond its declared reads
            raise MissingInput(f"stage {name}: {exc}") from None
    ctx.seconds[name] = time.perf_counter() - started
    ctx.windows[name] = (at, time.time())
    log.info("stage %s: done in %.1f s %s", name, ctx.seconds[name], counts)
    return counts


def _run_or_skip(name: str, ctx: StageContext, stages: dict[str, Stage]) -> dict[str, Any]:
    try:
        return run_stage(name, ctx, stages)
    except MissingInput as exc:
        log.warning("%s: skipped", exc)
        return {SKIPPED: str(exc).split(": ", 1)[1]}


def run_pipeline(
    ctx: StageContext, start: str | None = None, stop: str | None = None, stages: dict[str, Stage] = STAGES
) -> dict[str, dict]:
    """Run the stages from `start` through `stop`; returns each stage's counts, in stage order. A stage whose
    inputs do not exist is skipped (its counts say why).

    With `pipeline.parallel_stages` above 1, a stage starts once the stages it depends on are done, up to that many
    at once in driver threads, the earliest listed first: the five models train side by side, and on small data
    one keeps the cores busy while another waits on its fixed costs (job planning, Delta commits, MLflow). A failure
    lets the stages already running finish, starts no other, and is raised.
    """
    started = time.perf_counter()
    try:
        return _run_stages(ctx, ordered(start, stop, stages), stages, ctx.lake.settings.pipeline.parallel_stages)
    finally:
        ctx.elapsed = time.perf_counter() - started


def _run_stages(ctx: StageContext, todo: list[Stage], stages: dict[str, Stage], workers: int) -> dict[str, dict]:
    if workers <= 1:
        return {s.name: _run_or_skip(s.name, ctx, stages) for s in todo}
    names = [s.name for s in todo]
    needs = {s.name: set(s.depends_on) & set(names) for s in todo}  # those before `start` have run
    counts: dict[str, dict] = {}
    running: dict[str, Future] = {}
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stage") as pool:
        try:
            while True:
                ready = [n for n in names if n not in counts and n not in running and needs[n] <= counts.keys()]
                for name in ready[: workers - len(running)] if failure is None else []:
                    running[name] = pool.submit(_in_thread(ctx, name, stages), name, ctx)
                if not running:
                    break
                finished, _ = wait(running.values(), return_when=FIRST_COMPLETED)
                for name in [n for n, f in running.items() if f in finished]:
                    try:
                        counts[name] = running.pop(name).result()
                    except BaseException as exc:  # noqa: BLE001  (raised below, once the running stages are done)
                        log.error("stage %s failed: %s", name, exc)
                        failure = failure or exc
        except BaseException:  # Ctrl-C (or a kill signal turned into an exception) while stages run
            _stop(ctx, running)
            raise
    if failure is not None:
        raise failure
    return {name: counts[name] for name in names}


def _in_thread(ctx: StageContext, name: str, stages: dict[str, Stage]) -> Callable[[str, StageContext], dict]:
    """`_run_or_skip` for a driver thread: with a copy of this thread's Spark local properties of its own (two
    stages sharing one would see each other's execution ids and job descriptions) and the stage's job group."""
    spark = ctx.lake.spark

    def target(stage_name: str, context: StageContext) -> dict[str, Any]:
        spark.sparkContext.setJobGroup(_group(stage_name), f"stage {stage_name}", interruptOnCancel=True)
        return _run_or_skip(stage_name, context, stages)

    return inheritable_thread_target(spark)(target)  # copies the properties now, for this stage alone


def _group(name: str) -> str:
    return f"audiencelake stage {name}"


def _stop(ctx: StageContext, running: dict[str, Future]) -> None:
    """Cancel the running stages' Spark jobs until each stage has ended (a stage between two jobs starts its next
    one, which is cancelled in turn), so an interrupted run stops within a job's cancellation, not a stage's end."""
    log.warning("interrupted: stopping %s", ", ".join(running) or "nothing")
    sc = ctx.lake.spark.sparkContext
    while any(not f.done() for f in running.values()):
        for name in running:
            sc.cancelJobGroup(_group(name))
        wait(running.values(), timeout=0.5)
