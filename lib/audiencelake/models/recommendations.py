"""Recommendations: implicit-feedback ALS on user-item interactions weighted by event type (view < cart <
purchase). Trained on the interactions before run date - test_days and evaluated on the days after, beside a
popularity baseline computed in the same run; a small grid over rank, regularisation and alpha picks the model
with the best precision@k. Users the model does not know get the popular items of their segment."""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from datetime import date, timedelta
from functools import reduce

import mlflow
import mlflow.spark
from pyspark import StorageLevel
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.evaluation import RankingEvaluator
from pyspark.ml.feature import StringIndexer
from pyspark.ml.recommendation import ALS
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from audiencelake.core.errors import MissingData
from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from audiencelake.models.config import Recommendations
from audiencelake.models.features import profile_as_of
from audiencelake.models.parallel import map_parallel
from audiencelake.models.plots import log_bars
from audiencelake.models.registry import Promotion, register_spark_model
from audiencelake.models.scoring import load_spark_champion, write_scores
from audiencelake.models.tracking import training_run

log = logging.getLogger("audiencelake.models")
MODEL = "recommendations"
METRICS = {"precision": "precisionAtK", "recall": "recallAtK", "map": "meanAveragePrecisionAtK", "ndcg": "ndcgAtK"}


def interactions(lake: Lake, config: Recommendations, start: date, end: date) -> DataFrame:
    """(user_id, item_id, weight) summed over clickstream views and carts and order lines in [start, end], from
    whichever of the two tables exist (the stage needs one). The configured weights are relative: each is divided by
    the largest, so ALS's alpha is the confidence the strongest interaction adds, whatever scale they are given in."""
    largest = max(config.weights.values())
    w = {event: weight / largest for event, weight in config.weights.items()}
    clicks, orders = lake.ref("silver", "clickstream_events"), lake.ref("silver", "orders")
    events = (
        lake.read(clicks)
        .where(F.col("event_date").between(F.lit(start), F.lit(end)))
        .where(F.col("user_id").isNotNull() & F.col("item_id").isNotNull())
        .where(F.col("event_type").isin("product_view", "add_to_cart"))
        .select(
            "user_id",
            "item_id",
            F.when(F.col("event_type") == "add_to_cart", w["add_to_cart"]).otherwise(w["product_view"]).alias("weight"),
        )
        if lake.exists(clicks)
        else None
    )
    bought = (
        lake.read(orders)
        .where(F.col("order_date").between(F.lit(start), F.lit(end)) & (F.col("line_type") == "purchase"))
        .select("user_id", "item_id", F.lit(w["purchase"]).alias("weight"))
        if lake.exists(orders)
        else None
    )
    parts = [p for p in (events, bought) if p is not None]
    return reduce(DataFrame.unionByName, parts).groupBy("user_id", "item_id").agg(F.sum("weight").alias("weight"))


def purchased(lake: Lake, end: date) -> DataFrame | None:
    """(user_id, item_id) of every item a customer bought up to `end`, over all history (None without orders)."""
    orders = lake.ref("silver", "orders")
    if not lake.exists(orders):
        return None
    return (
        lake.read(orders)
        .where((F.col("line_type") == "purchase") & (F.col("order_date") <= F.lit(end)))
        .select("user_id", "item_id")
        .distinct()
    )


def indexers() -> Pipeline:
    """user_id and item_id to the integer indexes ALS needs (an unknown user gets an index without factors)."""
    user = StringIndexer(inputCol="user_id", outputCol="user_idx", handleInvalid="keep")
    item = StringIndexer(inputCol="item_id", outputCol="item_idx", handleInvalid="skip")
    return Pipeline(stages=[user, item])


def als(config: Recommendations, rank: int, reg: float, alpha: float, blocks: int) -> ALS:
    return ALS(
        userCol="user_idx", itemCol="item_idx", ratingCol="weight", implicitPrefs=True, rank=rank, regParam=reg,
        alpha=alpha, maxIter=config.max_iter, seed=config.seed, nonnegative=True, coldStartStrategy="drop",
        numUserBlocks=blocks, numItemBlocks=blocks,
    )  # fmt: skip


