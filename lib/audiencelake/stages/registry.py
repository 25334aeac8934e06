"""The stage registry: every stage listed once, in the order `audiencelake run` runs them.

Dependencies are derived from the declarations (`declaration`), not from import order: a stage depends on the
stages listed before it that write what it reads, uses or writes, or read what it writes. `resolve` checks the
list when it is built: names are unique and everything a stage needs is written by a stage listed before it.
"""

from __future__ import annotations

from dataclasses import replace
from fnmatch import fnmatchcase

from audiencelake.core.errors import AudiencelakeError
from audiencelake.stages import activation, models, pipeline, report
from audiencelake.stages.declaration import Stage, alternatives

# written by every stage that keeps its outputs between runs, each in its own partition (`core.stage_inputs`): no
# order between stages comes from it
BOOKKEEPING = ("ops.stage_inputs",)


def overlaps(a: str, b: str) -> bool:
    """Whether two resources ("layer.name", either may be a pattern) can name the same thing."""
    return fnmatchcase(a, b) or fnmatchcase(b, a)


def _touch(xs: tuple[str, ...], ys: tuple[str, ...]) -> bool:
    return any(overlaps(x, y) for x in xs for y in ys if x not in BOOKKEEPING and y not in BOOKKEEPING)


def resolve(listed: list[Stage]) -> dict[str, Stage]:
    """The stages by name, in listed order, each with `depends_on` derived from the declarations (only the direct
    ones: a stage reached through another dependency is left out).

    Raises:
        AudiencelakeError: a name is listed twice, or a stage reads what no stage listed before it writes.
    """
    out: dict[str, Stage] = {}
    for s in listed:
        if s.name in out:
            raise AudiencelakeError(f"stage '{s.name}' is listed twice")
        earlier = list(out.values())
        for need in s.reads:
            if not any(_touch(alternatives(need), _named(e.writes)) for e in earlier):
                raise AudiencelakeError(f"stage '{s.name}' reads {need}, which no stage listed before it writes")
        deps = [
            e.name
            for e in earlier
            if _touch(e.writes, (*_read(s), *s.uses, *s.writes)) or _touch((*_read(e), *e.uses), s.writes)
        ]
        reached = {r for d in deps for r in _ancestors(out, d)}
        out[s.name] = replace(s, depends_on=tuple(d for d in deps if d not in reached))
    return out


def _read(s: Stage) -> tuple[str, ...]:
    """Every resource the stage's `reads` name (each alternative of a `one_of`)."""
    return tuple(r for read in s.reads for r in alternatives(read))


def _named(resources: tuple[str, ...]) -> tuple[str, ...]:
    """The resources but those of every layer ("*.*": optimize may compact any table, its rows unchanged)."""
    return tuple(r for r in resources if not r.startswith("*"))


def _ancestors(stages: dict[str, Stage], name: str) -> set[str]:
    seen: set[str] = set()
    todo = list(stages[name].depends_on)
    while todo:
        if (n := todo.pop()) not in seen:
            seen.add(n)
            todo += stages[n].depends_on
    return seen


STAGES: dict[str, Stage] = resolve(
    [
        pipeline.synth,
        pipeline.ingest,
        pipeline.identity,
        pipeline.quality,
        pipeline.optimize,
        pipeline.profile,
        *models.STAGES,
        activation.audiences,
        activation.export,
        activation.measure,
        activation.attribution,
        report.report,
    ]
)


def ordered(start: str | None = None, stop: str | None = None, stages: dict[str, Stage] = STAGES) -> list[Stage]:
    """The stages from `start` through `stop`, in registry order.

    Raises:
        AudiencelakeError: `start` or `stop` is not a stage, or `stop` comes before `start`.
    """
    names = list(stages)
    for bound in (start, stop):
        if bound is not None and bound not in stages:
            raise AudiencelakeError(f"unknown stage '{bound}'; stages: {', '.join(names)}")
    first = names.index(start) if start else 0
    last = names.index(stop) if stop else len(names) - 1
    if last < first:
        raise AudiencelakeError(f"stage '{stop}' runs before '{start}'")
    return [stages[n] for n in names[first : last + 1]]


def named(name: str, stages: dict[str, Stage] = STAGES) -> Stage:
    """The stage called `name`.

    Raises:
        AudiencelakeError: there is none.
    """
    if name not in stages:
        raise AudiencelakeError(f"unknown stage '{name}'; stages: {', '.join(stages)}")
    return stages[name]


def writer(resource: str, stages: dict[str, Stage] = STAGES) -> str | None:
    """The first stage that writes `resource` (any alternative of a `one_of`) by name or by a layer's pattern
    ("silver.*"), or None."""
    for s in stages.values():
        if any(overlaps(r, w) for r in alternatives(resource) for w in _named(s.writes)):
            return s.name
    return None
