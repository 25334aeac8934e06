"""The models on a generated world: each recovers what the generator planted, writes its gold table stamped with
the registered model's name and version, and logs its metrics and plots to MLflow.

Expected values come from the planted truth (truth/users.csv) and are compared with scikit-learn and scipy, not
with the code under test.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import adjusted_rand_score, roc_auc_score

from audiencelake.models.tracking import client, registered_name
from conftest import DRIVER_RESULT_LIMIT

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def truth(models_world) -> pd.DataFrame:
    return pd.read_csv(models_world["truth"] / "users.csv")


def gold(models_world, table: str) -> pd.DataFrame:
    lake = models_world["lake"]
    return lake.read(lake.ref("gold", table)).toPandas()


def latest_run(models_world, model: str):
    tracker = client(models_world["lake"].settings)
    experiment = tracker.get_experiment_by_name(f"/audiencelake/{model}")
    return tracker.search_runs([experiment.experiment_id], order_by=["start_time DESC"], max_results=1)[0]


def artifacts(models_world, run) -> set[str]:
    return {a.path for a in client(models_world["lake"].settings).list_artifacts(run.info.run_id)}


def test_every_model_stage_ran_and_registered_a_champion(models_world):
    counts = models_world["counts"]
    tracker = client(models_world["lake"].settings)
    for model in ("segmentation", "churn", "clv", "recommendations", "propensity"):
        assert counts[f"train_{model}"]["promoted"] == 1, counts[f"train_{model}"]
        assert counts[f"score_{model}"]["rows"] > 0
        name = registered_name(models_world["lake"], model)
        assert int(tracker.get_model_version_by_alias(name, "champion").version) == counts[f"train_{model}"]["version"]


def test_the_pipeline_ran_under_a_driver_limit_smaller_than_its_data(models_world, spark):
    """The whole pipeline above ran with conftest's small spark.driver.maxResultSize: collecting the world's events
    to the driver fails under it, so no stage can have collected data that grows with the lake."""
    assert spark.sparkContext.getConf().get("spark.driver.maxResultSize") == DRIVER_RESULT_LIMIT
    events = models_world["lake"].read(models_world["lake"].ref("silver", "clickstream_events"))
    with pytest.raises(Exception, match="maxResultSize"):
        events.collect()


def test_segments_recover_the_planted_segments(models_world, truth):
    segments = gold(models_world, "segments").merge(truth, left_on="user_id", right_on="customer_id")
    assert len(segments) >= 0.95 * len(truth)
    ari = adjusted_rand_score(segments["segment_x"], segments["segment_y"])
    assert ari >= 0.8, ari
    run = latest_run(models_world, "segmentation")
    assert {"silhouette.png", "segments.json"} <= artifacts(models_world, run)
    assert run.data.metrics["k"] == 5
    # every segment is described in words, and the champions' segment (mostly planted champions) as big spenders
    assert (segments["description"].str.len() > 0).all()
    champions = segments[segments["segment_y"] == "champions"]["description"].mode()[0]
    assert "frequent buyers" in champions or "high spend" in champions, champions
    assert set(segments["model_name"]) == {"audiencelake_segmentation"}


def test_churn_scores_rank_the_planted_churners(models_world, truth):
    scores = gold(models_world, "churn_scores").merge(truth, left_on="user_id", right_on="customer_id")
    auc = roc_auc_score(scores["churner"], scores["probability"])
    assert auc >= 0.85, auc
    assert set(scores["risk_band"]) <= {"high", "medium", "low"}
    high = scores[scores["risk_band"] == "high"]["churner"].mean()
    low = scores[scores["risk_band"] == "low"]["churner"].mean()
    assert high > low
    run = latest_run(models_world, "churn")
    assert run.data.tags["audiencelake.chosen"] in {"logistic_regression", "gbt"}
    assert {"cv_roc_auc_logistic_regression", "cv_roc_auc_gbt", "roc_auc", "pr_auc", "top_decile_lift"} <= set(
        run.data.metrics
    )
    assert {"churn_roc.png", "churn_lift.png", "churn_calibration.json"} <= artifacts(models_world, run)
    assert run.data.params["search"] == "small_data"  # a few hundred users: conf/models.yaml's smaller search


def test_clv_ranks_customers_by_their_planted_future_value(models_world, truth):
    clv = gold(models_world, "clv").merge(truth, left_on="user_id", right_on="customer_id")
    horizon = int(clv["horizon_days"].iloc[0])
    planted = (~clv["churner"]) * clv["purchase_rate"] * horizon * clv["expected_order_value"]
    rho = spearmanr(clv["expected_value"], planted).statistic
    assert rho >= 0.7, rho
    assert ((clv["probability_alive"] > 0) & (clv["probability_alive"] <= 1)).all()
    run = latest_run(models_world, "clv")
    assert {"r", "alpha", "a", "b", "p", "q", "v"} <= set(run.data.params)
    metrics = run.data.metrics
    assert metrics["bgnbd_log_likelihood"] < 0 and metrics["gamma_gamma_log_likelihood"] < 0
    assert metrics["compressed_rows_bgnbd"] < metrics["customers"]
    assert "holdout_calibration.png" in artifacts(models_world, run)


def test_recommendations_beat_popularity_and_leave_out_purchases(models_world):
    run = latest_run(models_world, "recommendations")
    metrics = run.data.metrics
    assert metrics["precision_at_k"] >= 2 * metrics["baseline_precision_at_k"], metrics
    assert run.data.params["search"] == "small_data" and run.data.params["grid"] == "2"  # alpha 1 and 5
    for name in ("recall", "map", "ndcg", "coverage"):
        assert f"{name}_at_k" in metrics and f"baseline_{name}_at_k" in metrics
    assert "validation_precision_at_k" in metrics  # the grid was chosen on the window before the test window
    assert run.data.params["validation_cut"] < run.data.params["test_cut"]
    recs = gold(models_world, "recommendations")
    assert set(recs["reason"]) <= {"als", "fallback"} and "als" in set(recs["reason"])
    per_user = recs[recs["reason"] == "als"].groupby("user_id")["rank"].agg(["size", "max"])
    assert (per_user["size"] == 10).all() and (per_user["max"] == 10).all()  # bought items left out first
    assert not recs.duplicated(["user_id", "item_id"]).any()
    lake = models_world["lake"]
    bought = (
        lake.read(lake.ref("silver", "orders"))
        .where("line_type = 'purchase'")
        .select("customer_id", "item_id")
        .toPandas()
    )
    overlap = recs.merge(bought, left_on=["user_id", "item_id"], right_on=["customer_id", "item_id"])
    assert overlap.empty, overlap.head()


def test_propensity_scores_every_user_per_campaign_type(models_world):
    scores = gold(models_world, "propensity")
    assert set(scores["campaign_type"]) == {"email", "sms", "push", "ads"}
    assert scores.groupby("user_id").size().eq(4).all()
    assert scores["score"].between(0, 1).all()
    run = latest_run(models_world, "propensity")
    assert "roc_auc" in run.data.metrics and "propensity_calibration.json" in artifacts(models_world, run)
    path = client(models_world["lake"].settings).download_artifacts(run.info.run_id, "propensity_calibration.json")
    calibration = json.loads(open(path).read())
    assert sum(row["rows"] for row in calibration["calibration"]) == calibration["rows"]
