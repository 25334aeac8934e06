"""Response propensity: the chance that a treated customer orders within window_days of a campaign touch.

Rows are past touches of the treatment group (sends and ad impressions) whose window has ended by the run date.
Features come from the latest profile snapshot strictly before the touch's day (snapshots every
snapshot_every_days before the run date, computed from silver) and no older than features_max_age_days, so nothing
from the touch's day or later leaks in. The campaign type (channel) is a feature; each type with enough conversions
gets its own ROC AUC. Logistic regression keeps the scores calibrated."""

from __future__ import annotations

import logging
from datetime import timedelta

import mlflow
import mlflow.spark
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.core.errors import MissingData
from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from audiencelake.models.config import Feature, Propensity
from audiencelake.models.features import FEATURES, feature_stages, held_out, profile_as_of, reference_profile
from audiencelake.models.metrics import binary_report, log_report
from audiencelake.models.parallel import map_parallel
from audiencelake.models.registry import Promotion, register_spark_model
from audiencelake.models.scoring import load_spark_champion, write_scores
from audiencelake.models.tracking import training_run

log = logging.getLogger("audiencelake.models")
MODEL = "propensity"
SCORE = "propensity"
CHANNELS = ("email", "sms", "push", "ads")


def features(config: Propensity) -> list[Feature]:
    """The configured features plus one indicator per campaign type."""
    return [*config.features, *(Feature(name=f"channel_{c}", expr=f"channel = '{c}'") for c in CHANNELS)]


def touches(lake: Lake, run: Run, config: Propensity) -> DataFrame:
    """(user_id, channel, touch_date, label): treated touches whose window ended by the run date, label 1.0 when
    the customer ordered in [touch day, touch day + window_days]."""
    last = run.as_of - timedelta(days=config.window_days)
    sent = (
        lake.read(lake.ref("silver", "campaign_touches"))
        .where((F.col("group") == "treatment") & F.col("touch_type").isin("send", "impression"))
        .where(F.col("touch_date") <= F.lit(last))
        .select("user_id", "campaign_id", "channel", "touch_date")
        .distinct()
    )
    orders = (
        lake.read(lake.ref("silver", "orders"))
        .where(F.col("line_type") == "purchase")
        .select("user_id", "order_date")
        .distinct()
    )
    window = F.col("order_date").between(F.col("touch_date"), F.date_add("touch_date", config.window_days))
    converted = sent.join(orders, "user_id").where(window).select("user_id", "campaign_id").distinct()
    label = F.when(F.col("converted").isNotNull(), 1.0).otherwise(0.0)
    return sent.join(converted.withColumn("converted", F.lit(1)), ["user_id", "campaign_id"], "left").withColumn(
        "label", label
    )


def training_rows(lake: Lake, run: Run, config: Propensity) -> DataFrame:
    """Touches joined to the latest snapshot before their day (within the age limit)."""
    dates = [run.as_of - timedelta(days=config.snapshot_every_days * i) for i in range(1, config.snapshots + 1)]
    snapshots = None
    # the dates' profiles are independent (each keeps its own aggregates in the session): two at once
    for profile in map_parallel(lake.spark, lambda day: reference_profile(lake, day), dates, config.parallelism):
        profile = profile.withColumnRenamed("as_of", "snapshot")
        snapshots = profile if snapshots is None else snapshots.unionByName(profile, allowMissingColumns=True)
    rows = touches(lake, run, config).join(snapshots, "user_id")
    fresh = (F.col("snapshot") < F.col("touch_date")) & (
        F.col("snapshot") >= F.date_sub("touch_date", config.features_max_age_days)
    )
    rows = rows.where(fresh)
    latest = rows.groupBy("user_id", "campaign_id").agg(F.max("snapshot").alias("snapshot"))
    return rows.join(latest, ["user_id", "campaign_id", "snapshot"])


def probability(model: PipelineModel, df: DataFrame) -> DataFrame:
    return model.transform(df).withColumn(SCORE, vector_to_array("probability")[1])


def train(lake: Lake, run: Run, config: Propensity) -> Promotion:
    """Fit on the training users' touches, evaluate on held-out users (overall and per campaign type), register."""
    data = training_rows(lake, run, config).cache()
    held = held_out(config.seed, config.test_share)
    test = data.where(held)
    train_set = data.where(~held)
    sizes = data.agg(
        F.sum((~held).cast("long")).alias("rows"), F.sum(held.cast("long")).alias("tested"),
        F.sum(F.when(~held, F.col("label")).cast("long")).alias("positive"),
    ).first()  # fmt: skip
    rows, tested, positive = (int(sizes[k] or 0) for k in ("rows", "tested", "positive"))
    if rows == 0 or tested == 0 or positive in (0, rows):
        data.unpersist()
        raise MissingData(
            f"propensity: {rows} training touches ({positive} converted) and {tested} held-out touches with a "
            f"profile snapshot before them: a model needs touches on both sides of the split and both outcomes"
        )
    params = {"window_days": config.window_days, "snapshots": config.snapshots, "features": len(config.features)}
    with training_run(lake, MODEL, run, params):
        classifier = LogisticRegression(featuresCol=FEATURES, labelCol="label", maxIter=100, regParam=0.01)
        model = Pipeline(stages=[*feature_stages(features(config), scale=True), classifier]).fit(train_set)
        scored = probability(model, test).cache()
        report = binary_report(scored, "label", SCORE)
        log_report(report, "propensity")
        counts = {
            r["channel"]: (r["n"], r["pos"])
            for r in scored.groupBy("channel").agg(F.count("*").alias("n"), F.sum("label").alias("pos")).collect()
        }
        for channel, (n, pos) in sorted(counts.items()):
            mlflow.log_metrics({f"touches_{channel}": n, f"conversions_{channel}": pos})
            if config.min_positives <= pos < n:
                mlflow.log_metric(
                    f"roc_auc_{channel}",
                    binary_report(scored.where(F.col("channel") == channel), "label", SCORE).roc_auc,
                )
        mlflow.log_metrics({"train_touches": train_set.count()})

        def champion_auc(champion: PipelineModel) -> float:
            return binary_report(probability(champion, test), "label", SCORE).roc_auc

        promotion = register_spark_model(lake, MODEL, model, "roc_auc", report.roc_auc, champion_auc)
    scored.unpersist()
    data.unpersist()
    return promotion


def score(lake: Lake, run: Run, config: Propensity) -> int:
    """Each profiled user's propensity per campaign type as of the run date into gold.propensity."""
    model, name, version = load_spark_champion(lake, MODEL)
    types = lake.spark.createDataFrame([(c,) for c in CHANNELS], "channel string")
    users = profile_as_of(lake, run.as_of).crossJoin(types)
    scored = probability(model, users).select(
        "user_id", F.col("channel").alias("campaign_type"), F.col(SCORE).alias("score")
    )
    return write_scores(lake, scored, "propensity", name, version, run.as_of)
