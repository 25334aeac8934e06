"""Re-runs and time on the trained models world: `models list`, a second run of every train and score stage changes
nothing, and churn features come only from data at or before the reference date (an order placed after it changes
the label and nothing else; this test changes silver, so it comes last)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pyspark.sql import functions as F

from audiencelake.cli.main import main
from audiencelake.models.churn import labelled
from audiencelake.models.config import load_models_config
from audiencelake.stages.runner import run_stage

pytestmark = pytest.mark.e2e


def comparable(df):
    """Arrays as tuples, so frames compare value by value."""
    return df.map(lambda v: tuple(v) if hasattr(v, "__len__") and not isinstance(v, str) else v)


def test_models_list_shows_each_champion(models_world, capsys):
    settings = models_world["lake"].settings
    main(
        [
            "models",
            "list",
            "--set",
            f"lake.root={settings.lake_root}",
            "--set",
            f"mlflow.tracking_uri={settings.mlflow.tracking_uri}",
        ]
    )
    out = capsys.readouterr().out
    for model, metric in (("segmentation", "silhouette"), ("churn", "roc_auc"), ("clv", "holdout_mae"),
                          ("recommendations", "precision_at_k"), ("propensity", "roc_auc")):  # fmt: skip
        line = next(line for line in out.splitlines() if line.startswith(f"audiencelake_{model} "))
        assert metric in line and "2026-" in line


def test_running_the_model_stages_again_changes_nothing(models_world):
    """A second run trains nothing and keeps every score (no commit: champion, inputs and output as they were);
    scores whose rows were removed since are written again."""
    lake, ctx, counts = models_world["lake"], models_world["ctx"], models_world["counts"]
    tables = {}
    for model in ("segmentation", "churn", "clv", "recommendations", "propensity"):
        ref = lake.ref("gold", {"segmentation": "segments", "churn": "churn_scores"}.get(model, model))
        tables[model] = ref, lake.version(ref), lake.read(ref).orderBy(*lake.read(ref).columns).collect()
        again = run_stage(f"train_{model}", ctx)
        assert again == {"version": counts[f"train_{model}"]["version"], "promoted": 0, "unchanged": 1}
        assert run_stage(f"score_{model}", ctx) == {**counts[f"score_{model}"], "kept": 1}
        assert lake.version(ref) == tables[model][1], model
    ref, _, rows = tables["clv"]
    lake.delta(ref).delete(F.col("as_of") == F.lit(ctx.run.as_of))  # the output changed since it was recorded
    assert run_stage("score_clv", ctx) == counts["score_clv"]
    assert lake.read(ref).orderBy(*lake.read(ref).columns).collect() == rows


def test_an_order_after_the_reference_date_changes_the_label_not_the_features(models_world):
    lake, run = models_world["lake"], models_world["ctx"].run
    config = load_models_config(models_world["config"], lake.settings.profile.tags).churn
    reference = run.as_of - timedelta(days=config.label_days)
    before = labelled(lake, run, config).toPandas().set_index("user_id").sort_index()
    user = before[before["label"] == 1.0].index[0]
    orders_ref = lake.ref("silver", "orders")
    version = lake.version(orders_ref)
    moment = datetime(reference.year, reference.month, reference.day, 12) + timedelta(days=1)
    template = lake.read(orders_ref).where("line_type = 'purchase'").limit(1)
    late = template.select(
        F.lit("O-LATE-1").alias("order_id"),
        *[c for c in template.columns if c not in ("order_id", "customer_id", "user_id", "order_ts", "order_date")],
        F.lit(user).alias("customer_id"),
        F.lit(user).alias("user_id"),
        F.lit(moment).cast("timestamp").alias("order_ts"),
        F.lit(moment.date()).alias("order_date"),
    ).select(*template.columns)
    lake.append(late, orders_ref)
    try:
        after = labelled(lake, run, config).toPandas().set_index("user_id").sort_index()
    finally:
        lake.delta(orders_ref).restoreToVersion(version)
    assert after.loc[user, "label"] == 0.0  # the late order is in the label window...
    profiles = lake.read(lake.ref("gold", "user_profile")).where(F.col("as_of") == reference)
    assert profiles.limit(1).count() == 0  # (training computes its reference profile; gold holds the run date's)
    features = [c for c in before.columns if c != "label"]
    assert comparable(before[features]).equals(comparable(after[features]))  # ...and in no feature of anyone
    assert (before.drop(index=user)["label"] == after.drop(index=user)["label"]).all()
