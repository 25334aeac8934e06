"""The profile job: silver tables -> gold.user_profile (wide), gold.user_tags (long), gold.tag_catalog (coverage).

The tags are computed from the silver tables that exist: a tag whose source's table is missing (a shop without a
CRM, or without clickstream), or that reads such a tag, is unavailable. Its column is null in gold.user_profile
(the table keeps every declared column, so audiences and models see one schema whatever the sources) and
gold.tag_catalog says why; the log and the stage's counts list them.

Silver is read once per source (`compile.aggregate_all`), at the Delta versions the run records; the per-user
aggregates are written to a work table (one per as-of date, replaced by each run for that date) so that computing
population cut points and the outputs read that small table, never silver again. (Persisting them in the session
instead saves a commit, but changes the order of the rows in gold.user_profile; with that order the segmentation
test recovered the planted segments at 0.73 ARI instead of at least 0.8, so k-means depends on its rows' order.)
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass
from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.core.contracts import contract
from audiencelake.core.errors import MissingData
from audiencelake.core.lake import WORK, Lake, check_schema
from audiencelake.core.progress import Steps
from audiencelake.core.runs import Run
from audiencelake.core.sql import sql_literal
from audiencelake.core.stage_inputs import library_version, record, unchanged
from audiencelake.tags.compile import aggregate_all
from audiencelake.tags.coverage import tag_catalog
from audiencelake.tags.definitions import Catalogue
from audiencelake.tags.evaluate import Evaluator
from audiencelake.tags.loader import load_catalogue

log = logging.getLogger("audiencelake.tags")
WORK_TABLE = "profile_aggregates"
STAGE = "profile"
OUTPUTS = ("user_profile", "user_tags", "tag_catalog")


@dataclass(frozen=True)
class ProfileResult:
    users: int
    tags: int
    tag_values: int
    unavailable_tags: int = 0


@dataclass(frozen=True)
class Computable:
    """The tags of a catalogue that the lake's silver tables can give, and why the others cannot."""

    catalogue: Catalogue  # every tag
    available: Catalogue  # those whose sources exist
    unavailable: dict[str, str]  # tag -> why


def computable(catalogue: Catalogue, versions: dict[str, int | None]) -> Computable:
    """Which of the catalogue's tags the silver tables can give, as `versions` (table -> Delta version, None when
    missing: `profile_inputs`) record them.

    Raises:
        MissingData: none can (the stage is skipped with this line).
    """
    available, unavailable = catalogue.available({t for t, v in versions.items() if v is not None})
    if not available.tags:
        first = next(iter(unavailable.items()))
        raise MissingData(f"no tag of {catalogue.file} can be computed (as {first[0]}: {first[1]})")
    return Computable(catalogue, available, unavailable)


def catalogue_for(lake: Lake) -> Catalogue:
    """The tag catalogue the lake's settings name (default `conf/tags.yaml`)."""
    return load_catalogue(lake.settings.profile.tags, lake.settings.overrides("tags"))


def as_of_condition(as_of: date) -> str:
    return f"as_of = {sql_literal(as_of)}"


def long_form(profile: DataFrame, catalogue: Catalogue) -> DataFrame:
    """One row per user and non-null tag: (user_id, tag, value as text, as_of)."""

    def text(name: str, type_name: str):
        col = F.col(f"`{name}`")
        return F.to_json(col) if type_name.startswith("array") else col.cast("string")

    pairs = F.array(
        *[F.struct(F.lit(t.name).alias("tag"), text(t.name, t.type).alias("value")) for t in catalogue.tags]
    )
    return (
        profile.select("user_id", "as_of", F.explode(pairs).alias("p"))
        .select("user_id", F.col("p.tag").alias("tag"), F.col("p.value").alias("value"), "as_of")
        .where(F.col("value").isNotNull())
    )


def build_profile(lake: Lake, run: Run, catalogue: Catalogue | None = None) -> ProfileResult:
    """Compute every tag as of `run.as_of` and replace that date's partition of the three gold tables.

    Raises:
        ConfigError: the catalogue is invalid, or a tag's definition cannot give its declared type.
        MissingData: no tag can be computed from the silver tables there are.
    """
    catalogue = catalogue or catalogue_for(lake)
    as_of = run.as_of
    inputs = profile_inputs(lake, catalogue)
    tags = computable(catalogue, inputs["silver"])  # the tables the recorded inputs name, at those versions
    if (counts := unchanged(lake, STAGE, as_of.isoformat(), {**inputs, "gold": _gold_versions(lake)})) is not None:
        log.info("profile as of %s: its silver tables, catalogue and gold tables are as it left them; kept", as_of)
        return ProfileResult(**counts)
    if tags.unavailable:
        log.warning(
            "profile as of %s: %d of %d tags unavailable: %s", as_of, len(tags.unavailable),
            len(tags.catalogue.tags), "; ".join(f"{t} ({why})" for t, why in tags.unavailable.items()),
        )  # fmt: skip
    work = lake.ref(WORK, f"{WORK_TABLE}_{as_of:%Y%m%d}")  # one per date: runs for two dates never mix
    steps = Steps("profile", log)  # the aggregation (silver's one read) against the rest, for benchmarks
    with steps("aggregation"):  # silver read at the versions recorded with the outputs (whatever a stream appended)
        lake.overwrite(aggregate_all(lake, tags.available, as_of, inputs["silver"]), work)
    return _write_profile(lake, run, tags, inputs, lake.read(work), steps)


