"""One session-scoped local Spark + Delta session for the whole suite, and per-test lake settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

from audiencelake.config import Settings, load_settings  # noqa: E402
from audiencelake.session import build_session  # noqa: E402

TEST_OVERRIDES = [
    "spark.master=local[2]",
    "spark.conf.spark.sql.shuffle.partitions=2",
    "spark.conf.spark.default.parallelism=2",
    "spark.conf.spark.ui.enabled=false",
    "spark.conf.spark.ui.showConsoleProgress=false",
    "spark.conf.spark.driver.memory=3g",
]


def lake_settings(root: Path, *extra: str) -> Settings:
    """Local settings whose lake, landing folder and MLflow store live under `root`."""
    return load_settings(
        "local",
        [
            *TEST_OVERRIDES,
            f"lake.root={root / 'lake'}",
            f"lake.landing={root / 'landing'}",
            f"mlflow.tracking_uri=sqlite:///{root / 'mlflow.db'}",
            *extra,
        ],
        environ={},
    )


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory):
    warehouse = tmp_path_factory.mktemp("warehouse")
    settings = lake_settings(warehouse, f"spark.conf.spark.sql.warehouse.dir={warehouse / 'spark-warehouse'}")
    session = build_session(settings)
    session.sparkContext.setLogLevel("ERROR")
    session.sparkContext.setCheckpointDir(str(warehouse / "checkpoints"))
    yield session
    session.stop()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return lake_settings(tmp_path)


WORLD = {"users": 300, "days": 45, "seed": 7}


@pytest.fixture(scope="session")
def world(spark, tmp_path_factory: pytest.TempPathFactory):
    """A small generated world, ingested once through every stage of this issue (synth -> quality)."""
    from audiencelake.lake import Lake
    from audiencelake.runs import Run
    from audiencelake.stages import StageContext, run_pipeline

    root = tmp_path_factory.mktemp("world")
    settings = lake_settings(root)
    lake = Lake(spark, settings)
    ctx = StageContext(lake, Run.create(run_id="e2e-1"), dict(WORLD))
    counts = run_pipeline(ctx, stop="quality")
    return {"lake": lake, "root": root, "truth": root / "truth", "counts": counts, "ctx": ctx}
