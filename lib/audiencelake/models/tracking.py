"""MLflow: where runs and registered models live, and the names models are registered under.

Local: a SQLite backend (relative paths resolve against the project folder, like every configured path) with
artifacts under the lake folder. Cluster and Databricks: the configured tracking and registry URIs (on Unity
Catalog the registered names are `<catalog>.models.<model>`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import mlflow
from mlflow import MlflowClient

from audiencelake.core.config import Settings
from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run

SQLITE = "sqlite:///"


def tracking_uri(settings: Settings) -> str:
    uri = settings.mlflow.tracking_uri
    if uri.startswith(SQLITE) and not uri[len(SQLITE) :].startswith("/"):
        return SQLITE + settings.resolve(uri[len(SQLITE) :])
    return uri


def configure(settings: Settings) -> None:
    """Point MLflow at the configured tracking and registry stores (creating a local SQLite file's folder). A SQLite
    store is opened the first time in a process: a new file gets its tables then, from one thread, not from two
    stages training at once (driver threads) that would both find it empty."""
    uri = tracking_uri(settings)
    registry = settings.mlflow.registry_uri or uri
    with _OPENING:
        if uri.startswith(SQLITE):
            os.makedirs(os.path.dirname(uri[len(SQLITE) :]), exist_ok=True)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(registry)
        if uri.startswith(SQLITE) and (uri, registry) not in _OPENED:  # (a server or Databricks makes its own)
            client = MlflowClient(uri, registry)
            client.search_experiments(max_results=1)
            if registry.startswith(SQLITE):
                client.search_registered_models(max_results=1)
            _OPENED.add((uri, registry))


_OPENING = threading.Lock()
_OPENED: set[tuple[str, str]] = set()


def registered_name(lake: Lake, model: str) -> str:
    """The registry name of a model: `audiencelake_<model>`, or `<catalog>.models.<model>` on Unity Catalog."""
    catalog = lake.settings.lake.catalog
    return f"{catalog}.models.{model}" if catalog else f"audiencelake_{model}"


def experiment(lake: Lake, model: str) -> str:
    """The id of the model's experiment, created once; local artifacts go under the lake folder. Not made MLflow's
    active experiment, which is one per process: stages that train at once (driver threads) name theirs per run."""
    configure(lake.settings)
    name = f"/audiencelake/{model}"
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if tracking_uri(lake.settings).startswith(SQLITE):
        location = f"{lake.settings.lake_root}/mlflow-artifacts/{model}"
    return mlflow.create_experiment(name, artifact_location=location)


@contextmanager
def training_run(lake: Lake, model: str, run: Run, params: dict) -> Iterator[mlflow.ActiveRun]:
    """An MLflow run for training `model` in the pipeline run `run`, with its params logged (the active run is this
    thread's)."""
    with mlflow.start_run(experiment_id=experiment(lake, model), run_name=f"{model}-{run.run_id}") as active:
        mlflow.set_tags({"audiencelake.run_id": run.run_id, "audiencelake.as_of": run.as_of.isoformat()})
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        yield active
