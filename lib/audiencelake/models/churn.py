"""Churn: who stops buying. Trained on the profile as of a reference date (run date - label_days) with the label
"no purchase in the label_days after it", so every feature comes from data at or before the reference date.
Logistic regression and gradient-boosted trees are compared by cross-validated ROC AUC; the better one is
evaluated on held-out users and registered."""

from __future__ import annotations

import logging
from datetime import timedelta

import mlflow
import mlflow.spark
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import GBTClassifier, LogisticRegression
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.functions import vector_to_array
from pyspark.ml.tuning import CrossValidator, ParamGridBuilder
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from audiencelake.core.errors import ConfigError, MissingData
from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from audiencelake.models.config import Churn
from audiencelake.models.features import FEATURES, feature_stages, held_out, profile_as_of, reference_profile
from audiencelake.models.metrics import binary_report, log_report
from audiencelake.models.parallel import map_parallel
from audiencelake.models.registry import Promotion, register_spark_model
from audiencelake.models.scoring import load_spark_champion, write_scores
from audiencelake.models.tracking import training_run

log = logging.getLogger("audiencelake.models")
MODEL = "churn"
PROBABILITY = "churn_probability"


def labelled(lake: Lake, run: Run, config: Churn) -> DataFrame:
    """The profile as of the reference date with `label` 1.0 for no purchase in the label window, else 0.0."""
    reference = run.as_of - timedelta(days=config.label_days)
    features = reference_profile(lake, reference).where(config.among)
    bought = (
        lake.read(lake.ref("silver", "orders"))
        .where(
            (F.col("line_type") == "purchase") & F.col("order_date").between(reference + timedelta(days=1), run.as_of)
        )
        .select("user_id")
        .distinct()
        .withColumn("bought", F.lit(1))
    )
    label = F.when(F.col("bought").isNull(), 1.0).otherwise(0.0)
    return features.join(bought, "user_id", "left").withColumn("label", label).drop("bought")


def _candidate(name: str, config: Churn, grids: dict[str, dict[str, list[float]]]) -> CrossValidator:
    """Cross-validation of candidate `name` over its grid in `grids` (the search `config.search` chose); the
    parameter names of both of the config's searches are checked, whichever runs."""
    if name == "logistic_regression":
        classifier = LogisticRegression(featuresCol=FEATURES, labelCol="label", maxIter=100)
        stages = feature_stages(config.features, scale=True)
    else:
        classifier = GBTClassifier(featuresCol=FEATURES, labelCol="label", seed=config.seed)
        stages = feature_stages(config.features, scale=False)
    searches = [("churn.grids", config.grids)]
    if config.small_data is not None:
        searches.append(("churn.small_data.grids", config.small_data.grids))
    for key, grids in searches:  # both, whichever runs today: a typo must not wait for the data to grow
        for param in grids.get(name, {}):
            if not classifier.hasParam(param):
                raise ConfigError("conf/models.yaml", f"{key}.{name}.{param}", f"not a parameter of {name}")
    grid = ParamGridBuilder()
    for param, values in grids.get(name, {}).items():
        kind = type(classifier.getOrDefault(param)) if classifier.hasDefault(param) else float
        grid.addGrid(classifier.getParam(param), [kind(v) for v in values])
    return CrossValidator(
        estimator=Pipeline(stages=[*stages, classifier]),
        estimatorParamMaps=grid.build(),
        evaluator=BinaryClassificationEvaluator(labelCol="label"),
        numFolds=config.folds,
        seed=config.seed,
        parallelism=config.parallelism,
    )


def probability(model: PipelineModel, df: DataFrame) -> DataFrame:
    return model.transform(df).withColumn(PROBABILITY, vector_to_array("probability")[1])


def test_auc(model: PipelineModel, test: DataFrame) -> float:
    return binary_report(probability(model, test), "label", PROBABILITY).roc_auc


def _sizes(data: DataFrame, held: Column) -> tuple[int, int, int]:
    """(training rows, churned training rows, held-out rows) in one pass."""
    row = data.agg(
        F.count(F.when(~held, 1)).alias("rows"),
        F.coalesce(F.sum(F.when(~held, F.col("label"))), F.lit(0.0)).alias("churned"),
        F.count(F.when(held, 1)).alias("tested"),
    ).first()
    return int(row["rows"]), int(row["churned"]), int(row["tested"])


def train(lake: Lake, run: Run, config: Churn) -> Promotion:
    """Cross-validate each candidate on the training users, register the better one, evaluated on held-out users."""
    data = labelled(lake, run, config).cache()
    held = held_out(config.seed, config.test_share)
    test, train_set = data.where(held), data.where(~held)
    rows, churned, tested = _sizes(data, held)
    reference = run.as_of - timedelta(days=config.label_days)
    if rows == 0 or tested == 0:
        data.unpersist()
        raise MissingData(
            f"churn: {rows} training and {tested} held-out customers matching `{config.among}` as of the reference "
            f"date {reference} (run date - label_days {config.label_days}): the order history must reach further "
            "back than label_days, with customers on both sides of the split"
        )
    if churned in (0, rows):
        data.unpersist()
        raise MissingData(
            f"churn: all {rows} training customers {'churned' if churned else 'bought again'} in the "
            f"{config.label_days} days after {reference}; a model needs both outcomes"
        )
    tier, grids = config.search(rows)
    params = {"label_days": config.label_days, "folds": config.folds, "candidates": config.candidates}
    params |= {"reference_date": (run.as_of - timedelta(days=config.label_days)).isoformat(), "grids": grids}
    with training_run(lake, MODEL, run, params | {"search": tier}):
        searches = [_candidate(name, config, grids) for name in config.candidates]  # every grid checked first
        results = {}
        fits = map_parallel(lake.spark, lambda search: search.fit(train_set), searches, config.parallelism)
        for name, cv in zip(config.candidates, fits, strict=True):
            results[name] = (max(cv.avgMetrics), cv.bestModel)
            mlflow.log_metric(f"cv_roc_auc_{name}", max(cv.avgMetrics))
        chosen = max(results, key=lambda n: results[n][0])
        model = results[chosen][1]
        mlflow.set_tag("audiencelake.chosen", chosen)
        report = binary_report(probability(model, test), "label", PROBABILITY)
        log_report(report, "churn")
        mlflow.log_metrics({"train_users": rows, "test_users": report.rows})
        promotion = register_spark_model(
            lake, MODEL, model, "roc_auc", report.roc_auc, lambda champion: test_auc(champion, test)
        )
    log.info(
        "churn: %s chosen (cv AUC %s), test AUC %.3f",
        chosen,
        {n: round(r[0], 4) for n, r in results.items()},
        report.roc_auc,
    )
    data.unpersist()
    return promotion


def risk_band(config: Churn):
    p = F.col("probability")
    bands = sorted(config.risk_bands.items(), key=lambda kv: -kv[1])
    expr = F.when(p >= bands[0][1], bands[0][0])
    for band, threshold in bands[1:]:
        expr = expr.when(p >= threshold, band)
    return expr.otherwise("low")


def score(lake: Lake, run: Run, config: Churn) -> int:
    """Churn probability of every user in the population as of the run date into gold.churn_scores."""
    model, name, version = load_spark_champion(lake, MODEL)
    scored = probability(model, profile_as_of(lake, run.as_of).where(config.among)).select(
        "user_id", F.col(PROBABILITY).alias("probability")
    )
    return write_scores(
        lake, scored.withColumn("risk_band", risk_band(config)), "churn_scores", name, version, run.as_of
    )
