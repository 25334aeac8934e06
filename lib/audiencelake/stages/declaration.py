"""What a stage is: a function `(StageContext) -> counts`, declared with `@stage(reads=..., writes=...)`.

A stage names what it touches as resources: Delta tables as "layer.name" ("silver.orders"; "silver.*" for every
table of a layer), the MLflow models it registers as "model.<name>", and files outside the lake as "landing.files"
or "exports.files". `reads` are what it needs: `audiencelake run` skips the stage, saying which is missing and which
stage writes it, when one does not exist; a read may be `one_of(...)` several resources ("silver.orders|silver.
clickstream_events"), needed when none exists. `uses` are read when they exist. `writes` are everything it may write.
The registry orders stages by these declarations, and a test checks every table a stage writes is declared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from audiencelake.core.errors import AudiencelakeError, MissingData
from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run

StageFn = Callable[["StageContext"], dict[str, Any]]
MODEL = "model."  # a registered model's resource prefix: "model.churn"
LANDING_FILES = "landing.files"  # the landing folder's files (synth writes them, ingest reads them)
EXPORT_FILES = "exports.files"  # the exported audiences' files and manifests
REPORT_FILES = "reports.files"  # the HTML report
# the silver tables of schemas/silver (a test keeps the list equal to the contracts)
SILVER = ("silver.clickstream_events", "silver.orders", "silver.crm_profiles", "silver.campaign_touches",
          "silver.social_interactions")  # fmt: skip


class MissingInput(MissingData):
    """A stage's input does not exist: a declared read, or what the stage finds it needs (the runner skips it)."""


def one_of(*resources: str) -> str:
    """A read satisfied by any of `resources` (a stage that works with whichever exist)."""
    return "|".join(resources)


def alternatives(resource: str) -> tuple[str, ...]:
    """The resources a read names: itself, or those of a `one_of`."""
    return tuple(resource.split("|"))


@dataclass
class StageContext:
    lake: Lake
    run: Run
    options: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # each stage run with this context: its wall time
    windows: dict[str, tuple[float, float]] = field(default_factory=dict)  # each stage's start and end (epoch s)
    elapsed: float | None = None  # the last `run_pipeline`'s wall time (stages may overlap: less than their sum)


@dataclass(frozen=True)
class Stage:
    name: str
    fn: StageFn
    description: str
    reads: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()  # derived by the registry from the declarations of the stages listed before

    @property
    def registers(self) -> tuple[str, ...]:
        """The models the stage registers in MLflow."""
        return tuple(w.removeprefix(MODEL) for w in self.writes if w.startswith(MODEL))


def stage(
    name: str, *, reads: tuple[str, ...] = (), uses: tuple[str, ...] = (), writes: tuple[str, ...] = ()
) -> Callable[[StageFn], Stage]:
    """Declare a stage: its function's first docstring line is its description.

    Raises:
        AudiencelakeError: the function has no docstring, or a resource is not "layer.name".
    """

    def declare(fn: StageFn) -> Stage:
        if not (fn.__doc__ or "").strip():
            raise AudiencelakeError(f"stage '{name}': {fn.__qualname__} needs a docstring (it is the description)")
        for resource in (*(r for read in reads for r in alternatives(read)), *uses, *writes):
            layer, _, table = resource.partition(".")
            if not layer or not table:
                raise AudiencelakeError(f"stage '{name}': resource '{resource}' is not 'layer.name'")
        description = fn.__doc__.strip().splitlines()[0]
        return Stage(name, fn, description, tuple(reads), tuple(uses), tuple(writes))

    return declare