def recommend(model: PipelineModel, users: DataFrame, seen: DataFrame | None, k: int) -> DataFrame:
    """Top `k` (user_id, item_id, rank, score) from the model for the `users` (user_id) it knows, leaving out the
    (user_id, item_id) pairs in `seen` first: each user gets k items whenever the catalogue has k they have not
    seen. A user's candidates are k plus the items of theirs to leave out, rounded up to a power of two, so users
    are scored in a few groups (one per power) and no fixed multiple of k can run short for a heavy buyer."""
    user_indexer, item_indexer, als = model.stages
    known = user_indexer.transform(users.select("user_id").distinct()).where(
        F.col("user_idx") < len(user_indexer.labelsArray[0])
    )
    if seen is None:
        raw = als.recommendForUserSubset(known.select("user_idx"), k)
    else:
        known, groups = with_depth(known, seen, k)
        parts = [als.recommendForUserSubset(known.where(F.col(DEPTH) == n).select("user_idx"), n) for n in groups]
        raw = reduce(DataFrame.unionByName, parts) if parts else als.recommendForUserSubset(known.select("user_idx"), k)
    # item indexes back to ids: the indexer's labels travel as one broadcast row, so the query plan names a column
    # whatever the catalogue's size (a literal array, as in MLlib's own IndexToString, puts every item id in the plan)
    labels = users.sparkSession.createDataFrame([(item_indexer.labelsArray[0],)], "_item_labels array<string>")
    recs = (
        raw.join(known.select("user_idx", "user_id"), "user_idx")
        .select("user_id", F.explode("recommendations").alias("rec"))
        .crossJoin(F.broadcast(labels))
        .select(
            "user_id",
            F.element_at("_item_labels", F.col("rec.item_idx") + 1).alias("item_id"),
            F.col("rec.rating").alias("score"),
        )
    )
    if seen is not None:
        recs = recs.join(seen.select("user_id", "item_id"), ["user_id", "item_id"], "left_anti")
    return top_k(recs, k)


DEPTH = "_depth"


def with_depth(users: DataFrame, seen: DataFrame, k: int) -> tuple[DataFrame, list[int]]:
    """`users` with `_depth`: the candidates each needs so that k remain once their `seen` items are left out (k
    plus their seen items, rounded up to a power of two, so users fall into a few groups), and those groups."""
    counts = seen.groupBy("user_id").agg(F.count("*").alias("_seen"))
    depth = F.pow(F.lit(2), F.ceil(F.log2(F.lit(k) + F.coalesce("_seen", F.lit(0))))).cast("int")
    users = users.join(counts, "user_id", "left").withColumn(DEPTH, depth).drop("_seen")
    return users, sorted(r[0] for r in users.select(DEPTH).distinct().collect())


def top_k(scored: DataFrame, k: int) -> DataFrame:
    """Keep the `k` highest `score` per user (ties by item_id), numbered from 1 as `rank`."""
    order = Window.partitionBy("user_id").orderBy(F.desc("score"), "item_id")
    return scored.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= k)


def popular(train: DataFrame, users: DataFrame, seen: DataFrame | None, k: int, group: str | None = None) -> DataFrame:
    """The `k` most interacted-with items (within the user's `group` when given) for each user, `seen` left out
    first."""
    keys = [group] if group else []
    weights = train.join(users.select("user_id", *keys), "user_id") if group else train
    ranked = weights.groupBy(*keys, "item_id").agg(F.sum("weight").alias("weight"))
    total = Window.partitionBy(*keys) if keys else Window.partitionBy(F.lit(1))
    ranked = ranked.withColumn("score", F.col("weight") / F.sum("weight").over(total))
    order = (
        Window.partitionBy(*keys).orderBy(F.desc("score"), "item_id")
        if keys
        else Window.orderBy(F.desc("score"), "item_id")
    )
    head = ranked.withColumn("pos", F.row_number().over(order))
    people = users.select("user_id", *keys)
    people, groups = with_depth(people, seen, k) if seen is not None else (people.withColumn(DEPTH, F.lit(k)), [k])
    parts = []
    for n in groups or [k]:  # each user joins only the head of the ranking they need
        top = head.where(F.col("pos") <= n)
        group = people.where(F.col(DEPTH) == n)
        parts.append(group.join(top, keys, "inner") if keys else group.crossJoin(top))
    recs = reduce(DataFrame.unionByName, parts).select("user_id", "item_id", "score")
    if seen is not None:
        recs = recs.join(seen.select("user_id", "item_id"), ["user_id", "item_id"], "left_anti")
    return top_k(recs, k)


