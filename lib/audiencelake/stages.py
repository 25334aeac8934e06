"""The stage registry: every pipeline stage registered once, run in dependency order by `audiencelake run`.

A stage is a function `(StageContext) -> dict[str, int]` (the counts it reports) registered with `@stage`, which
refuses a function without a docstring and keeps it as the stage's description.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from audiencelake.errors import AudiencelakeError
from audiencelake.lake import Lake
from audiencelake.progress import heartbeat
from audiencelake.runs import Run

log = logging.getLogger("audiencelake.stages")

StageFn = Callable[["StageContext"], dict[str, Any]]


@dataclass
class StageContext:
    lake: Lake
    run: Run
    options: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # each stage run with this context: its wall time


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
    """Run the stages from `start` through `stop` in order; returns each stage's counts."""
    return {s.name: run_stage(s.name, ctx) for s in ordered(start, stop)}


def load_stages() -> None:
    """Import the modules that register stages (idempotent)."""
    from audiencelake import activation_stages, model_stages, pipeline_stages  # noqa: F401
