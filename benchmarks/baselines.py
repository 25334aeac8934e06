"""Plain-Spark versions of four stages' core work, timed on the same lake in the same run as the stage itself:
what each stage costs over the least Spark could do to produce a comparable table.

- ingest: every landing file read with its format (`spark.read.json` / `.csv`) and written to Delta as is;
- profile: one pass over the silver tables the tag catalogue reads (a count and the sum or max of every column
  per user), the sources full-joined on user_id and written to Delta;
- identity: clickstream events joined once to the identity map on anonymous_id and written to Delta;
- train_recommendations: `ALS.fit` alone, for each point of the same grid, on the same indexed interactions.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from functools import reduce
from pathlib import Path

from pyspark.ml.feature import StringIndexer
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, NumericType, StringType, TimestampType

from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from audiencelake.models.config import load_models_config
from audiencelake.models.recommendations import als, interactions
from audiencelake.tags.loader import load_catalogue


def _write(df: DataFrame, path: Path) -> None:
    df.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(str(path))


def raw_copy(lake: Lake, out: Path) -> None:
    """Each source's landing files, read with the source's format and written to one Delta table per source."""
    for name, source in lake.settings.sources.items():
        reader = lake.spark.read.option("header", "true") if source.format == "csv" else lake.spark.read
        _write(reader.format(source.format).load(lake.settings.source_path(name)), out / f"raw-{name}")


def aggregation_pass(lake: Lake, run: Run, out: Path) -> None:
    """One groupBy per silver table the catalogue reads (rows, and sum or max of every column), full-joined."""
    catalogue = load_catalogue()
    frames = []
    for name, source in catalogue.sources.items():
        df = lake.read(lake.ref("silver", source.table))
        if source.date:
            df = df.where(F.col(source.date) <= F.lit(run.as_of))
        aggs = [F.count(F.lit(1)).alias(f"{name}__rows")]
        for field in df.schema.fields:
            if field.name == source.user or field.name.startswith("_"):
                continue
            if isinstance(field.dataType, NumericType):
                aggs.append(F.sum(field.name).alias(f"{name}__{field.name}"))
            elif isinstance(field.dataType, DateType | TimestampType | StringType):
                aggs.append(F.max(field.name).alias(f"{name}__{field.name}"))
        frames.append(df.groupBy(F.col(source.user).alias("user_id")).agg(*aggs))
    _write(reduce(lambda a, b: a.join(b, "user_id", "full"), frames), out / "aggregation-pass")


def one_join(lake: Lake, out: Path) -> None:
    """Clickstream events joined to the identity map on anonymous_id (their person), written to Delta."""
    events = lake.read(lake.ref("silver", "clickstream_events")).drop("user_id")
    people = (
        lake.read(lake.ref("ops", "identity_map"))
        .where(F.col("id_type") == "anonymous")
        .select(F.col("identifier").alias("anonymous_id"), "user_id")
    )
    _write(events.join(people, "anonymous_id", "left"), out / "one-join")


def bare_als(lake: Lake, run: Run) -> None:
    """ALS.fit for every point of conf/models.yaml's recommendations grid on the stage's training interactions."""
    config = load_models_config().recommendations
    cut = run.as_of - timedelta(days=config.test_days)
    train = interactions(lake, config, run.as_of - timedelta(days=config.history_days), cut)
    for col in ("user_id", "item_id"):
        train = StringIndexer(inputCol=col, outputCol=col.replace("_id", "_idx")).fit(train).transform(train)
    train = train.cache()
    blocks = max(1, lake.spark.sparkContext.defaultParallelism)
    grid = config.grid
    for rank, reg, alpha in itertools.product(grid.rank, grid.reg_param, grid.alpha):
        als(config, rank, reg, alpha, blocks).fit(train)  # the stage's own estimator settings
    train.unpersist()


def baselines(lake: Lake, run: Run, out: Path) -> dict[str, Callable[[], None]]:
    """Stage name -> its plain-Spark baseline (each run after the stage, on the same lake)."""
    return {
        "ingest": lambda: raw_copy(lake, out),
        "identity": lambda: one_join(lake, out),
        "profile": lambda: aggregation_pass(lake, run, out),
        "train_recommendations": lambda: bare_als(lake, run),
    }
