"""Metrics of a binary score, computed in Spark: ROC AUC and PR AUC, lift and capture in the top decile, a
calibration table, and ROC and gains curves from scores binned to 1/1000 (bounded, whatever the population)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

BINS = 1000


@dataclass
class BinaryReport:
    rows: int
    positives: int
    roc_auc: float
    pr_auc: float
    top_decile_lift: float
    top_decile_capture: float
    calibration: list[dict] = field(default_factory=list)  # bin, predicted, observed, rows
    roc: tuple[list[float], list[float]] = ([], [])  # false positive rate, true positive rate
    gains: tuple[list[float], list[float]] = ([], [])  # share of population targeted, share of positives captured

    def metrics(self, prefix: str = "") -> dict[str, float]:
        keys = ("roc_auc", "pr_auc", "top_decile_lift", "top_decile_capture")
        return {f"{prefix}{k}": float(getattr(self, k)) for k in keys} | {f"{prefix}positive_rate": self.rate}

    @property
    def rate(self) -> float:
        return self.positives / self.rows if self.rows else 0.0


def area(df: DataFrame, label: str, score: str, metric: str) -> float:
    evaluator = BinaryClassificationEvaluator(rawPredictionCol=score, labelCol=label, metricName=metric)
    return float(evaluator.evaluate(df.select(F.col(score).cast("double"), F.col(label).cast("double"))))


def binary_report(df: DataFrame, label: str, score: str) -> BinaryReport:
    """The report of `score` (a probability) against `label` (0/1) over the rows of `df`."""
    data = df.select(F.col(label).cast("int").alias("y"), F.col(score).cast("double").alias("p")).cache()
    rows, positives = data.agg(F.count("*"), F.sum("y")).first()
    positives = int(positives or 0)
    if rows == 0 or positives in (0, rows):
        data.unpersist()
        raise ValueError(f"a binary report needs both classes; got {positives} positives in {rows} rows")
    decile = data.withColumn("decile", F.ntile(10).over(Window.orderBy(F.desc("p"))))  # one partition: 10 rows out
    top = decile.where("decile = 1").agg(F.count("*").alias("n"), F.sum("y").alias("pos")).first()
    rate = positives / rows
    calibration = [
        {"bin": r["bin"], "predicted": r["predicted"], "observed": r["observed"], "rows": r["rows"]}
        for r in data.groupBy(F.least(F.floor(F.col("p") * 10), F.lit(9)).cast("int").alias("bin"))
        .agg(F.avg("p").alias("predicted"), F.avg("y").alias("observed"), F.count("*").alias("rows"))
        .orderBy("bin")
        .collect()
    ]
    binned = (
        data.groupBy(F.floor(F.col("p") * BINS).alias("b"))
        .agg(F.sum("y").alias("pos"), F.count("*").alias("n"))
        .orderBy(F.desc("b"))
        .collect()
    )
    tp = fp = seen = 0
    fpr, tpr, share, capture = [0.0], [0.0], [0.0], [0.0]
    for r in binned:
        tp, fp, seen = tp + r["pos"], fp + r["n"] - r["pos"], seen + r["n"]
        fpr.append(fp / (rows - positives))
        tpr.append(tp / positives)
        share.append(seen / rows)
        capture.append(tp / positives)
    report = BinaryReport(
        rows=int(rows),
        positives=positives,
        roc_auc=area(data, "y", "p", "areaUnderROC"),
        pr_auc=area(data, "y", "p", "areaUnderPR"),
        top_decile_lift=(top["pos"] / top["n"]) / rate,
        top_decile_capture=top["pos"] / positives,
        calibration=calibration,
        roc=(fpr, tpr),
        gains=(share, capture),
    )
    data.unpersist()
    return report


def log_report(report: BinaryReport, name: str) -> None:
    """Log the report's metrics, calibration table, ROC and lift (gains) plots to the active MLflow run."""
    import mlflow

    from audiencelake.models.plots import log_line

    mlflow.log_metrics(report.metrics())
    mlflow.log_dict({"calibration": report.calibration, "rows": report.rows}, f"{name}_calibration.json")
    diagonal = ([0, 1], [0, 1])
    roc_title = f"{name}: ROC (AUC {report.roc_auc:.3f})"
    log_line(
        f"{name}_roc", roc_title, "false positive rate", "true positive rate", {"model": report.roc, "random": diagonal}
    )
    gains_title = f"{name}: cumulative gains (top-decile lift {report.top_decile_lift:.2f})"
    gains = {"model": report.gains, "random": diagonal}
    log_line(f"{name}_lift", gains_title, "share targeted", "share of positives captured", gains)
