"""The Databricks asset bundle: generated from the stage registry, every task a wheel task calling an entry point
the built wheel declares, with the stage's dependencies; lib/ needs nothing Databricks-only."""

from __future__ import annotations

import configparser
import re
import zipfile
from pathlib import Path

import yaml

from audiencelake.stages.bundle import LOCAL_ONLY, bundle_yaml
from audiencelake.stages.registry import STAGES, ordered
from conftest import ROOT


def wheel_metadata(wheel: Path) -> tuple[configparser.ConfigParser, str, set[str]]:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_points = configparser.ConfigParser()
        entry_points.read_string(zf.read(info).decode())
        metadata = zf.read(info.replace("entry_points.txt", "METADATA")).decode()
    return entry_points, metadata, names


def test_committed_bundle_is_current() -> None:
    assert (ROOT / "databricks.yml").read_text() == bundle_yaml(), "run `audiencelake bundle`"


def test_every_task_runs_a_registered_stage_through_an_entry_point_of_the_wheel(wheel: Path) -> None:
    bundle = yaml.safe_load((ROOT / "databricks.yml").read_text())
    job = bundle["resources"]["jobs"]["audiencelake"]
    entry_points, metadata, names = wheel_metadata(wheel)
    package = re.search(r"^Name: (.+)$", metadata, re.M).group(1)
    clusters = {c["job_cluster_key"] for c in job["job_clusters"]}
    tasks = {t["task_key"]: t for t in job["tasks"]}
    assert list(tasks) == [s.name for s in ordered() if s.name not in LOCAL_ONLY]
    for key, task in tasks.items():
        wheel_task = task["python_wheel_task"]
        assert wheel_task["package_name"] == package, key
        target = entry_points["console_scripts"][wheel_task["entry_point"]]
        module, function = target.split(":")
        assert f"{module.replace('.', '/')}.py" in names and function == "main", (key, target)
        stage, *flags = wheel_task["parameters"]
        assert stage == key and stage in STAGES, key
        assert flags[flags.index("--as-of") + 1] == "{{job.parameters.as_of}}", key
        assert flags[flags.index("--run-id") + 1] == "{{job.parameters.run_id}}", key  # one run id for every task
        assert [d["task_key"] for d in task.get("depends_on", [])] == [
            d for d in STAGES[key].depends_on if d not in LOCAL_ONLY
        ]
        assert task["job_cluster_key"] in clusters and task["libraries"] == [{"whl": "./dist/*.whl"}], key
    assert {p["name"] for p in job["parameters"]} == {"env", "as_of", "run_id"}
    assert set(bundle["targets"]) == {"dev", "prod"} and {"catalog"} <= set(bundle["variables"])


def test_the_wheel_carries_its_config_and_leaves_spark_to_the_runtime(wheel: Path) -> None:
    _, metadata, names = wheel_metadata(wheel)
    for resource in ("conf/databricks.yaml", "conf/tags.yaml", "schemas/silver/orders.yaml"):
        assert f"audiencelake/_resources/{resource}" in names, resource
    requires = re.findall(r"^Requires-Dist: (.+)$", metadata, re.M)
    spark = [r for r in requires if r.startswith(("pyspark", "delta-spark"))]
    assert spark and all("extra == 'spark'" in r or 'extra == "spark"' in r for r in spark), spark


def test_lib_imports_nothing_databricks_only() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "lib").rglob("*.py")
        if re.search(
            r"^\s*(import|from)\s+(databricks|dbruntime|pyspark\.dbutils)\b|\bdbutils\.", path.read_text(), re.M
        )
    ]
    assert offenders == []


def test_unity_catalog_names_come_from_config() -> None:
    from audiencelake.core.config import load_settings
    from audiencelake.core.lake import Lake

    settings = load_settings("databricks", ["lake.catalog=dev", "lake.schemas.gold=marketing_gold"], environ={})
    lake = Lake(None, settings)
    assert lake.ref("gold", "user_profile").location == "dev.marketing_gold.user_profile"
    assert lake.ref("silver", "orders").location == "dev.silver.orders" and lake.ref("silver", "orders").by_name
