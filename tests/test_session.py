from __future__ import annotations

import os
import re
from importlib.metadata import version
from pathlib import Path

import pyspark

from audiencelake.core.config import load_settings
from audiencelake.core.errors import ConfigError
from audiencelake.core.session import session_conf


def test_session_has_delta_and_utc(spark, tmp_path: Path) -> None:
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    spark.range(3).write.format("delta").save(str(tmp_path / "t"))
    assert spark.read.format("delta").load(str(tmp_path / "t")).count() == 3
    history = spark.sql(f"DESCRIBE HISTORY delta.`{tmp_path / 't'}`").collect()
    assert history[0]["operation"] == "WRITE"


def test_pom_fetches_the_artifact_delta_pip_names() -> None:
    """The jar pinned in build/jars-pom must be the one delta-spark's configure_spark_with_delta_pip would ask for."""
    major_minor = ".".join(pyspark.__version__.split(".")[:2])
    pom = (Path(__file__).parents[1] / "build" / "jars-pom" / "pom.xml").read_text()
    artifact = re.search(r"<artifactId>(delta-spark_[^<]+)</artifactId>\s*<version>([^<]+)</version>", pom)
    assert artifact is not None
    assert artifact.group(1) == f"delta-spark_{major_minor}_2.13"
    assert artifact.group(2) == version("delta-spark")


def test_local_conf_uses_project_jars_and_provided_does_not(tmp_path: Path) -> None:
    local = session_conf(load_settings("local", environ={}))
    assert any(j.endswith(".jar") and "delta-spark_" in j for j in local["spark.jars"].split(","))
    assert "spark.jars" not in session_conf(load_settings("cluster", environ={}))
    missing = load_settings("local", [f"spark.jars_dir={tmp_path}"], environ={})
    try:
        session_conf(missing)
    except ConfigError as exc:
        assert exc.key == "spark.jars_dir" and "make setup" in exc.reason
    else:  # pragma: no cover - the assertion above must run
        raise AssertionError("expected ConfigError")


def test_local_workers_run_this_interpreter_without_an_activated_environment(spark, monkeypatch) -> None:
    """`.venv/bin/audiencelake demo` from a plain shell: Python workers must not fall back to `python3` on PATH
    (which lacks audiencelake, so the first UDF failed with ModuleNotFoundError)."""
    import sys

    from audiencelake.core.session import build_session

    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    build_session(load_settings("cluster", environ={}))  # not local: the cluster's own setting is left alone
    assert "PYSPARK_PYTHON" not in os.environ
    build_session(load_settings("local", environ={}))
    assert os.environ["PYSPARK_PYTHON"] == sys.executable


def test_lake_version_follows_every_commit_and_equals_the_history(spark, tmp_path: Path) -> None:
    """`Lake.version` reads the Delta log's snapshot; it must see each new commit, as `DESCRIBE HISTORY` does."""
    from delta.tables import DeltaTable

    from audiencelake.core.lake import Lake, TableRef
    from conftest import lake_settings

    lake, path = Lake(spark, lake_settings(tmp_path)), str(tmp_path / "t")
    ref = TableRef("work", "t", path, by_name=False)
    assert lake.version(ref) is None
    for n in range(3):
        spark.range(n + 1).write.format("delta").mode("append").save(path)
        assert lake.version(ref) == DeltaTable.forPath(spark, path).history(1).first()["version"] == n
    DeltaTable.forPath(spark, path).delete("id = 0")  # a commit made through another API than a DataFrame write
    assert lake.version(ref) == 3
