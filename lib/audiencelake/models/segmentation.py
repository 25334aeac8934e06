"""Segmentation: KMeans (or bisecting KMeans) on standardised profile features, k chosen by silhouette, each
segment described in words from its centroid (centroids are z-scores, so "high" means above the population)."""

from __future__ import annotations

import json
import logging

import mlflow
import mlflow.spark
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.clustering import BisectingKMeans, KMeans
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from audiencelake.models.config import Feature, Segmentation
from audiencelake.models.features import FEATURES, feature_stages, profile_as_of
from audiencelake.models.parallel import map_parallel
from audiencelake.models.plots import log_line
from audiencelake.models.registry import Promotion, register_spark_model
from audiencelake.models.scoring import load_spark_champion, write_scores
from audiencelake.models.tracking import client, training_run

log = logging.getLogger("audiencelake.models")
MODEL = "segmentation"
DESCRIBE_Z = 0.5  # a centroid this many standard deviations from the mean is described
DESCRIBE_MAX = 4


def describe(center: list[float], features: list[Feature]) -> str:
    """Words for a centroid in z-scores: the features furthest from the mean (at least DESCRIBE_Z away)."""
    ranked = sorted(zip(center, features, strict=True), key=lambda p: -abs(p[0]))
    words = []
    for z, feature in ranked:
        word = feature.high if z >= DESCRIBE_Z else feature.low if z <= -DESCRIBE_Z else None
        if word and word not in words:
            words.append(word)
    return ", ".join(words[:DESCRIBE_MAX]) or "close to the average"


def _estimator(config: Segmentation, k: int):
    cls = KMeans if config.algorithm == "kmeans" else BisectingKMeans
    return cls(k=k, seed=config.seed, maxIter=config.max_iter, featuresCol=FEATURES, predictionCol="segment")


def silhouette(model: PipelineModel, population: DataFrame) -> float:
    return clustered_silhouette(model.transform(population))


def clustered_silhouette(clustered: DataFrame) -> float:
    """The silhouette of `clustered` (features and `segment`); -1, its worst, when everyone is in one segment (a
    champion fitted on other people, or k centres on fewer distinct points), where Spark's evaluator fails."""
    if clustered.select("segment").distinct().limit(2).count() < 2:
        return -1.0
    return ClusteringEvaluator(featuresCol=FEATURES, predictionCol="segment").evaluate(clustered)


def train(lake: Lake, run: Run, config: Segmentation) -> Promotion:
    """Fit the feature scaling and one clustering per k, keep the best silhouette, log and register it."""
    population = profile_as_of(lake, run.as_of).where(config.among).cache()
    prep = Pipeline(stages=feature_stages(config.features, scale=True)).fit(population)
    prepared = prep.transform(population).cache()
    params = {"algorithm": config.algorithm, "k_range": f"{config.k_min}-{config.k_max}", "seed": config.seed}
    params |= {"features": json.dumps({f.name: f.expr for f in config.features}), "users": prepared.count()}
    with training_run(lake, MODEL, run, params):
        curve: dict[int, float] = {}
        fitted = {}

        def fit(k: int):
            model = _estimator(config, k).fit(prepared)
            return model, clustered_silhouette(model.transform(prepared))

        ks = list(range(config.k_min, config.k_max + 1))
        for k, (model, value) in zip(ks, map_parallel(lake.spark, fit, ks, config.parallelism), strict=True):
            fitted[k], curve[k] = model, value
            mlflow.log_metric("silhouette_at_k", curve[k], step=k)
        best = max(curve, key=lambda k: (round(curve[k], 6), -k))
        log_line(
            "silhouette", "Silhouette by k", "k", "silhouette", {"silhouette": (list(curve), list(curve.values()))}
        )
        model = PipelineModel(stages=[*prep.stages, fitted[best]])
        centers = [list(map(float, c)) for c in fitted[best].clusterCenters()]
        sizes = {
            int(r["segment"]): int(r["count"]) for r in model.transform(population).groupBy("segment").count().collect()
        }
        descriptions = {i: describe(c, config.features) for i, c in enumerate(centers)}
        summary = [{"segment": i, "size": sizes.get(i, 0), "description": d} for i, d in descriptions.items()]
        mlflow.log_dict({"segments": summary, "silhouette_by_k": curve}, "segments.json")
        mlflow.log_metrics({"k": best, "silhouette": curve[best]})
        promotion = register_spark_model(
            lake, MODEL, model, "silhouette", curve[best], lambda champion: silhouette(champion, population)
        )
        client(lake.settings).set_model_version_tag(
            promotion.name, str(promotion.version), "segment_descriptions", json.dumps(descriptions)
        )
    for row in summary:
        log.info("segment %d (%d users): %s", row["segment"], row["size"], row["description"])
    population.unpersist()
    prepared.unpersist()
    return promotion


def centroid_distance(centers: list[list[float]]):
    """Euclidean distance from `features` to the centroid of `segment`."""
    table = F.array(*[F.array(*[F.lit(float(v)) for v in c]) for c in centers])
    diffs = F.zip_with(
        vector_to_array(F.col(FEATURES)), F.element_at(table, F.col("segment") + 1), lambda a, b: (a - b) * (a - b)
    )
    return F.sqrt(F.aggregate(diffs, F.lit(0.0), lambda acc, x: acc + x))


def score(lake: Lake, run: Run, config: Segmentation) -> int:
    """Assign every profiled user in the population to the champion's segments into gold.segments."""
    model, name, version = load_spark_champion(lake, MODEL)
    tags = client(lake.settings).get_model_version(name, str(version)).tags
    descriptions = {int(k): v for k, v in json.loads(tags.get("segment_descriptions", "{}")).items()}
    centers = [list(map(float, c)) for c in model.stages[-1].clusterCenters()]
    names = F.create_map(*[x for i, d in sorted(descriptions.items()) for x in (F.lit(i), F.lit(d))])
    scored = model.transform(profile_as_of(lake, run.as_of).where(config.among)).select(
        "user_id",
        F.col("segment").cast("int").alias("segment"),
        F.coalesce(names[F.col("segment")], F.lit("")).alias("description"),
        centroid_distance(centers).alias("distance"),
    )
    return write_scores(lake, scored, "segments", name, version, run.as_of)
