"""What the stages of the trained world's run wrote, read from the Delta logs and the MLflow registry, against what
they declare (`audiencelake.stages.declaration`): each commit of the run falls in the window of a stage declaring
its table, and each table, model and file a stage declares by name was written during that stage."""

from __future__ import annotations

import json
from pathlib import Path

from audiencelake.audiences.export import local_root
from audiencelake.models.registry import champion_exists
from audiencelake.report.html import report_path
from audiencelake.stages.declaration import EXPORT_FILES, LANDING_FILES, MODEL, REPORT_FILES
from audiencelake.stages.registry import BOOKKEEPING, STAGES, overlaps

SLACK = 0.05  # seconds: a commit's timestamp and a stage's window come from the same clock, at millisecond precision


def commits(lake_root: Path, until: float) -> list[tuple[str, int, float]]:
    """(layer.table, version, commit time in epoch seconds) of every Delta commit under the lake up to `until`."""
    out = []
    for log in sorted(lake_root.glob("*/*/_delta_log")):
        table = f"{log.parent.parent.name}.{log.parent.name}"
        for entry in log.glob("*.json"):
            if not entry.stem.isdigit():
                continue
            info = next(json.loads(line)["commitInfo"] for line in entry.open() if '"commitInfo"' in line)
            at = info.get("inCommitTimestamp", info["timestamp"]) / 1000
            if at <= until:
                out.append((table, int(entry.stem), at))
    return out


def test_every_commit_is_declared_and_every_declared_output_is_written(models_world) -> None:
    ctx, lake, windows = models_world["ctx"], models_world["lake"], models_world["windows"]
    assert set(windows) == set(STAGES), "every stage ran in the trained world"
    end = max(stop for _, stop in windows.values())
    found = commits(Path(lake.settings.lake_root), end + SLACK)
    assert len(found) > 50
    during = {name: {t for t, _, at in found if start - SLACK <= at <= stop + SLACK}
              for name, (start, stop) in windows.items()}  # fmt: skip
    for table, version, at in found:
        if table in BOOKKEEPING:
            continue
        writers = [n for n, (start, stop) in windows.items() if start - SLACK <= at <= stop + SLACK]
        assert writers, f"{table} v{version} was written outside every stage"
        assert any(any(overlaps(table, w) for w in STAGES[n].writes) for n in writers), (
            f"{table} v{version} was written during {writers}, which do not declare it"
        )
    for name, s in STAGES.items():
        for resource in s.writes:
            if "*" in resource or resource in (LANDING_FILES, EXPORT_FILES, REPORT_FILES):
                continue
            if resource.startswith(MODEL):
                assert champion_exists(lake, resource.removeprefix(MODEL)), (name, resource)
            else:
                assert resource in during[name], f"stage {name} declares {resource} but did not write it"
    assert (Path(lake.settings.landing_root)).is_dir()
    assert report_path(lake, ctx.run.run_id).is_file()
    assert any(Path(local_root(lake)).glob("**/manifest.json"))
