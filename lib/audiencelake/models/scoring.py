"""What every score step shares: load the champion from the registry, stamp rows with the model's name and version,
and replace the as-of partition of the gold table (so a re-run gives the same table)."""

from __future__ import annotations

import logging
from datetime import date

import mlflow.spark
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.core.lake import Lake, check_schema
from audiencelake.core.sql import sql_literal
from audiencelake.models.registry import champion_uri
from audiencelake.models.tracking import registered_name

log = logging.getLogger("audiencelake.models")


def load_spark_champion(lake: Lake, model: str) -> tuple[PipelineModel, str, int]:
    """The champion Spark model with its registered name and version."""
    uri, version = champion_uri(lake, model)
    return mlflow.spark.load_model(uri), registered_name(lake, model), version


def write_scores(lake: Lake, scores: DataFrame, table: str, name: str, version: int, as_of: date) -> int:
    """Add model_name, model_version and as_of, check the contract, replace the as-of partition; returns rows."""
    stamped = (
        scores.withColumn("model_name", F.lit(name))
        .withColumn("model_version", F.lit(version))
        .withColumn("as_of", F.lit(as_of))
    )
    ref = lake.ref("gold", table)
    condition = f"as_of = {sql_literal(as_of)}"
    lake.replace_where(check_schema(stamped, table), ref, condition)
    rows = lake.read(ref).where(condition).count()
    log.info("%s as of %s: %d rows from %s v%d", ref, as_of, rows, name, version)
    return rows
