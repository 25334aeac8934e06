"""The stage registry: every pipeline stage registered once, run in dependency order by `audiencelake run`.

A stage is a function `(StageContext) -> dict[str, int]` (the counts it reports) registered with `@stage`, which
refuses a function without a docstring and keeps it as the stage's description.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from pyspark.util import inheritable_thread_target

from audiencelake.core.errors import AudiencelakeError
from audiencelake.core.lake import Lake
from audiencelake.core.progress import heartbeat
from audiencelake.core.runs import Run

log = logging.getLogger("audiencelake.stages")

StageFn = Callable[["StageContext"], dict[str, Any]]


@dataclass
class StageContext:
    lake: Lake
    run: Run
    options: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # each stage run with this context: its wall time
    elapsed: float | None = None  # the last `run_pipeline`'s wall time (stages may overlap: less than their sum)


@dataclass(frozen=True)
class Stage:
    name: str
    fn: StageFn
    depends_on: tuple[str, ...]
    description: str


REGISTRY: dict[str, Stage] = {}


def stage(name: str, depends_on: tuple[str, ...] = ()) -> Callable[[StageFn], StageFn]:
    """Register a stage.

    Raises:
        AudiencelakeError: the function has no docstring, the name is taken, or a dependency is unknown.
    """

    def register(fn: StageFn) -> StageFn:
        if not (fn.__doc__ or "").strip():
            raise AudiencelakeError(f"stage '{name}': {fn.__qualname__} needs a docstring (it is the description)")
        if name in REGISTRY:
            raise AudiencelakeError(f"stage '{name}' is registered twice")
        for dep in depends_on:
            if dep not in REGISTRY:
                raise AudiencelakeError(f"stage '{name}' depends on unknown stage '{dep}'")
        REGISTRY[name] = Stage(name, fn, tuple(depends_on), fn.__doc__.strip().splitlines()[0])
        return fn

    return register


def ordered(start: str | None = None, stop: str | None = None) -> list[Stage]:
    """Stages in dependency order (registration order among equals), from `start` through `stop`.

    Raises:
        AudiencelakeError: `start` or `stop` is not a stage, or `stop` comes before `start`.
    """
    load_stages()
    order: list[str] = []

    def visit(name: str) -> None:
        for dep in REGISTRY[name].depends_on:
            visit(dep)
        if name not in order:
            order.append(name)

    for name in REGISTRY:
        visit(name)
    for bound in (start, stop):
        if bound is not None and bound not in REGISTRY:
            raise AudiencelakeError(f"unknown stage '{bound}'; stages: {', '.join(order)}")
    first = order.index(start) if start else 0
    last = order.index(stop) if stop else len(order) - 1
    if last < first:
        raise AudiencelakeError(f"stage '{stop}' runs before '{start}'")
    return [REGISTRY[n] for n in order[first : last + 1]]


def run_stage(name: str, ctx: StageContext) -> dict[str, Any]:
    """Run one stage, logging its counts and seconds."""
    load_stages()
    if name not in REGISTRY:
        raise AudiencelakeError(f"unknown stage '{name}'; stages: {', '.join(REGISTRY)}")
    started = time.perf_counter()
    log.info("stage %s: start (run %s, as of %s)", name, ctx.run.run_id, ctx.run.as_of)
    with heartbeat(ctx.lake.spark, f"stage {name}"):
        counts = REGISTRY[name].fn(ctx) or {}
    ctx.seconds[name] = time.perf_counter() - started
    log.info("stage %s: done in %.1f s %s", name, ctx.seconds[name], counts)
    return counts


def run_pipeline(ctx: StageContext, start: str | None = None, stop: str | None = None) -> dict[str, dict]:
    """Run the stages from `start` through `stop`; returns each stage's counts, in stage order.

    With `pipeline.parallel_stages` above 1, a stage starts once the stages it depends on are done, up to that many
    at once in driver threads, the earliest registered first: the five models train side by side, and on small data
    one keeps the cores busy while another waits on its fixed costs (job planning, Delta commits, MLflow). A failure
    lets the stages already running finish, starts no other, and is raised.
    """
    started = time.perf_counter()
    try:
        return _run_stages(ctx, ordered(start, stop), ctx.lake.settings.pipeline.parallel_stages)
    finally:
        ctx.elapsed = time.perf_counter() - started


def _run_stages(ctx: StageContext, stages: list[Stage], workers: int) -> dict[str, dict]:
    if workers <= 1:
        return {s.name: run_stage(s.name, ctx) for s in stages}
    names = [s.name for s in stages]
    needs = {s.name: set(s.depends_on) & set(names) for s in stages}  # those before `start` have run
    counts: dict[str, dict] = {}
    running: dict[str, Future] = {}
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stage") as pool:
        try:
            while True:
                ready = [n for n in names if n not in counts and n not in running and needs[n] <= counts.keys()]
                for name in ready[: workers - len(running)] if failure is None else []:
                    running[name] = pool.submit(_in_thread(ctx, name), name, ctx)
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


def _in_thread(ctx: StageContext, name: str) -> Callable[[str, StageContext], dict[str, Any]]:
    """`run_stage` for a driver thread: with a copy of this thread's Spark local properties of its own (two stages
    sharing one would see each other's execution ids and job descriptions) and the stage's job group."""
    spark = ctx.lake.spark

    def target(stage_name: str, context: StageContext) -> dict[str, Any]:
        spark.sparkContext.setJobGroup(_group(stage_name), f"stage {stage_name}", interruptOnCancel=True)
        return run_stage(stage_name, context)

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


def load_stages() -> None:
    """Import the modules that register stages (idempotent)."""
    from audiencelake import activation_stages, model_stages, pipeline_stages  # noqa: F401
