"""Crash and re-run (issue 10): ingest stopped right after each of its Delta commits in turn (as a kill would leave
the lake: `audiencelake.core.failpoints`), then run to the end, leaves every table's contents equal to a clean run's."""

from __future__ import annotations

from pathlib import Path

import pytest

from audiencelake.core.failpoints import ENV, InjectedFault
from audiencelake.core.lake import RESTRICTED, Lake
from audiencelake.core.runs import Run
from audiencelake.stages.declaration import StageContext
from audiencelake.stages.runner import run_stage
from audiencelake.synth import WorldSpec, generate_world
from audiencelake.synth.world import DEFAULT_END
from conftest import lake_settings

pytestmark = pytest.mark.e2e

# Each table ingest writes, in the order it writes them (orders: a source with PII-free rows and quarantine).
# The quality results and audit rows of both sources' batches are one commit each, at the end.
COMMITS = ["bronze.orders", "ops.ingest_files", "silver.orders", "ops.quarantine", "bronze.crm_profiles",
           f"{RESTRICTED}.crm_profiles_pii", "ops.quality_results", "ops.ingest_audit"]  # fmt: skip
SOURCES = ("orders", "crm_profiles")
# Columns that depend on when, or in which run, a batch was written (its id holds its start time): left out
VOLATILE = {"_batch_id", "_ingested_at", "batch_id", "run_id", "ingested_at", "processed_at", "quarantined_at",
            "validated_at"}  # fmt: skip


def contents(lake: Lake) -> dict[str, list[tuple]]:
    out = {}
    for layer in ("bronze", "silver", RESTRICTED, "ops"):
        root = Path(lake.settings.lake_root) / layer
        for table in sorted(p.name for p in root.iterdir()) if root.exists() else []:
            df = lake.read(lake.ref(layer, table))
            keep = [c for c in df.columns if c not in VOLATILE]
            out[f"{layer}.{table}"] = sorted(tuple(r) for r in df.select(*keep).collect())
    return out


def ingest(lake: Lake) -> None:
    run_stage("ingest", StageContext(lake, Run.create(as_of=DEFAULT_END, run_id="fault"), {}))


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("faults-world")
    generate_world(root, WorldSpec(users=40, days=14, seed=12))
    return root / "landing"


def lake_at(spark, root: Path, landing: Path) -> Lake:
    others = [f"sources.{s}.path={root}/elsewhere/*" for s in ("clickstream", "campaign_touches", "social")]
    return Lake(spark, lake_settings(root, f"lake.landing={landing}", *others))


def test_ingest_stopped_after_each_commit_in_turn_then_completed_equals_a_clean_run(
    spark, landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One lake, stopped after each of ingest's commits in turn: every run resumes what the last one left and is
    stopped at the next commit; a last run completes. Each stop is checked to have happened."""
    clean = lake_at(spark, tmp_path / "clean", landing)
    ingest(clean)
    expected = contents(clean)
    assert expected["silver.orders"] and expected[f"{RESTRICTED}.crm_profiles_pii"] and expected["ops.quarantine"]
    lake = lake_at(spark, tmp_path / "stopped", landing)
    for point in COMMITS:
        monkeypatch.setenv(ENV, point)
        with pytest.raises(InjectedFault, match=f"stopped at pass 1 through {point}"):
            ingest(lake)
    monkeypatch.delenv(ENV)
    ingest(lake)
    got = contents(lake)
    assert got.keys() == expected.keys()
    for table, rows in expected.items():
        assert got[table] == rows, f"{table} differs from the clean run"
