"""Crash and re-run past ingest (issue 10), on a copy of the trained world: the profile stage stopped between its
gold commits, a scoring stage stopped after its commit, and the export stopped with one audience's files complete
in staging (`audiencelake.core.failpoints`). No destination folder of an unfinished export is visible, a kill's leftover
staging folder is cleared, and after a re-run every gold table and every export file equals the clean run's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from audiencelake.core.failpoints import ENV, InjectedFault
from audiencelake.core.lake import Lake
from audiencelake.stages.declaration import StageContext
from audiencelake.stages.runner import run_stage
from conftest import lake_settings

pytestmark = pytest.mark.e2e
GOLD = ("user_profile", "user_tags", "tag_catalog", "churn_scores")


def gold(lake: Lake) -> dict[str, list[tuple]]:
    return {t: sorted(tuple(r) for r in lake.read(lake.ref("gold", t)).collect()) for t in GOLD}


def export_files(root: Path) -> dict[str, bytes]:
    """Every file a destination can see (staging excluded), by path under the exports root."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".staging" not in p.parts}  # fmt: skip


def stop_at(monkeypatch: pytest.MonkeyPatch, point: str, stage: str, ctx: StageContext) -> None:
    monkeypatch.setenv(ENV, point)
    with pytest.raises(InjectedFault, match=f"through {point}$"):
        run_stage(stage, ctx)
    monkeypatch.delenv(ENV)


def test_profile_scoring_and_export_stopped_mid_write_then_rerun_equal_the_clean_run(
    models_world, spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = models_world["lake"]
    shutil.copytree(Path(original.settings.lake_root), tmp_path / "lake", ignore=shutil.ignore_patterns("exports"))
    lake = Lake(spark, lake_settings(tmp_path, f"models.config={models_world['config']}",
                                     f"mlflow.tracking_uri={original.settings.mlflow.tracking_uri}"))  # fmt: skip
    ctx = StageContext(lake, models_world["ctx"].run, {})
    expected_gold = gold(original)
    expected_exports = export_files(Path(original.settings.exports_root))
    assert all(expected_gold.values()) and len(expected_exports) > 4

    # the copy's inputs are those its profile was built from: without their record, the profile is built again
    lake.delta(lake.ref("ops", "stage_inputs")).delete("stage = 'profile'")
    stop_at(monkeypatch, "gold.user_profile", "profile", ctx)  # profile written, its long form and catalogue not
    run_stage("profile", ctx)
    stop_at(monkeypatch, "gold.churn_scores", "score_churn", ctx)
    run_stage("score_churn", ctx)
    assert gold(lake) == expected_gold

    exports_root = Path(lake.settings.exports_root)
    folders = sorted({str(Path(p).parent) for p in expected_exports})
    second = Path(folders[1])  # <destination>/<audience>/<run_id>
    stop_at(monkeypatch, f"export.{second.parts[0]}.{second.parts[1]}", "export", ctx)
    assert not (exports_root / second).exists(), "an unfinished export is visible to its destination"
    seen = export_files(exports_root)
    assert all(seen[p] == expected_exports[p] for p in seen)  # what a destination sees is complete
    leftover = exports_root / ".staging" / "push_service.cross_sell.killed"  # as a kill -9 in staging leaves it
    leftover.mkdir(parents=True)
    (leftover / "part-00000.csv").write_text("user_id\n")
    run_stage("export", ctx)
    assert export_files(exports_root) == expected_exports
    assert not leftover.exists()
