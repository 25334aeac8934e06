"""Audience runs: build, record and rebuild. A run records each audience's definition and the Delta versions of
every input in ops.audience_runs; building the same run id again (a re-run, a crash recovery, `audience rebuild`)
reads those versions and definitions, so it yields the same members whatever changed since."""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.audiences.build import MEMBER_COLUMNS, Built, build_audiences
from audiencelake.audiences.definitions import Definitions
from audiencelake.audiences.fields import Inputs
from audiencelake.audiences.loader import definitions_from, load_audiences
from audiencelake.core.errors import AudiencelakeError, ConfigError, MissingData
from audiencelake.core.lake import Lake, check_schema
from audiencelake.core.runs import IDENTIFIER, Run
from audiencelake.core.sql import sql_literal
from audiencelake.core.stage_inputs import library_version, record, recorded_run, unchanged

log = logging.getLogger("audiencelake.audiences")
STAGE = "audiences"


@dataclass(frozen=True)
class Recorded:
    """What ops.audience_runs holds for one run: its date, input versions and the definitions it used."""

    as_of: object
    inputs: dict[str, int | None]
    definitions: Definitions
    seq: dict[str, int]


def current_definitions(lake: Lake) -> Definitions:
    settings = lake.settings
    return load_audiences(
        settings.activation.audiences, settings.profile.tags, None, settings.overrides("audiences"),
        settings.overrides("tags"),
    )  # fmt: skip


def recorded(lake: Lake, run_id: str) -> Recorded | None:
    """The recorded state of a run, or None when no audience was built under that run id."""
    ref = lake.ref("ops", "audience_runs")
    if not lake.exists(ref):
        return None
    rows = lake.read(ref).where(F.col("run_id") == run_id).collect()  # one row per audience of the run
    if not rows:
        return None
    specs = {r["audience"]: json.loads(r["definition"]) for r in rows}
    raw = {
        "destinations": {k: v for s in specs.values() for k, v in s["destinations"].items()},
        "audiences": {name: s["audience"] for name, s in specs.items()},
    }
    return Recorded(
        rows[0]["as_of"],
        json.loads(rows[0]["inputs"]),
        definitions_from(
            raw,
            f"ops.audience_runs[run_id={run_id}]",
            lake.settings.profile.tags,
            None,
            lake.settings.overrides("tags"),
        ),  # fmt: skip
        {r["audience"]: int(r["seq"]) for r in rows},
    )


def _definition_json(definitions: Definitions, name: str) -> str:
    audience = definitions.audiences[name]
    spec = audience.model_dump(by_alias=True, exclude={"name"}, exclude_defaults=False, mode="json")
    dests = {d: definitions.destinations[d].model_dump(mode="json") for d in audience.destinations}
    return json.dumps({"audience": spec, "destinations": dests}, sort_keys=True)


def _next_seq(lake: Lake, names: list[str]) -> dict[str, int]:
    ref = lake.ref("ops", "audience_runs")
    if not lake.exists(ref):
        return {n: 1 for n in names}
    top = dict(lake.read(ref).groupBy("audience").agg(F.max("seq")).collect())
    return {n: int(top.get(n) or 0) + 1 for n in names}


@dataclass
class AudienceRun:
    """A run's audiences built in memory, with the definitions and input versions they came from."""

    built: list[Built]
    definitions: Definitions
    inputs: Inputs
    before: Recorded | None
    skipped: dict[str, str]  # audience -> why it could not be built (`build.skipped_audiences`)