def ranking_metrics(recs: DataFrame, relevant: DataFrame, k: int, catalogue: int) -> dict[str, float]:
    """precision, recall, MAP and nDCG at k (Spark's RankingEvaluator) over the users with relevant items, and
    catalogue coverage (share of items recommended to anyone). `recs` is computed once: the metrics and the
    coverage read the same cached rows (uncached, coverage scored every user against every item a second time)."""
    recs = recs.persist(StorageLevel.MEMORY_AND_DISK)
    ids = relevant.select("item_id").union(recs.select("item_id")).distinct()
    index = ids.withColumn("i", F.dense_rank().over(Window.orderBy("item_id")).cast("double"))
    predicted = (
        recs.join(index, "item_id")
        .groupBy("user_id")
        .agg(F.sort_array(F.collect_list(F.struct("rank", "i"))).alias("r"))
        .select("user_id", F.col("r.i").alias("prediction"))
    )
    truth = relevant.join(index, "item_id").groupBy("user_id").agg(F.collect_set("i").alias("label"))
    data = (
        truth.join(predicted, "user_id", "left")
        .select("label", F.coalesce("prediction", F.array().cast("array<double>")).alias("prediction"))
        .cache()
    )
    out = {
        name: float(
            RankingEvaluator(k=k, metricName=metric, labelCol="label", predictionCol="prediction").evaluate(data)
        )
        for name, metric in METRICS.items()
    }
    out["coverage"] = recs.select("item_id").distinct().count() / max(1, catalogue)
    data.unpersist()
    recs.unpersist()
    return out


@dataclass(frozen=True)
class Split:
    """Interactions up to a cut (to train on) and the items each user interacted with after it (to evaluate on)."""

    train: DataFrame  # (user_id, item_id, weight) from the history's start to the cut
    relevant: DataFrame  # (user_id, item_id) after the cut, not bought before it, of users the training data knows
    users: DataFrame  # the users with relevant items
    seen: DataFrame | None  # (user_id, item_id) bought up to the cut: left out of every list
    catalogue: int  # items in the training interactions

    def release(self) -> None:
        for df in (self.train, self.relevant, self.users, self.seen):
            if df is not None:
                df.unpersist()


def evaluation_window(lake: Lake, config: Recommendations, start: date, cut: date, end: date) -> Split:
    """Train on [start, cut], evaluate on (cut, end]."""
    train_set = interactions(lake, config, start, cut).cache()
    later = interactions(lake, config, cut + timedelta(days=1), end)
    seen = purchased(lake, cut) if config.exclude_purchased else None
    seen = seen.cache() if seen is not None else None
    relevant = later.join(train_set.select("user_id").distinct(), "user_id")  # users the model could know
    if seen is not None:
        relevant = relevant.join(seen.select("user_id", "item_id"), ["user_id", "item_id"], "left_anti")
    relevant = relevant.select("user_id", "item_id").cache()
    users = relevant.select("user_id").distinct().cache()
    return Split(train_set, relevant, users, seen, train_set.select("item_id").distinct().count())


