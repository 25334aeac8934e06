"""MLflow: where runs and registered models live, and the names models are registered under.

Local: a SQLite backend (relative paths resolve against the project folder, like every configured path) with
artifacts under the lake folder. Cluster and Databricks: the configured tracking and registry URIs (on Unity
Catalog the registered names are `<catalog>.models.<model>`).

The process's MLflow (the store MLflow's fluent API, `mlflow.start_run` and `mlflow.log_*`, writes to) is set by
`configure` in one place, the stage runner, from the lake's settings before a stage runs: once in a process that
serves one lake (a command, a job), whatever else that process had set for a process that switches lakes (the
tests). Library functions never set it: registry and experiment calls go through `client(settings)`, bound to the
settings' own URIs, and those that need the fluent API first check, with `require`, that the process points where
the lake's settings say.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import mlflow
from mlflow import MlflowClient

from audiencelake.core.config import Settings
from audiencelake.core.errors import AudiencelakeError
from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run

SQLITE = "sqlite:///"


def tracking_uri(settings: Settings) -> str:
    """The tracking store's URI: `{lake}` is the lake's root, a relative SQLite path the project's."""
    uri = settings.mlflow.tracking_uri.replace("{lake}", settings.lake_root)
    if uri.startswith(SQLITE) and not uri[len(SQLITE) :].startswith("/"):
        return SQLITE + settings.resolve(uri[len(SQLITE) :])
    return uri


def registry_uri(settings: Settings) -> str:
    return settings.mlflow.registry_uri or tracking_uri(settings)


def client(settings: Settings) -> MlflowClient:
    """A client of the settings' tracking and registry stores, whatever the process's MLflow points at. A SQLite
    store is opened the first time in a process (creating its folder): a new file gets its tables then, from one
    thread, not from two stages training at once (driver threads) that would both find it empty."""
    uris = (tracking_uri(settings), registry_uri(settings))
    with _OPENING:
        found = _CLIENTS.get(uris)
        if found is None:
            found = MlflowClient(*uris)
            if uris[0].startswith(SQLITE):  # (a server or Databricks makes its own)
                os.makedirs(os.path.dirname(uris[0][len(SQLITE) :]), exist_ok=True)
                found.search_experiments(max_results=1)
                if uris[1].startswith(SQLITE):
                    found.search_registered_models(max_results=1)
            _CLIENTS[uris] = found
    return found


_OPENING = threading.Lock()
_CLIENTS: dict[tuple[str, str], MlflowClient] = {}


def configure(settings: Settings) -> None:
    """Point the process's MLflow at the settings' tracking and registry stores (the store is opened once per
    process; setting the URIs again to the same values changes nothing)."""
    client(settings)
    mlflow.set_tracking_uri(tracking_uri(settings))
    mlflow.set_registry_uri(registry_uri(settings))


def require(settings: Settings) -> None:
    """Check that the process's MLflow points at the settings' stores before a call through MLflow's fluent API.

    Raises:
        AudiencelakeError: it points elsewhere: `configure` was not called for these settings.
    """
    for what, wanted, actual in (
        ("tracking_uri", tracking_uri(settings), mlflow.get_tracking_uri()),
        ("registry_uri", registry_uri(settings), mlflow.get_registry_uri()),
    ):
        if actual != wanted:
            raise AudiencelakeError(
                f"mlflow.{what}: this process's MLflow points at {actual!r}, the lake's settings at {wanted!r}; "
                "run it as a stage (audiencelake.stages.runner.run_stage configures it) or call "
                "audiencelake.models.tracking.configure(settings) first"
            )


def registered_name(lake: Lake, model: str) -> str:
    """The registry name of a model: `audiencelake_<model>`, or `<catalog>.models.<model>` on Unity Catalog."""
    catalog = lake.settings.lake.catalog
    return f"{catalog}.models.{model}" if catalog else f"audiencelake_{model}"


def experiment(lake: Lake, model: str) -> str:
    """The id of the model's experiment, created once; local artifacts go under the lake folder. Not made MLflow's
    active experiment, which is one per process: stages that train at once (driver threads) name theirs per run."""
    tracker = client(lake.settings)
    name = f"/audiencelake/{model}"
    found = tracker.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if tracking_uri(lake.settings).startswith(SQLITE):
        location = f"{lake.settings.lake_root}/mlflow-artifacts/{model}"
    return tracker.create_experiment(name, artifact_location=location)


@contextmanager
def training_run(lake: Lake, model: str, run: Run, params: dict) -> Iterator[mlflow.ActiveRun]:
    """An MLflow run for training `model` in the pipeline run `run`, with its params logged (the active run is this
    thread's)."""
    require(lake.settings)
    with mlflow.start_run(experiment_id=experiment(lake, model), run_name=f"{model}-{run.run_id}") as active:
        mlflow.set_tags({"audiencelake.run_id": run.run_id, "audiencelake.as_of": run.as_of.isoformat()})
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        yield active
