"""MLflow: where runs and registered models live, and the names models are registered under.

Local: a SQLite backend (relative paths resolve against the project folder, like every configured path) with
artifacts under the lake folder. Cluster and Databricks: the configured tracking and registry URIs (on Unity
Catalog the registered names are `<catalog>.models.<model>`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import mlflow

from audiencelake.config import Settings
from audiencelake.lake import Lake
from audiencelake.runs import Run

SQLITE = "sqlite:///"


def tracking_uri(settings: Settings) -> str:
    uri = settings.mlflow.tracking_uri
    if uri.startswith(SQLITE) and not uri[len(SQLITE) :].startswith("/"):
        return SQLITE + settings.resolve(uri[len(SQLITE) :])
    return uri


def configure(settings: Settings) -> None:
    """Point MLflow at the configured tracking and registry stores (creating a local SQLite file's folder)."""
    uri = tracking_uri(settings)
    if uri.startswith(SQLITE):
        os.makedirs(os.path.dirname(uri[len(SQLITE) :]), exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(settings.mlflow.registry_uri or uri)


def registered_name(lake: Lake, model: str) -> str:
    """The registry name of a model: `audiencelake_<model>`, or `<catalog>.models.<model>` on Unity Catalog."""
    catalog = lake.settings.lake.catalog
    return f"{catalog}.models.{model}" if catalog else f"audiencelake_{model}"


def experiment(lake: Lake, model: str) -> str:
    """Create (once) and select the model's experiment; local artifacts go under the lake folder."""
    configure(lake.settings)
    name = f"/audiencelake/{model}"
    if mlflow.get_experiment_by_name(name) is None:
        location = None
        if tracking_uri(lake.settings).startswith(SQLITE):
            location = f"{lake.settings.lake_root}/mlflow-artifacts/{model}"
        mlflow.create_experiment(name, artifact_location=location)
    mlflow.set_experiment(name)
    return name


@contextmanager
def training_run(lake: Lake, model: str, run: Run, params: dict) -> Iterator[mlflow.ActiveRun]:
    """An MLflow run for training `model` in the pipeline run `run`, with its params logged."""
    experiment(lake, model)
    with mlflow.start_run(run_name=f"{model}-{run.run_id}") as active:
        mlflow.set_tags({"audiencelake.run_id": run.run_id, "audiencelake.as_of": run.as_of.isoformat()})
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        yield active