def _write_profile(
    lake: Lake, run: Run, tags: Computable, inputs: dict, aggregates: DataFrame, steps: Steps
) -> ProfileResult:
    """Evaluate the tags over the per-user `aggregates`, replace the date's partition of the three gold tables and
    record the inputs they were built from."""
    as_of, catalogue = run.as_of, tags.catalogue
    condition = as_of_condition(as_of)
    profile_ref, tags_ref = lake.ref("gold", "user_profile"), lake.ref("gold", "user_tags")
    with steps("user_profile"):  # the tags evaluated and written
        profile, details = _evaluated(tags, as_of, aggregates)
        lake.replace_where(profile, profile_ref, condition, merge_schema=True)
    written = lake.read(profile_ref).where(condition)
    with steps("user_tags"):
        lake.replace_where(check_schema(long_form(written, catalogue), "user_tags"), tags_ref, condition)
    with steps("tag_catalog"):
        coverage = tag_catalog(
            written, lake.read(tags_ref).where(condition), catalogue, details, as_of, tags.unavailable
        )
        lake.replace_where(check_schema(coverage.frame, "tag_catalog"), lake.ref("gold", "tag_catalog"), condition)
    users, values = coverage.users, coverage.values  # counted by the catalogue's pass over the written profile
    log.info("profile as of %s: %d users, %d tags, %d tag values", as_of, users, len(catalogue.tags), values)
    result = ProfileResult(users, len(catalogue.tags), values, len(tags.unavailable))
    with steps("record"):
        record(lake, STAGE, as_of.isoformat(), {**inputs, "gold": _gold_versions(lake)}, asdict(result), run)
    return result


def compute_profile(lake: Lake, as_of: date, catalogue: Catalogue | None = None) -> DataFrame:
    """The profile as of `as_of` computed from silver as it is now (the rows `build_profile` writes for that date),
    without writing anything: how training reads the profiles of its earlier reference dates. The per-user
    aggregates are kept in the session (`localCheckpoint`): nothing is written, so two trainings of one date at once
    (a bundle's parallel tasks) never write the same table. Within one process they are computed once per date
    and inputs (silver's versions, the catalogue, the library): churn's reference date is also propensity's first
    snapshot, and the two may train at once."""
    catalogue = catalogue or catalogue_for(lake)
    inputs = profile_inputs(lake, catalogue)
    tags = computable(catalogue, inputs["silver"])
    key = (lake.spark.sparkContext.applicationId, lake.ref("silver", "").location, as_of,
           json.dumps(inputs, sort_keys=True, default=str))  # fmt: skip
    with _KEYS:
        lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    with lock:  # a second thread asking for the same key waits for the first one's aggregates
        aggregates = _COMPUTED.get(key)
        if aggregates is None:
            aggregates = aggregate_all(lake, tags.available, as_of, inputs["silver"]).localCheckpoint()
            with _KEYS:
                _COMPUTED[key] = aggregates
                while len(_COMPUTED) > KEPT_PROFILES:  # the oldest go (the session frees their blocks)
                    oldest = next(iter(_COMPUTED))
                    del _COMPUTED[oldest], _KEY_LOCKS[oldest]
    return _evaluated(tags, as_of, aggregates)[0]


KEPT_PROFILES = 4  # computed profiles' aggregates kept per process (a training run asks for up to three dates)
_COMPUTED: dict[tuple, DataFrame] = {}
_KEY_LOCKS: dict[tuple, threading.Lock] = {}
_KEYS = threading.Lock()


def _evaluated(tags: Computable, as_of: date, aggregates: DataFrame) -> tuple[DataFrame, dict]:
    """(every tag as of `as_of` from the per-user `aggregates`, in gold.user_profile's columns, unavailable tags as
    typed nulls; the evaluator's details for the tag catalogue)."""
    evaluated = Evaluator(tags.available, as_of).evaluate(aggregates)
    profile = evaluated.frame.withColumn("as_of", F.lit(as_of)).where(F.col("user_id").isNotNull())
    fixed = check_schema(profile, "user_profile")
    columns = [
        F.lit(None).cast(t.type).alias(t.name) if t.name in tags.unavailable else F.col(f"`{t.name}`")
        for t in tags.catalogue.tags
    ]
    return profile.select(*fixed.columns, *columns), evaluated.details


def _gold_versions(lake: Lake) -> dict:
    """The Delta versions of the tables a profile writes and their contracts: a build is kept only while no one
    else (a profile for another date, an erasure, a table dropped) has written them since, and their schemas
    are the ones it wrote."""
    return {t: [lake.version(lake.ref("gold", t)), contract(t).model_dump(mode="json")] for t in OUTPUTS}


def profile_inputs(lake: Lake, catalogue: Catalogue) -> dict:
    """What a profile is computed from: the Delta versions of the silver tables the catalogue reads, the catalogue
    and the library's version (`stage_inputs`: equal inputs, equal profile for a date)."""
    tables = sorted({source.table for source in catalogue.sources.values()})
    return {
        "silver": {t: lake.version(lake.ref("silver", t)) for t in tables},
        "catalogue": catalogue.model_dump(mode="json", exclude={"file"}),
        "library": library_version(),
    }
