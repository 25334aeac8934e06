"""One session-scoped local Spark + Delta session for the whole suite, and per-test lake settings."""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

from audiencelake.config import Settings, load_settings  # noqa: E402
from audiencelake.session import build_session  # noqa: E402

DRIVER_RESULT_LIMIT = "4m"
TEST_OVERRIDES = [
    "spark.master=local[2]",
    "spark.conf.spark.sql.shuffle.partitions=2",
    "spark.conf.spark.default.parallelism=2",
    "spark.conf.spark.ui.enabled=false",
    "spark.conf.spark.ui.showConsoleProgress=false",
    # A small result limit: no stage may collect data that grows with the lake. 4 MB of task results per action is
    # far less than a world's events (tests/test_models_world.py checks that collecting them fails); broadcasts,
    # which are collected too, are capped under it. (The driver is also every executor here and the session lives
    # for the whole suite: at 3g, GC logs showed 2.3-2.9 GB live after full GCs by the time the hostile-input
    # tests ran, and the 50 MB record's copies ended the JVM. 6g leaves room; the machine has 24 GiB.)
    "spark.conf.spark.driver.memory=6g",
    f"spark.conf.spark.driver.maxResultSize={DRIVER_RESULT_LIMIT}",
    "spark.conf.spark.sql.autoBroadcastJoinThreshold=2m",
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


MODELS_WORLD = {"users": 500, "days": 180, "seed": 5}


def small_models_config(path: Path) -> Path:
    """conf/models.yaml with segmentation's k range cut down to fit the suite's time budget (the same models; the
    test worlds are small enough for churn's and recommendations' `small_data` searches)."""
    import yaml

    from audiencelake.resources import resource_dir

    raw = yaml.safe_load((resource_dir("conf") / "models.yaml").read_text())
    raw["segmentation"].update(k_min=4, k_max=6)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@contextmanager
def captured_logs():
    """The formatted records the block logs: audiencelake's at DEBUG, everything else at its usual level."""
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(f"{record.name}: {record.getMessage()}")
    ours = logging.getLogger("audiencelake")
    level = ours.level
    logging.getLogger().addHandler(handler)
    ours.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        ours.setLevel(level)
        logging.getLogger().removeHandler(handler)


@pytest.fixture(scope="session")
def models_world(spark, tmp_path_factory: pytest.TempPathFactory):
    """A six-month world run through every stage, models included (trained, registered and scored once)."""
    from audiencelake.lake import Lake
    from audiencelake.runs import Run
    from audiencelake.stages import StageContext, run_pipeline
    from audiencelake.synth.world import DEFAULT_END

    root = tmp_path_factory.mktemp("models-world")
    config = small_models_config(root / "models.yaml")
    lake = Lake(spark, lake_settings(root, f"models.config={config}"))
    ctx = StageContext(lake, Run.create(as_of=DEFAULT_END, run_id="models-1"), dict(MODELS_WORLD))
    with captured_logs() as logs:  # every record of the run, at DEBUG (tests/test_secrets.py reads them)
        counts = run_pipeline(ctx)
    return {"lake": lake, "root": root, "truth": root / "truth", "counts": counts, "ctx": ctx, "config": config,
            "logs": logs}  # fmt: skip


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built offline from this checkout (hatchling is a dev dependency)."""
    import subprocess

    out = tmp_path_factory.mktemp("dist")
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)]
    subprocess.run(cmd, check=True)
    [built] = out.glob("audiencelake-*.whl")
    return built
