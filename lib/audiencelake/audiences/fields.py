"""What audience rules read: the profile's tags and the model scores as of a date, joined into one row per user
with the CRM's consent flags and hashed identifiers, all read at pinned Delta versions (`Inputs`), so a run can be
rebuilt exactly from the versions it recorded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.audiences.definitions import CHANNELS
from audiencelake.core.errors import AudiencelakeError
from audiencelake.core.lake import Lake, TableRef


@dataclass(frozen=True)
class ScoreField:
    table: str  # gold table of the score
    type: str
    expr: str  # aggregate over the table's rows of one user and as-of date
    stage: str  # the stage that writes it


PROPENSITY = "max(CASE WHEN campaign_type = '{c}' THEN score END)"
SCORE_FIELDS: dict[str, ScoreField] = {
    "segment": ScoreField("segments", "int", "max(segment)", "score_segmentation"),
    "segment_description": ScoreField("segments", "string", "max(description)", "score_segmentation"),
    "churn_probability": ScoreField("churn_scores", "double", "max(probability)", "score_churn"),
    "churn_risk_band": ScoreField("churn_scores", "string", "max(risk_band)", "score_churn"),
    "clv_expected_value": ScoreField("clv", "double", "max(expected_value)", "score_clv"),
    "clv_expected_purchases": ScoreField("clv", "double", "max(expected_purchases)", "score_clv"),
    "clv_probability_alive": ScoreField("clv", "double", "max(probability_alive)", "score_clv"),
    **{
        f"propensity_{c}": ScoreField("propensity", "double", PROPENSITY.format(c=c), "score_propensity")
        for c in ("email", "sms", "push", "ads")
    },
    "recommendation_count": ScoreField(
        "recommendations", "long", "count(CASE WHEN reason = 'als' THEN 1 END)", "score_recommendations"
    ),
    "top_recommendation": ScoreField(
        "recommendations",
        "string",
        "try_element_at(array_sort(collect_list("
        "CASE WHEN reason = 'als' THEN named_struct('r', rank, 'i', item_id) END)), 1).i",
        "score_recommendations",
    ),
}

# every table an audience run reads, as (layer, table); their versions are recorded with the run
INPUT_TABLES: tuple[tuple[str, str], ...] = (
    ("gold", "user_profile"),
    ("gold", "tag_catalog"),
    *sorted({("gold", f.table) for f in SCORE_FIELDS.values()}),
    ("silver", "crm_profiles"),
    ("silver", "campaign_touches"),
    ("ops", "suppression"),
    ("silver_restricted", "crm_profiles_pii"),
)


class Inputs:
    """The input tables of an audience run at fixed Delta versions (None: the table did not exist)."""

    def __init__(self, lake: Lake, versions: dict[str, int | None]) -> None:
        self.lake, self.versions = lake, versions

    @classmethod
    def current(cls, lake: Lake) -> Inputs:
        return cls(lake, {f"{layer}.{name}": lake.version(lake.ref(layer, name)) for layer, name in INPUT_TABLES})

    def ref(self, key: str) -> TableRef:
        layer, name = key.split(".", 1)
        return self.lake.ref(layer, name)

    def read(self, key: str) -> DataFrame | None:
        """The table at its pinned version, or None when it did not exist."""
        version = self.versions.get(key)
        if version is None:
            return None
        return self.lake.read_version(self.ref(key), version)


def unavailable(inputs: Inputs, as_of: date, fields: set[str]) -> dict[str, str]:
    """The `fields` (tags and score fields) an audience cannot use as of `as_of`, and why: a score table without
    scores for the date, or a tag the profile could not compute (gold.tag_catalog's `unavailable`)."""
    out: dict[str, str] = {}
    for table in sorted({SCORE_FIELDS[f].table for f in fields if f in SCORE_FIELDS}):
        df = inputs.read(f"gold.{table}")
        if df is None or df.where(F.col("as_of") == F.lit(as_of)).limit(1).count() == 0:
            stage = next(v.stage for v in SCORE_FIELDS.values() if v.table == table)
            out |= {
                f: f"gold.{table} has no scores as of {as_of} (written by stage {stage})"
                for f in fields
                if f in SCORE_FIELDS and SCORE_FIELDS[f].table == table
            }
    catalog = inputs.read("gold.tag_catalog")
    if catalog is not None and "unavailable" in catalog.columns and (tags := sorted(fields - set(SCORE_FIELDS))):
        rows = catalog.where(
            (F.col("as_of") == F.lit(as_of)) & F.col("name").isin(tags) & F.col("unavailable").isNotNull()
        )
        out |= {r["name"]: f"tag {r['name']} is unavailable: {r['unavailable']}" for r in rows.collect()}
    return out


def _scores(inputs: Inputs, as_of: date, fields: list[str]) -> list[DataFrame]:
    by_table: dict[str, list[str]] = {}
    for name in fields:
        by_table.setdefault(SCORE_FIELDS[name].table, []).append(name)
    frames = []
    for table, names in sorted(by_table.items()):
        rows = inputs.read(f"gold.{table}").where(F.col("as_of") == F.lit(as_of))
        frames.append(
            rows.groupBy("user_id").agg(
                *[F.expr(SCORE_FIELDS[n].expr).cast(SCORE_FIELDS[n].type).alias(n) for n in names]
            )
        )
    return frames


def audience_base(inputs: Inputs, as_of: date, fields: list[str]) -> DataFrame:
    """One row per profiled user as of `as_of`: every tag, the requested score fields, the CRM consent flags and
    hashed identifiers (null for people without a CRM record, and for everyone in a lake without a CRM).

    Raises:
        AudiencelakeError: there is no profile as of `as_of`. (Score fields must be available: `unavailable`.)
    """
    profile = inputs.read("gold.user_profile")
    if profile is None or profile.where(F.col("as_of") == F.lit(as_of)).limit(1).count() == 0:
        raise AudiencelakeError(f"gold.user_profile has no profile as of {as_of}; run `audiencelake profile` first")
    base = profile.where(F.col("as_of") == F.lit(as_of)).drop("as_of")
    for scores in _scores(inputs, as_of, [f for f in fields if f in SCORE_FIELDS]):
        base = base.join(scores, "user_id", "left")
    crm = inputs.read("silver.crm_profiles")
    if crm is None:
        nothing = [F.lit(None).cast("boolean").alias(f"_consent_{c}") for c in CHANNELS]
        nothing += [F.lit(None).cast("string").alias(f"_{k}") for k in ("email_hash", "phone_hash")]
        nothing += [F.array().cast("array<string>").alias(f"_{k}es") for k in ("email_hash", "phone_hash")]
        return base.select("*", *nothing)
    # a person merged from several CRM records: an opt-out on any record holds, the latest record's email and
    # phone are the ones to reach, and every record's email and phone hashes are checked against suppression
    latest = F.struct("updated_at", "customer_id")
    contact = crm.groupBy("user_id").agg(
        *[F.bool_and(f"consent_{c}").alias(f"_consent_{c}") for c in CHANNELS],
        F.max_by("email_hash", latest).alias("_email_hash"),
        F.max_by("phone_hash", latest).alias("_phone_hash"),
        F.collect_set("email_hash").alias("_email_hashes"),
        F.collect_set("phone_hash").alias("_phone_hashes"),
    )
    return base.join(contact, "user_id", "left")
