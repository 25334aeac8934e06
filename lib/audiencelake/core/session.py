"""The one SparkSession factory: Delta Lake extension and catalog, UTC session time, settings from config."""

from __future__ import annotations

import glob
import os
import sys

from pyspark.sql import SparkSession

from audiencelake.core.config import Settings
from audiencelake.core.errors import ConfigError

DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}
BASE_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.databricks.delta.schema.autoMerge.enabled": "false",
}


def delta_jars(settings: Settings) -> list[str]:
    """The Delta Lake jars to put on the classpath when `spark.delta_jars` is `local`.

    Raises:
        ConfigError: the jars folder holds no delta-spark jar (run `make setup`).
    """
    jars_dir = settings.resolve(settings.spark.jars_dir)
    jars = sorted(glob.glob(os.path.join(jars_dir, "*.jar")))
    if not any(os.path.basename(j).startswith("delta-spark_") for j in jars):
        raise ConfigError(
            f"conf/{settings.env}.yaml", "spark.jars_dir", f"no delta-spark jar in {jars_dir}; run `make setup`"
        )
    return jars


def table_defaults(settings: Settings) -> dict[str, str]:
    """`lake.table_properties` as Delta's session defaults for new tables (`delta.x` -> `...defaults.x`)."""
    prefix = "spark.databricks.delta.properties.defaults."
    return {prefix + key.removeprefix("delta."): value for key, value in settings.lake.table_properties.items()}


def session_conf(settings: Settings) -> dict[str, str]:
    """All Spark settings the factory applies, in order of precedence (later wins)."""
    conf = {**BASE_CONF, **DELTA_CONF, "spark.app.name": settings.spark.app_name, **table_defaults(settings)}
    if settings.spark.master:
        conf["spark.master"] = settings.spark.master
    if settings.spark.delta_jars == "local":
        conf["spark.jars"] = ",".join(delta_jars(settings))
    conf.update(settings.spark.conf)
    return conf


def build_session(settings: Settings) -> SparkSession:
    """Return the active SparkSession, configured for `settings`.

    On Databricks and on clusters started with the Delta jars (`spark.delta_jars: provided`) the session already
    exists and only runtime settings are applied.
    """
    if (settings.spark.master or "").startswith("local"):
        # Local Python workers run this interpreter (the one with audiencelake installed), not whatever `python3`
        # is first on PATH: `.venv/bin/audiencelake` then works without an activated environment.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    for key, value in session_conf(settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    return spark