def train(lake: Lake, run: Run, config: Recommendations) -> Promotion:
    """Choose the ALS grid point on a validation window, refit it on everything before the test window, and report
    and register its figures on the test window only (the days the choice never saw).

    Timeline: history start .. validation cut (grid fits) .. test cut (refit) .. run date. The validation window is
    the `validation_days` before the test window; the test window the last `test_days`."""
    test_cut = run.as_of - timedelta(days=config.test_days)
    validation_cut = test_cut - timedelta(days=config.validation_days)
    start = run.as_of - timedelta(days=config.history_days)
    choosing = evaluation_window(lake, config, start, validation_cut, test_cut)
    testing = evaluation_window(lake, config, start, test_cut, run.as_of)
    for name, window, cut in (("validation", choosing, validation_cut), ("test", testing, test_cut)):
        if window.users.limit(1).count() == 0:
            choosing.release()
            testing.release()
            raise MissingData(
                f"recommendations: no user with interactions both up to {cut} and in the {name} window after it; "
                "the history needs more than test_days + validation_days of orders or clickstream"
            )
    tier, search = config.search(testing.train.count())
    grid = list(itertools.product(search.rank, search.reg_param, search.alpha))
    params = {"test_cut": test_cut.isoformat(), "validation_cut": validation_cut.isoformat(), "k": config.k}
    params |= {"weights": config.weights, "grid": len(grid), "search": tier}
    blocks = max(1, lake.spark.sparkContext.defaultParallelism)  # ALS's default of 10 suits only big clusters
    with training_run(lake, MODEL, run, params | {"exclude_purchased": config.exclude_purchased}):
        index = indexers().fit(choosing.train)
        indexed = index.transform(choosing.train).cache()

        def validated(point: tuple[int, float, float]) -> dict[str, float]:
            model = PipelineModel(stages=[*index.stages, als(config, *point, blocks).fit(indexed)])
            recs = recommend(model, choosing.users, choosing.seen, config.k)
            return ranking_metrics(recs, choosing.relevant, config.k, choosing.catalogue)

        found_all = map_parallel(lake.spark, validated, grid, config.parallelism)  # logged here, in grid order
        for step, found in enumerate(found_all):
            mlflow.log_metric("validation_precision_at_k", found["precision"], step=step)
        best = grid[max(range(len(grid)), key=lambda i: choice_key(found_all[i], i))]
        indexed.unpersist()
        model = fit_model(testing.train, config, best, blocks)
        metrics = ranking_metrics(recommend(model, testing.users, testing.seen, config.k), testing.relevant,
                                  config.k, testing.catalogue)  # fmt: skip
        popularity = popular(testing.train, testing.users, testing.seen, config.k)
        baseline = ranking_metrics(popularity, testing.relevant, config.k, testing.catalogue)
        precision = metrics["precision"]
        mlflow.log_params({"rank": best[0], "reg_param": best[1], "alpha": best[2]})
        mlflow.log_metrics({f"{m}_at_k": v for m, v in metrics.items()})
        mlflow.log_metrics({f"baseline_{m}_at_k": v for m, v in baseline.items()})
        mlflow.log_metric("precision_vs_baseline", precision / baseline["precision"] if baseline["precision"] else 0.0)
        names = list(metrics)
        log_bars("als_vs_popularity", f"Test-window metrics at {config.k}", "metric", "value", names,
                 {"ALS": [metrics[m] for m in names], "popularity": [baseline[m] for m in names]})  # fmt: skip

        def champion_precision(champion: PipelineModel) -> float:
            recs = recommend(champion, testing.users, testing.seen, config.k)
            return ranking_metrics(recs, testing.relevant, config.k, testing.catalogue)["precision"]

        promotion = register_spark_model(lake, MODEL, model, "precision_at_k", precision, champion_precision)
    log.info("recommendations: best %s, test %s; popularity %s", best, metrics, baseline)
    choosing.release()
    testing.release()
    return promotion


def choice_key(found: dict[str, float], position: int) -> tuple[float, float, int]:
    """How grid points rank on the validation window: precision at k, then nDCG at k, then grid order (the first
    wins). Both metrics are rounded to 12 digits: the same hits summed in another order differ in the last bits
    (44/540 came out as 0.0814814814814815 and 0.08148148148148153 on MovieLens), and such noise must not decide."""
    return round(found["precision"], 12), round(found["ndcg"], 12), -position


def fit_model(train_set: DataFrame, config: Recommendations, point: tuple[int, float, float], blocks: int):
    """The indexers and ALS at `point` fitted on `train_set`."""
    index = indexers().fit(train_set)
    return PipelineModel(stages=[*index.stages, als(config, *point, blocks).fit(index.transform(train_set))])


def score(lake: Lake, run: Run, config: Recommendations) -> int:
    """Top-k items for every profiled user into gold.recommendations: ALS for users the champion knows, the popular
    items of their segment (gold.segments as of the run date) for the others."""
    model, name, version = load_spark_champion(lake, MODEL)
    history = interactions(lake, config, run.as_of - timedelta(days=config.history_days), run.as_of).cache()
    seen = purchased(lake, run.as_of) if config.exclude_purchased else None
    profile = profile_as_of(lake, run.as_of).select("user_id")
    als = recommend(model, profile, seen, config.k).withColumn("reason", F.lit("als"))
    others = profile.join(als.select("user_id").distinct(), "user_id", "left_anti")
    segments_ref = lake.ref("gold", "segments")
    if lake.exists(segments_ref):
        segments = lake.read(segments_ref).where(F.col("as_of") == F.lit(run.as_of)).select("user_id", "segment")
        others = others.join(segments, "user_id", "left").fillna({"segment": -1})
    else:
        others = others.withColumn("segment", F.lit(-1))
    fallback = popular(history, others, seen, config.k, group="segment").withColumn("reason", F.lit("fallback"))
    recs = als.unionByName(fallback).select(
        "user_id", "item_id", F.col("rank").cast("int"), F.col("score").cast("double"), "reason"
    )
    rows = write_scores(lake, recs, "recommendations", name, version, run.as_of)
    history.unpersist()
    return rows
