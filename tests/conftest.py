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

# pytest-xdist's workers run under execnet, whose `__main__` has neither a spec nor a file: PySpark's Connect module
# (imported by Great Expectations) takes that for a doctest run and calls sys.exit(0) when grpc is missing. Naming a
# file for a worker's `__main__` tells it otherwise; nothing reads it.
_main = sys.modules["__main__"]
if os.environ.get("PYTEST_XDIST_WORKER") and not getattr(_main, "__spec__", None) and not hasattr(_main, "__file__"):
    _main.__file__ = __file__

from audiencelake.core.config import Settings, load_settings  # noqa: E402
from audiencelake.core.session import build_session  # noqa: E402

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
    from audiencelake.core.lake import Lake
    from audiencelake.core.runs import Run
    from audiencelake.stages.declaration import StageContext
    from audiencelake.stages.runner import run_pipeline

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

    from audiencelake.core.resources import resource_dir

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
    from audiencelake.core.lake import Lake
    from audiencelake.core.runs import Run
    from audiencelake.stages.declaration import StageContext
    from audiencelake.stages.runner import run_pipeline
    from audiencelake.synth.world import DEFAULT_END

    root = tmp_path_factory.mktemp("models-world")
    config = small_models_config(root / "models.yaml")
    lake = Lake(spark, lake_settings(root, f"models.config={config}"))
    ctx = StageContext(lake, Run.create(as_of=DEFAULT_END, run_id="models-1"), dict(MODELS_WORLD))
    with captured_logs() as logs:  # every record of the run, at DEBUG (tests/test_secrets.py reads them)
        counts = run_pipeline(ctx)
    return {
        "lake": lake,
        "root": root,
        "truth": root / "truth",
        "counts": counts,
        "ctx": ctx,
        "config": config,
        "logs": logs,
        "windows": dict(ctx.windows),
    }  # fmt: skip  (windows: as the run left them)


# `make test` runs the suite on two pytest-xdist workers, a work unit per module, so a module fixture is built once.
# The two session worlds are the suite's most expensive fixtures: every module that reads one is in its world's unit,
# which goes to a worker first, so that the other worker takes the modules that need no world meanwhile. (xdist's own
# `xdist_group` marks do not work with pytest 9: xdist 3.8 renames items through an attribute pytest no longer reads.)
WORLD_MODULES = {
    "models_world": ("test_activation_world", "test_erasure", "test_faults_gold", "test_models_reruns",
                     "test_models_world", "test_report", "test_secrets", "test_stage_declarations"),
    "world": ("test_e2e_world", "test_erasure_small", "test_identity_world", "test_profile_world", "test_cluster"),
}  # fmt: skip
UNIT_OF_MODULE = {module: world for world, modules in WORLD_MODULES.items() for module in modules}


def work_unit(nodeid: str) -> str:
    """The work unit of a test: its world's, or its module's."""
    module = nodeid.split("::", 1)[0]
    return UNIT_OF_MODULE.get(Path(module).stem, module)


MISPLACED = pytest.StashKey[str]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for world in WORLD_MODULES:
            if world in getattr(item, "fixturenames", ()) and work_unit(item.nodeid) != world:
                item.stash[MISPLACED] = (f"{item.nodeid} uses fixture '{world}': list its module under '{world}' "
                                         "in WORLD_MODULES (tests/conftest.py)")  # fmt: skip
    rank = {world: i for i, world in enumerate(WORLD_MODULES)}
    items.sort(key=lambda item: rank.get(work_unit(item.nodeid), len(rank)))  # the worlds' units first


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # at setup, not collection: an xdist worker's collection error never reaches the terminal; a failed setup does
    if MISPLACED in item.stash:
        pytest.fail(item.stash[MISPLACED], pytrace=False)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") != "load":  # another --dist asked for on the command line: xdist's own
        return None
    from xdist.scheduler import LoadScopeScheduling

    class WorldScheduling(LoadScopeScheduling):
        """xdist's module-scope scheduling, with a world's modules in one unit, in collection order."""

        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False  # keep the collection's order: the worlds' units first
    return WorldScheduling(config, log)


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
