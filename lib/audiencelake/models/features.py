"""Model inputs from gold.user_profile: the profile as of a date, and the Spark ML stages that turn the configured
feature expressions into a vector (they are part of every logged model, so scoring needs only the profile)."""

from __future__ import annotations

from datetime import date

from pyspark.ml import Transformer
from pyspark.ml.feature import SQLTransformer, StandardScaler, VectorAssembler
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.core.errors import AudiencelakeError
from audiencelake.core.lake import Lake
from audiencelake.models.config import Feature
from audiencelake.tags.profile import compute_profile

FEATURES = "features"


def profile_as_of(lake: Lake, as_of: date) -> DataFrame:
    """The profile as of `as_of` in gold.user_profile (the profile stage's output for the run date).

    Raises:
        AudiencelakeError: the date has no profile.
    """
    ref = lake.ref("gold", "user_profile")
    condition = F.col("as_of") == F.lit(as_of)
    if not lake.exists(ref) or lake.read(ref).where(condition).limit(1).count() == 0:
        raise AudiencelakeError(f"{ref} has no profile as of {as_of}; run `audiencelake profile --as-of {as_of}` first")
    return lake.read(ref).where(condition)


def reference_profile(lake: Lake, as_of: date) -> DataFrame:
    """The profile as of a reference date before the run date, computed from silver as it is now (never the gold
    partition of that date, which may predate late rows): training's features as they were then."""
    return compute_profile(lake, as_of)


def held_out(seed: int, share: float):
    """True for the users kept out of training (a stable hash of user_id and the seed), so a user's rows are all on
    one side of the split."""
    return (F.abs(F.xxhash64("user_id", F.lit(seed))) % 10_000) < int(share * 10_000)


def column(feature: Feature) -> str:
    return f"f__{feature.name}"


def feature_stages(features: list[Feature], scale: bool) -> list[Transformer]:
    """SQL for each feature (a null becomes 0), assembled into `features`, standardised when `scale`."""
    select = ", ".join(f"coalesce(CAST(({f.expr}) AS DOUBLE), 0.0) AS {column(f)}" for f in features)
    stages = [SQLTransformer(statement=f"SELECT *, {select} FROM __THIS__")]
    raw = "raw_features" if scale else FEATURES
    stages.append(VectorAssembler(inputCols=[column(f) for f in features], outputCol=raw))
    if scale:
        stages.append(StandardScaler(inputCol=raw, outputCol=FEATURES, withMean=True, withStd=True))
    return stages