def build_run(lake: Lake, run: Run, names: list[str] | None = None) -> AudienceRun:
    """Build the run's audiences in memory: from its recorded versions and definitions when the run id was built
    before, else from the current tables and conf/audiences.yaml. Nothing is written.

    Raises:
        AudiencelakeError: the run id was built as of another date, lacks a requested audience, or its recorded
            versions can no longer be read.
    """
    before = recorded(lake, run.run_id)
    if before is not None:
        if before.as_of != run.as_of:
            raise AudiencelakeError(
                f"run '{run.run_id}' built its audiences as of {before.as_of}, not {run.as_of}; use --as-of "
                f"{before.as_of} or another run id"
            )
        if missing := sorted(set(names or before.definitions.audiences) - set(before.definitions.audiences)):
            raise AudiencelakeError(f"run '{run.run_id}' has no audience {missing[0]!r}; it built {sorted(before.seq)}")
        _warn_if_changed(lake, before.definitions, run.run_id)
        definitions, inputs = before.definitions, Inputs(lake, before.inputs)
    else:
        definitions, inputs = current_definitions(lake), Inputs.current(lake)
    _check_versions_readable(inputs)
    built, skipped = build_audiences(definitions, inputs, run.run_id, run.as_of, names)
    return AudienceRun(built, definitions, inputs, before, skipped)


def _warn_if_changed(lake: Lake, recorded_definitions: Definitions, run_id: str) -> None:
    try:
        current = current_definitions(lake)
    except ConfigError as exc:  # a replay needs only what the run recorded
        log.warning("run %s is built from its recorded definitions; the current ones do not load: %s", run_id, exc)
        return
    for name in recorded_definitions.audiences:
        if name in current.audiences and current.version(name) != recorded_definitions.version(name):
            log.warning("%s: conf changed since run %s; building with the definition it recorded", name, run_id)


def _check_versions_readable(inputs: Inputs) -> None:
    for key, version in inputs.versions.items():
        if version is None:
            continue
        try:
            inputs.read(key).limit(0).collect()
        except Exception as exc:  # Delta raises JVM errors when a version was vacuumed away
            raise AudiencelakeError(f"{key} version {version} can no longer be read ({type(exc).__name__}); "
                                    "it may have been vacuumed") from None  # fmt: skip


def write_run(lake: Lake, run: Run, result: AudienceRun) -> None:
    """Replace the run's members of each audience in gold.audience_members and record the run.

    Raises:
        ConfigError: the run id has characters that are not safe in a table predicate.
    """
    if not IDENTIFIER.fullmatch(run.run_id):
        raise ConfigError("--run-id", run.run_id, f"use letters, digits and . _ : - only ({IDENTIFIER.pattern})")
    if not result.built:  # every audience skipped: nothing to write
        return
    members_ref = lake.ref("gold", "audience_members")
    names = [b.audience.name for b in result.built]
    seqs = (result.before.seq if result.before else {}) | {
        n: s for n, s in _next_seq(lake, names).items() if not result.before or n not in result.before.seq
    }
    everyone = functools.reduce(DataFrame.unionByName, [b.members.select(*MEMBER_COLUMNS) for b in result.built])
    condition = f"audience IN ({', '.join(map(sql_literal, names))}) AND run_id = {sql_literal(run.run_id)}"
    lake.replace_where(check_schema(everyone, "audience_members"), members_ref, condition)  # one commit for all
    rows = []
    for b in result.built:
        name = b.audience.name
        rows.append((
            run.run_id, name, b.version, run.as_of, seqs[name], b.audience.channel, b.rule,
            _definition_json(result.definitions, name), json.dumps(result.inputs.versions, sort_keys=True),
            json.dumps(b.funnel), b.treatment, b.holdout,
        ))  # fmt: skip
    runs_ref = lake.ref("ops", "audience_runs")
    lake.ensure(runs_ref)
    df = lake.spark.createDataFrame(rows, lake.read(runs_ref).schema)
    lake.merge_upsert(df, runs_ref, ["run_id", "audience"])


def run_audiences(lake: Lake, run: Run, names: list[str] | None = None) -> AudienceRun:
    """Build the audiences of the run and write their members."""
    result = build_run(lake, run, names)
    write_run(lake, run, result)
    for b in result.built:
        log.info("%s: %d treatment, %d holdout; funnel %s", b.audience.name, b.treatment, b.holdout, b.funnel)
    return result


