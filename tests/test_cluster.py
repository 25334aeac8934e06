"""The same stages on a real Spark standalone cluster (a master and two workers on loopback, from the installed
PySpark), submitted with spark-submit, the built wheel on --py-files and the Delta jars on --jars: the Delta tables
they write equal those of the local[2] session on the same world."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from audiencelake.core.contracts import contract
from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from audiencelake.tags.profile import build_profile
from conftest import DRIVER_RESULT_LIMIT, ROOT, lake_settings
from helpers import job_script
from standalone import StandaloneCluster

pytestmark = pytest.mark.cluster
PROFILE_AS_OF = date(2026, 10, 31)
SALT = "local-demo-salt-change-me"  # conf/local.yaml's, here from the environment as on a cluster


def comparable(df: DataFrame, drop: tuple[str, ...] = ()) -> DataFrame:
    """Without lineage columns, doubles rounded: sums of doubles depend on the order tasks finish in."""
    cols = [
        F.round(F.col(f"`{f.name}`"), 9).alias(f.name) if isinstance(f.dataType, T.DoubleType) else F.col(f"`{f.name}`")
        for f in df.schema.fields
        if f.name not in drop
    ]
    return df.select(*cols)


def assert_same(a: DataFrame, b: DataFrame, what: str) -> None:
    assert sorted(a.columns) == sorted(b.columns), what
    b = b.select(*a.columns)
    assert a.count() == b.count() > 0, what
    extra, missing = a.exceptAll(b).count(), b.exceptAll(a).count()
    assert extra == missing == 0, f"{what}: {extra} rows only on the cluster, {missing} only locally"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    started = StandaloneCluster(tmp_path_factory.mktemp("standalone")).start()
    yield started
    started.stop()
    assert all(p.poll() is not None for p in started.processes), "a cluster process outlived stop()"


@pytest.fixture(scope="module")
def on_cluster(world, cluster: StandaloneCluster, wheel: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("cluster-lake")
    sets = [f"lake.root={root / 'lake'}", f"lake.landing={world['root'] / 'landing'}",
            f"mlflow.tracking_uri=sqlite:///{root / 'mlflow.db'}", "spark.conf.spark.sql.shuffle.partitions=2",
            "spark.conf.spark.default.parallelism=2", "spark.conf.spark.databricks.delta.snapshotPartitions=2"]  # fmt: skip
    flags = [x for s in sets for x in ("--set", s)]
    submit = dict(
        conf={
            # a small driver: the jobs keep data on the executors, so 512 MB of driver heap and 4 MB of task
            # results per action are enough at any lake size (the local suite runs every stage under the same limit)
            "spark.driver.memory": "512m",
            "spark.driver.maxResultSize": DRIVER_RESULT_LIMIT,
            "spark.executor.memory": "1g",
            "spark.executor.cores": "1",
            "spark.cores.max": "2",
            "spark.pyspark.python": cluster.env["PYSPARK_PYTHON"],
            "spark.ui.enabled": "false",
        },  # fmt: skip
        jars=[str(j) for j in sorted((ROOT / "jars").glob("*.jar"))],
        py_files=[str(wheel)],
        env={"AUDIENCELAKE_PII_SALT": SALT},
    )
    as_of = str(world["ctx"].run.as_of)
    outputs = {}
    for job, day in (("ingest", as_of), ("identity", as_of), ("profile", str(PROFILE_AS_OF))):
        done = cluster.submit(
            ROOT / "jobs" / job_script(job),
            "--env",
            "cluster",
            "--as-of",
            day,
            "--run-id",
            "cluster-1",
            *flags,
            **submit,
        )
        outputs[job] = done.stdout + done.stderr
    settings = lake_settings(root, f"lake.root={root / 'lake'}")
    return {"root": root, "outputs": outputs, "settings": settings}


def test_jobs_ran_on_the_cluster_from_the_wheel(on_cluster, cluster, wheel):
    apps = cluster.state()["completedapps"]
    assert len(apps) == 3 and all(a["name"] == "audiencelake" for a in apps), apps
    assert all(a["cores"] == 2 for a in apps), apps  # both workers' executors took part
    for job, output in on_cluster["outputs"].items():
        assert f"stage {job}: done" in output, output[-2000:]
        assert wheel.name in output, f"{job}: the wheel was not shipped"


def test_cluster_tables_equal_the_local_run(spark, world, on_cluster, tmp_path):
    cluster_lake = Lake(spark, on_cluster["settings"])
    local = world["lake"]
    for table in ("crm_profiles", "orders", "clickstream_events", "campaign_touches", "social_interactions"):
        columns = [*contract(table).data_columns, "_file", "_record_hash"]
        got = cluster_lake.read(cluster_lake.ref("silver", table)).select(*columns)
        assert_same(
            comparable(got), comparable(local.read(local.ref("silver", table)).select(*columns)), f"silver.{table}"
        )
    for layer, table in (("ops", "identity_map"), ("ops", "quarantine")):
        drop = ("batch_id", "run_id", "quarantined_at", "updated_at")
        got, want = (comparable(lake.read(lake.ref(layer, table)), drop) for lake in (cluster_lake, local))
        assert_same(got, want, f"{layer}.{table}")
    # the local profile of the same world, on a copy of the fixture's lake (the fixture stays as it is)
    shutil.copytree(local.settings.lake_root, tmp_path / "lake")
    reference = Lake(spark, lake_settings(tmp_path))
    build_profile(reference, Run.create(PROFILE_AS_OF, "local-profile"))
    got, want = (
        lake.read(lake.ref("gold", "user_profile")).where(F.col("as_of") == PROFILE_AS_OF)
        for lake in (cluster_lake, reference)
    )
    assert_same(comparable(got), comparable(want), "gold.user_profile")
