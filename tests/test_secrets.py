"""The PII salt is a secret (issue 10): after a whole pipeline run it is in no file of the lake (tables, Delta logs,
exports and their manifests, MLflow's store and artifacts), in no log record and in no MLflow parameter or tag."""

from __future__ import annotations

from pathlib import Path

import pytest

from audiencelake.core.lake import RESTRICTED
from audiencelake.models.tracking import client

pytestmark = pytest.mark.e2e


def _files(root: Path) -> list[Path]:
    """Every file the pipeline wrote under the world's folder (the generated landing files and truth excluded)."""
    return [p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] not in ("landing", "truth")]


def test_the_salt_is_in_no_file_log_or_mlflow_record(models_world) -> None:
    lake, root = models_world["lake"], models_world["root"]
    salt = lake.settings.pii_salt()
    files = _files(root)
    kinds = {p.suffix or p.name for p in files}
    assert {".parquet", ".json", ".csv", ".db"} <= kinds, kinds  # tables, Delta logs, manifests, exports, MLflow
    assert any("mlflow-artifacts" in p.parts for p in files) and any(p.name == "manifest.json" for p in files)
    leaks = [str(p) for p in files if salt.encode() in p.read_bytes()]
    assert not leaks, f"the salt is written in {leaks[:5]}"

    logs = models_world["logs"]
    assert len(logs) > 100 and any("stage export: done" in line for line in logs)
    assert not [line for line in logs if salt in line][:3]

    tracker = client(lake.settings)
    runs = tracker.search_runs([e.experiment_id for e in tracker.search_experiments()])
    assert runs
    for run in runs:
        values = [*run.data.params.values(), *run.data.tags.values()]
        assert not [v for v in values if salt in v], run.info.run_id


def test_the_file_scan_finds_strings_inside_parquet(models_world) -> None:
    """The scan above can fail: the same byte search finds a raw email in the restricted table's Parquet files."""
    lake, root = models_world["lake"], models_world["root"]
    email = lake.read(lake.ref(RESTRICTED, "crm_profiles_pii")).where("email IS NOT NULL").first()["email"]
    restricted = [p for p in _files(root) if RESTRICTED in p.parts and p.suffix == ".parquet"]
    assert any(email.encode() in p.read_bytes() for p in restricted)
