"""Promotion in a real MLflow registry (SQLite): a new version becomes champion only when its primary metric on the
same evaluation data is at least the champion's; otherwise it is the challenger and the reason says why."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest

from audiencelake.core.errors import AudiencelakeError, ConfigError
from audiencelake.core.lake import Lake
from audiencelake.models import btyd
from audiencelake.models.clv import ClvModel
from audiencelake.models.config import load_models_config
from audiencelake.models.registry import champion_uri, list_models, register
from audiencelake.models.tracking import client, configure, experiment
from conftest import lake_settings

# evaluation data: customer summaries drawn once; the metric is the mean BG/NBD log-likelihood on them
RNG = np.random.default_rng(2)
X = RNG.poisson(2.0, 400).astype(float)
T = RNG.integers(40, 120, 400).astype(float)
TX = np.minimum(T, RNG.uniform(0, 1, 400) * T) * (X > 0)
GOOD = btyd.fit_bgnbd(X, TX, T, np.ones(len(X)))[0]
BAD = btyd.BgNbd(GOOD.r * 4, GOOD.alpha, GOOD.a, GOOD.b)
GG = btyd.GammaGamma(2.0, 3.0, 10.0)


def mean_log_likelihood(uri: str) -> float:
    model = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    return float(np.mean(btyd.bgnbd_log_likelihood(model.bgnbd, X, TX, T)))


def train_version(lake: Lake, params: btyd.BgNbd):
    with mlflow.start_run(experiment_id=experiment(lake, "clv")):
        info = mlflow.pyfunc.log_model(name="model", python_model=ClvModel(params, GG), pip_requirements=["numpy"])
        value = float(np.mean(btyd.bgnbd_log_likelihood(params, X, TX, T)))
        return register(lake, "clv", info.model_uri, "mean_log_likelihood", value, mean_log_likelihood)


def test_promotion_both_ways(tmp_path):
    lake = Lake(None, lake_settings(tmp_path))
    configure(lake.settings)  # what the stage runner does before a stage
    with pytest.raises(AudiencelakeError, match="no 'champion' version"):
        champion_uri(lake, "clv")
    first = train_version(lake, GOOD)
    assert first.promoted and first.reason.startswith("promoted: first version")
    worse = train_version(lake, BAD)
    assert not worse.promoted
    assert worse.champion_version == first.version
    assert worse.champion_value == pytest.approx(first.value)
    assert "not promoted" in worse.reason and f"champion v{first.version}" in worse.reason
    registry = client(lake.settings)
    assert int(registry.get_model_version_by_alias("audiencelake_clv", "challenger").version) == worse.version
    assert champion_uri(lake, "clv") == (f"models:/audiencelake_clv/{first.version}", first.version)
    equal = train_version(lake, GOOD)  # as good as the champion: promoted
    assert equal.promoted and ">=" in equal.reason
    assert champion_uri(lake, "clv")[1] == equal.version
    assert registry.get_model_version("audiencelake_clv", str(worse.version)).tags["promotion"] == worse.reason
    [row] = list_models(lake, ["clv"])
    assert (row.version, row.metric, row.versions) == (equal.version, "mean_log_likelihood", 3)


def test_library_functions_leave_the_process_mlflow_alone(tmp_path):
    """Registry reads go to the lake's own store whatever the process points at; a call through MLflow's fluent API
    for a lake the process does not point at is refused in one line, instead of writing to another store."""
    ours, other = (Lake(None, lake_settings(tmp_path / name)) for name in ("ours", "other"))
    configure(ours.settings)
    train_version(ours, GOOD)
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    assert list_models(other, ["clv"])[0].version is None and list_models(ours, ["clv"])[0].version == 1
    with pytest.raises(AudiencelakeError, match=r"^mlflow\.tracking_uri: .*ours.*other.*configure\(settings\)"):
        champion_uri(other, "clv")
    assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == before


def test_models_config_names_the_file_and_key(tmp_path):
    source = (load_models_config().file and open(load_models_config().file).read()) or ""
    bad = tmp_path / "models.yaml"
    bad.write_text(source.replace('expr: "coalesce(orders_365d, 0)"', 'expr: "coalesce(order_count, 0)"'))
    with pytest.raises(ConfigError) as err:
        load_models_config(bad)
    assert str(bad) in str(err.value) and "churn.features.orders_365d.expr" in str(err.value)
    assert "order_count" in str(err.value)
    bad.write_text(source.replace("k_max: 8", "k_max: 2"))
    with pytest.raises(ConfigError, match="segmentation"):
        load_models_config(bad)
    bad.write_text(source.replace("  folds: 3", "  folds: three"))
    with pytest.raises(ConfigError, match="churn.folds"):
        load_models_config(bad)


def test_the_search_is_sized_by_the_training_data() -> None:
    """conf/models.yaml's `small_data` blocks: the smaller search strictly below `below`, the full one from it on,
    and always the full one without the block."""
    config = load_models_config()
    churn, recs = config.churn, config.recommendations
    assert churn.search(churn.small_data.below - 1) == ("small_data", churn.small_data.grids)
    assert churn.search(churn.small_data.below) == ("full", churn.grids)
    assert recs.search(recs.small_data.below - 1) == ("small_data", recs.small_data.grid)
    assert recs.search(recs.small_data.below) == ("full", recs.grid)
    assert churn.model_copy(update={"small_data": None}).search(1)[0] == "full"
    points = len(recs.small_data.grid.rank) * len(recs.small_data.grid.reg_param) * len(recs.small_data.grid.alpha)
    assert points < len(recs.grid.rank) * len(recs.grid.reg_param) * len(recs.grid.alpha)


def test_a_typo_in_either_churn_grid_is_named_whichever_grid_runs(spark) -> None:
    from audiencelake.models.churn import _candidate

    churn = load_models_config().churn
    small = churn.small_data.model_copy(update={"grids": {"gbt": {"maxDeep": [3]}}})
    with pytest.raises(ConfigError, match=r"churn\.small_data\.grids\.gbt\.maxDeep"):
        _candidate("gbt", churn.model_copy(update={"small_data": small}), churn.grids)  # the full grid runs
    with pytest.raises(ConfigError, match=r"churn\.grids\.logistic_regression\.regParm"):
        _candidate(
            "logistic_regression",
            churn.model_copy(update={"grids": {"logistic_regression": {"regParm": [1]}}}),
            churn.small_data.grids,
        )  # fmt: skip  (the small grid runs)