def _activation_state(definitions: Definitions, versions: dict) -> dict:
    """What a new run's audiences are a function of: the definitions, the inputs' Delta versions and the library."""
    return {
        "definitions": {name: _definition_json(definitions, name) for name in definitions.audiences},
        "inputs": versions,
        "library": library_version(),
    }


def activate(lake: Lake, run: Run) -> dict:
    """The `audiences` stage: build the run's audiences and write their members, unless the last run built for the
    same date read the same definitions and input versions with the same library. Then its audiences are the ones
    a build would give again, and they stay this run's activation (`activated_run`): running the pipeline again
    with nothing new adds no members, no run and no export. A run id built before is built again from what it
    recorded (`build_run`: a re-run after a crash) and becomes the date's activation."""
    key = run.as_of.isoformat()
    if recorded(lake, run.run_id) is None:
        state = _activation_state(current_definitions(lake), Inputs.current(lake).versions)
        if (counts := unchanged(lake, STAGE, key, state)) is not None:
            kept = recorded_run(lake, STAGE, key)
            log.info("audiences as of %s: definitions and inputs as run %s built them; its audiences kept", key, kept)
            return {**counts, "kept": 1}
    result = run_audiences(lake, run)
    if not result.built:  # nothing activated: not recorded, so the next run tries again
        reasons = "; ".join(f"{name}: {why}" for name, why in result.skipped.items())
        raise MissingData(f"no audience can be built as of {run.as_of} ({reasons})")
    counts = {
        "audiences": len(result.built),
        "treatment": sum(b.treatment for b in result.built),
        "holdout": sum(b.holdout for b in result.built),
        "skipped": len(result.skipped),
    }
    record(lake, STAGE, key, _activation_state(result.definitions, result.inputs.versions), counts, run)
    return counts


def activated_run(lake: Lake, run: Run) -> str:
    """The audience run a pipeline run activates: its own when it built audiences, else the run whose audiences the
    `audiences` stage kept for its date (the date's latest activation).

    Raises:
        MissingData: neither exists.
    """
    if recorded(lake, run.run_id) is not None:
        return run.run_id
    kept = recorded_run(lake, STAGE, run.as_of.isoformat())
    if kept is None or recorded(lake, kept) is None:
        raise MissingData(f"run '{run.run_id}' built no audiences and ops.stage_inputs names no audience run "
                                f"as of {run.as_of}; run `audiencelake audiences` first")  # fmt: skip
    return kept


def rebuild(lake: Lake, run_id: str) -> tuple[AudienceRun, dict[str, tuple[int, int]]]:
    """Rebuild a recorded run from the Delta versions and definitions it recorded and compare with its members in
    gold.audience_members; returns the rebuilt run and audience -> (members, rows that differ). Nothing is written.

    Raises:
        AudiencelakeError: the run id built no audiences.
    """
    state = recorded(lake, run_id)
    if state is None:
        raise AudiencelakeError(f"ops.audience_runs has no run '{run_id}'")
    result = build_run(lake, Run(run_id=run_id, as_of=state.as_of))
    stored = lake.read(lake.ref("gold", "audience_members")).where(F.col("run_id") == run_id)
    out = {}
    for b in result.built:
        now = b.members.select(*MEMBER_COLUMNS)
        then = stored.where(F.col("audience") == b.audience.name).select(*MEMBER_COLUMNS)
        out[b.audience.name] = (now.count(), now.exceptAll(then).count() + then.exceptAll(now).count())
    return result, out


def overlaps(built: list[Built], name: str) -> dict[str, int]:
    """Members (either group) that audience `name` shares with each other audience built beside it."""
    mine = next(b for b in built if b.audience.name == name).members.select("user_id")
    return {b.audience.name: mine.join(b.members.select("user_id"), "user_id").count()
            for b in built if b.audience.name != name}  # fmt: skip
