"""The model registry: register a trained version, promote it to `champion` only when it is at least as good as the
current champion on the same evaluation data (else it is the `challenger`), and load champions for scoring."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import mlflow
import mlflow.spark
from mlflow.exceptions import MlflowException

from audiencelake.core.errors import AudiencelakeError
from audiencelake.core.lake import Lake
from audiencelake.models.tracking import client, registered_name, registry_uri, require

log = logging.getLogger("audiencelake.models")
CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass(frozen=True)
class Promotion:
    name: str
    version: int
    metric: str
    value: float
    champion_version: int | None
    champion_value: float | None
    promoted: bool
    reason: str


def champion_version(lake: Lake, name: str) -> int | None:
    """The version the `champion` alias of registered model `name` points at, or None when it has none yet."""
    try:
        return int(client(lake.settings).get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def register(
    lake: Lake,
    model: str,
    model_uri: str,
    metric: str,
    value: float,
    evaluate: Callable[[str], float],
    higher_is_better: bool = True,
) -> Promotion:
    """Register the model logged at `model_uri` and decide its alias.

    Args:
        lake: the lake (its settings name the registry).
        model: the model's short name (segmentation, churn, ...).
        model_uri: where the new version was logged.
        metric: the primary metric's name.
        value: the new version's primary metric on the evaluation data.
        evaluate: computes the primary metric of the model at a `models:/` URI on the same evaluation data; called
            for the current champion before the new version is registered.
        higher_is_better: the metric's direction.
    """
    require(lake.settings)  # registers through MLflow's fluent API; `evaluate` loads through it
    name = registered_name(lake, model)
    current = champion_version(lake, name)
    current_value = evaluate(f"models:/{name}/{current}") if current is not None else None
    version = int(mlflow.register_model(model_uri, name).version)
    if current_value is None:
        promoted, reason = True, f"promoted: first version, {metric} {value:.4f}"
    else:
        promoted = value >= current_value if higher_is_better else value <= current_value
        relation = (">=" if higher_is_better else "<=") if promoted else ("<" if higher_is_better else ">")
        reason = (
            f"{'promoted' if promoted else 'not promoted'}: {metric} {value:.4f} {relation} champion "
            f"v{current}'s {current_value:.4f} on the same evaluation data"
        )
    tracker = client(lake.settings)
    tracker.set_registered_model_alias(name, CHAMPION if promoted else CHALLENGER, str(version))
    for key, tag in {"metric": metric, "metric_value": f"{value:.6f}", "promotion": reason}.items():
        tracker.set_model_version_tag(name, str(version), key, tag)
    if mlflow.active_run() is not None:
        mlflow.set_tag("audiencelake.promotion", reason)
        if current_value is not None:
            mlflow.log_metric(f"champion_{metric}", current_value)
    log.info("%s v%d %s", name, version, reason)
    return Promotion(name, version, metric, value, current, current_value, promoted, reason)


def register_spark_model(
    lake: Lake,
    model: str,
    spark_model,
    metric: str,
    value: float,
    evaluate: Callable[[object], float],
    higher_is_better: bool = True,
) -> Promotion:
    """Log a Spark ML model to the active run and `register` it; `evaluate` gets a loaded model (the champion)."""
    import pyspark

    # explicit requirements: MLflow's inference of them costs about 20 s per model
    info = mlflow.spark.log_model(spark_model, "model", pip_requirements=[f"pyspark=={pyspark.__version__}"])
    loaded = lambda uri: evaluate(mlflow.spark.load_model(uri))  # noqa: E731
    return register(lake, model, info.model_uri, metric, value, loaded, higher_is_better)


def champion_uri(lake: Lake, model: str) -> tuple[str, int]:
    """The `models:/<name>/<version>` URI of the champion (pinned, so the version and the model agree) and its
    version. The URI is for MLflow's loaders, which read the process's registry: it must be the lake's.

    Raises:
        AudiencelakeError: the model has no champion yet, or the process's MLflow points at another registry.
    """
    require(lake.settings)
    name = registered_name(lake, model)
    version = champion_version(lake, name)
    if version is None:
        raise AudiencelakeError(
            f"model '{name}' has no '{CHAMPION}' version in the registry at {registry_uri(lake.settings)}; "
            f"train it first: audiencelake train_{model}"
        )
    return f"models:/{name}/{version}", version


def champion_exists(lake: Lake, model: str) -> bool:
    """Whether the model has a champion in the registry."""
    return champion_version(lake, registered_name(lake, model)) is not None


def champion_run(lake: Lake, model: str) -> str:
    """`<name>/<version>/<MLflow run id>` of the champion: what a score computed from it depends on (the same
    version number in another registry, or a recreated one, is another model).

    Raises:
        AudiencelakeError: the model has no champion yet.
    """
    uri, version = champion_uri(lake, model)
    name = uri.removeprefix("models:/").rsplit("/", 1)[0]
    return f"{name}/{version}/{client(lake.settings).get_model_version(name, str(version)).run_id}"


@dataclass(frozen=True)
class ChampionInfo:
    name: str
    version: int | None
    metric: str
    value: str
    trained: str
    versions: int


def list_models(lake: Lake, models: list[str]) -> list[ChampionInfo]:
    """Each model's champion version, its primary metric and when it was trained, with the number of versions."""
    tracker = client(lake.settings)
    rows = []
    for model in models:
        name = registered_name(lake, model)
        version = champion_version(lake, name)
        try:
            count = len(tracker.search_model_versions(f"name = '{name}'"))
        except MlflowException:
            count = 0
        if version is None:
            rows.append(ChampionInfo(name, None, "-", "-", "-", count))
            continue
        mv = tracker.get_model_version(name, str(version))
        trained = datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        rows.append(
            ChampionInfo(name, version, mv.tags.get("metric", "-"), mv.tags.get("metric_value", "-"), trained, count)
        )
    return rows


def champion_model_version(lake: Lake, model: str):
    """The MLflow ModelVersion of the model's champion (its tags, its training run id), or None."""
    name = registered_name(lake, model)
    version = champion_version(lake, name)
    return None if version is None else client(lake.settings).get_model_version(name, str(version))


def champion_tag(lake: Lake, model: str, key: str) -> tuple[int, str | None] | None:
    """(version, value of tag `key`) of the model's champion, or None when it has no champion."""
    mv = champion_model_version(lake, model)
    return None if mv is None else (int(mv.version), mv.tags.get(key))


def tag_version(lake: Lake, model: str, version: int, key: str, value: str) -> None:
    client(lake.settings).set_model_version_tag(registered_name(lake, model), str(version), key, value)
