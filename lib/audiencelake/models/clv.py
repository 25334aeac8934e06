"""Customer lifetime value: BG/NBD for purchase frequency and Gamma-Gamma for spend per transaction, as published.

A transaction is a customer's purchase day (the orders of one day are one transaction, as in the papers' data).
Spark reduces the order log to one summary per customer: BG/NBD's repeat transactions, recency and age (Fader,
Hardie and Lee 2005, every customer with a purchase day, whatever they spent) and Gamma-Gamma's mean value of the
repeat transactions (Fader and Hardie 2013: the first transaction excluded); identical summaries are compressed with
counts and the maximum-likelihood fits work on those compressed tables. `tests/test_clv_published.py` checks the
papers' published estimates on their CDNOW data. The model is fitted on history up to run date - holdout_days and
checked on the holdout days (predicted against actual purchase days per frequency bucket); that fitted model is
registered, and scoring applies it to each customer's full history up to the run date. Predictions run on the
executors (mapInPandas), not the driver.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, timedelta

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.core.errors import MissingData
from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from audiencelake.models import btyd
from audiencelake.models.config import Clv
from audiencelake.models.plots import log_bars
from audiencelake.models.purchases import purchases
from audiencelake.models.registry import Promotion, champion_uri, register
from audiencelake.models.scoring import write_scores
from audiencelake.models.tracking import registered_name, training_run

log = logging.getLogger("audiencelake.models")
MODEL = "clv"
SUMMARY = ("frequency", "recency", "T", "repeat_value")
# A champion logged before Gamma-Gamma was fitted on repeat purchase days (it has no `summary`) is not comparable:
# its spend parameters mean something else, so any new version replaces it.
SUMMARY_FORMAT = "repeat-purchase-days"
PREDICTIONS = "expected_purchases double, probability_alive double, expected_order_value double"


class ClvModel(mlflow.pyfunc.PythonModel):
    """The fitted parameters as an MLflow model: predicts from per-customer summaries (`customer_summary`)."""

    def __init__(self, bgnbd: btyd.BgNbd, gamma_gamma: btyd.GammaGamma) -> None:
        self.bgnbd, self.gamma_gamma = bgnbd, gamma_gamma
        self.summary = SUMMARY_FORMAT  # what its Gamma-Gamma was fitted on

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        horizon = float((params or {}).get("horizon_days", 90))
        return predict(self.bgnbd, self.gamma_gamma, model_input, horizon)


def predict(bgnbd: btyd.BgNbd, gg: btyd.GammaGamma, summary: pd.DataFrame, horizon: float) -> pd.DataFrame:
    x, tx, T, m = (summary[c].to_numpy(dtype=float) for c in SUMMARY)
    return pd.DataFrame(
        {
            "expected_purchases": btyd.expected_purchases(bgnbd, horizon, x, tx, T),
            "probability_alive": btyd.probability_alive(bgnbd, x, tx, T),
            "expected_order_value": btyd.expected_order_value(gg, x, m),
        }
    )


def customer_summary(orders: DataFrame, as_of: date) -> DataFrame:
    """Per customer with a purchase day up to `as_of`, whatever they spent: repeat purchase days (frequency), days
    from the first to the last purchase day (recency), days since the first (T), and the mean spend of the repeat
    purchase days (repeat_value: the first day's spend excluded; 0 without a repeat)."""
    days = (
        orders.where(F.col("order_date") <= F.lit(as_of))
        .groupBy("user_id", "order_date")
        .agg(F.sum("value").alias("value"))
    )
    repeats = F.count("*") - 1
    return days.groupBy("user_id").agg(
        repeats.cast("double").alias("frequency"),
        F.datediff(F.max("order_date"), F.min("order_date")).cast("double").alias("recency"),
        F.datediff(F.lit(as_of), F.min("order_date")).cast("double").alias("T"),
        F.coalesce((F.sum("value") - F.min_by("value", "order_date")) / F.greatest(repeats, F.lit(1)), F.lit(0.0))
        .cast("double")
        .alias("repeat_value"),
    )


def fit(summary: DataFrame, config: Clv) -> tuple[btyd.BgNbd, btyd.GammaGamma, dict[str, float]]:
    """Fit both models on the compressed summaries; returns them with log-likelihoods and table sizes. Gamma-Gamma
    is fitted on the customers with a repeat transaction of positive mean value (its likelihood needs one; the
    others are counted in `gamma_gamma_excluded`)."""
    freq = summary.groupBy("frequency", "recency", "T").count().toPandas()
    if freq.empty or float(freq.loc[freq["frequency"] >= 1, "count"].sum()) == 0:
        customers = int(freq["count"].sum()) if not freq.empty else 0
        raise MissingData(
            f"clv: {customers} customers with a purchase day before the holdout and none with a repeat one: BG/NBD and "
            "Gamma-Gamma need repeat purchases before run date - holdout_days"
        )
    rounded = F.round(F.col("repeat_value") / config.value_round) * config.value_round
    spend = (
        summary.where((F.col("frequency") >= 1) & (rounded > 0))
        .groupBy("frequency", rounded.alias("repeat_value"))
        .count()
        .toPandas()
    )
    bgnbd, ll_bgnbd = btyd.fit_bgnbd(freq["frequency"], freq["recency"], freq["T"], freq["count"])
    gg, ll_gg = btyd.fit_gamma_gamma(spend["frequency"], spend["repeat_value"], spend["count"])
    customers, spenders = float(freq["count"].sum()), float(spend["count"].sum())
    repeaters = float(freq.loc[freq["frequency"] >= 1, "count"].sum())
    stats = {"bgnbd_log_likelihood": ll_bgnbd, "gamma_gamma_log_likelihood": ll_gg, "customers": customers}
    stats |= {"gamma_gamma_customers": spenders, "gamma_gamma_excluded": repeaters - spenders}
    stats |= {"compressed_rows_bgnbd": float(len(freq)), "compressed_rows_gamma_gamma": float(len(spend))}
    return bgnbd, gg, stats


def with_predictions(summary: DataFrame, model: ClvModel, horizon: float) -> DataFrame:
    """`summary` with expected purchases, probability alive and expected order value, computed per partition."""
    bgnbd, gg = model.bgnbd, model.gamma_gamma
    schema = f"user_id string, {', '.join(f'{c} double' for c in SUMMARY)}, {PREDICTIONS}"

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield pd.concat([batch.reset_index(drop=True), predict(bgnbd, gg, batch, horizon)], axis=1)

    return summary.select("user_id", *SUMMARY).mapInPandas(run, schema)


def holdout_check(orders: DataFrame, model: ClvModel, calibration_end: date, as_of: date) -> tuple[float, pd.DataFrame]:
    """Mean absolute error of predicted vs actual purchase days after `calibration_end`, and the table per
    calibration-frequency bucket (0..5, 6+)."""
    horizon = float((as_of - calibration_end).days)
    summary = customer_summary(orders, calibration_end)
    actual = (
        orders.where(F.col("order_date").between(F.lit(calibration_end + timedelta(days=1)), F.lit(as_of)))
        .groupBy("user_id")
        .agg(F.countDistinct("order_date").cast("double").alias("actual"))
    )
    joined = with_predictions(summary, model, horizon).join(actual, "user_id", "left").fillna({"actual": 0.0})
    mae = float(joined.agg(F.avg(F.abs(F.col("expected_purchases") - F.col("actual")))).first()[0])
    buckets = (
        joined.groupBy(F.least(F.col("frequency"), F.lit(6.0)).cast("int").alias("frequency"))
        .agg(
            F.avg("expected_purchases").alias("predicted"),
            F.avg("actual").alias("actual"),
            F.count("*").alias("customers"),
        )
        .orderBy("frequency")
        .toPandas()
    )
    return mae, buckets


def train(lake: Lake, run: Run, config: Clv) -> Promotion:
    """Fit on history before the holdout, check on the holdout, register (champion if its holdout error is not
    larger than the current champion's on the same holdout)."""
    calibration_end = run.as_of - timedelta(days=config.holdout_days)
    orders = purchases(lake).cache()
    params = {"calibration_end": calibration_end.isoformat(), "holdout_days": config.holdout_days}
    with training_run(lake, MODEL, run, params | {"horizon_days": config.horizon_days}):
        bgnbd, gg, stats = fit(customer_summary(orders, calibration_end), config)
        model = ClvModel(bgnbd, gg)
        mlflow.log_params(btyd.params(bgnbd, gg))
        mae, buckets = holdout_check(orders, model, calibration_end, run.as_of)
        mlflow.log_metrics(stats | {"holdout_mae": mae})
        mlflow.log_dict(buckets.to_dict(orient="records"), "holdout_by_frequency.json")
        labels = [f"{f}+" if f == 6 else str(f) for f in buckets["frequency"]]
        series = {"predicted": list(buckets["predicted"]), "actual": list(buckets["actual"])}
        title = f"Holdout purchases per customer ({config.holdout_days} days)"
        log_bars("holdout_calibration", title, "repeat purchase days before the holdout", "purchases", labels, series)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=model, pip_requirements=[f"numpy=={np.__version__}", f"scipy=={_scipy()}"]
        )

        def champion_mae(uri: str) -> float:
            champion = mlflow.pyfunc.load_model(uri).unwrap_python_model()
            if getattr(champion, "summary", None) != SUMMARY_FORMAT:
                return float("inf")
            return holdout_check(orders, champion, calibration_end, run.as_of)[0]

        promotion = register(lake, MODEL, info.model_uri, "holdout_mae", mae, champion_mae, higher_is_better=False)
    log.info("clv: %s, %s, holdout MAE %.4f", bgnbd, gg, mae)
    orders.unpersist()
    return promotion


def _scipy() -> str:
    import scipy

    return scipy.__version__


def score(lake: Lake, run: Run, config: Clv) -> int:
    """Expected purchases, probability alive and expected value over the horizon for every buyer into gold.clv."""
    uri, version = champion_uri(lake, MODEL)
    model = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    predicted = with_predictions(customer_summary(purchases(lake), run.as_of), model, float(config.horizon_days))
    scored = predicted.select(
        "user_id",
        "expected_purchases",
        "probability_alive",
        (F.col("expected_purchases") * F.col("expected_order_value")).alias("expected_value"),
        F.lit(config.horizon_days).alias("horizon_days"),
    )
    return write_scores(lake, scored, "clv", registered_name(lake, MODEL), version, run.as_of)
