from __future__ import annotations

import sys
from pathlib import Path

import pytest

from audiencelake import stages
from audiencelake.cli.main import main
from audiencelake.core.errors import AudiencelakeError
from audiencelake.report.dictionary import data_dictionary
from helpers import job_script

ROOT = Path(__file__).resolve().parents[1]


def test_stages_run_in_dependency_order() -> None:
    assert [s.name for s in stages.ordered()][:4] == ["synth", "ingest", "identity", "quality"]
    assert [s.name for s in stages.ordered("ingest", "identity")] == ["ingest", "identity"]
    with pytest.raises(AudiencelakeError, match="unknown stage 'nope'"):
        stages.ordered("nope")
    with pytest.raises(AudiencelakeError, match="runs before"):
        stages.ordered("quality", "ingest")


def test_a_stage_needs_a_docstring_and_known_dependencies() -> None:
    with pytest.raises(AudiencelakeError, match="needs a docstring"):
        stages.stage("undocumented")(lambda ctx: {})

    def documented(ctx):
        """Does something."""

    with pytest.raises(AudiencelakeError, match="unknown stage 'ghost'"):
        stages.stage("orphan", depends_on=("ghost",))(documented)
    assert "undocumented" not in stages.REGISTRY and "orphan" not in stages.REGISTRY


def test_every_stage_has_a_job_script() -> None:
    for stage in stages.ordered():
        job = ROOT / "jobs" / job_script(stage.name)
        assert job.exists(), job
        assert f'main(["{stage.name}", *sys.argv[1:]])' in job.read_text()
    for script in (ROOT / "jobs").glob("*.py"):  # spark-submit puts jobs/ first on the import path
        assert script.stem not in sys.stdlib_module_names, f"{script} shadows the standard library's {script.stem}"


def test_committed_data_dictionary_is_current() -> None:
    assert (ROOT / "docs" / "data_dictionary.md").read_text() == data_dictionary()


def test_cli_writes_docs_and_reports_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "dd.md"
    main(["contracts", "docs", "--out", str(out)])
    assert out.read_text() == data_dictionary()
    with pytest.raises(SystemExit) as exit_info:
        main(["ingest", "--env", "local", "--set", "spark.mastr=local[1]"])
    assert exit_info.value.code == 2
    assert "local.yaml: spark.mastr: Extra inputs are not permitted" in capsys.readouterr().err


def test_synth_stage_reuses_the_same_world_and_refuses_another(spark, settings) -> None:
    from audiencelake.core.lake import Lake
    from audiencelake.core.runs import Run

    lake = Lake(spark, settings)
    ctx = stages.StageContext(lake, Run.create(), {"users": 30, "days": 14, "seed": 1})
    first = stages.run_stage("synth", ctx)
    persons = (Path(settings.landing_root).parent / "truth" / "persons.csv").read_text().splitlines()[1:]
    assert sum(p.endswith(",customer,") for p in persons) == 30  # and their duplicates, and the test accounts
    assert first["rows_crm_profiles"] == len(persons) >= 30 + 4
    assert stages.run_stage("synth", ctx) == {"skipped": 1}
    other = stages.StageContext(lake, Run.create(), {"users": 31, "days": 14, "seed": 1})
    with pytest.raises(AudiencelakeError, match="holds a world generated with"):
        stages.run_stage("synth", other)


def test_long_stages_log_spark_progress(spark, caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import time

    from audiencelake.core.progress import heartbeat

    def slow(rows):
        time.sleep(3)
        return rows

    with caplog.at_level(logging.INFO, logger="audiencelake.progress"):
        with heartbeat(spark, "stage slow", every=0.3):
            spark.sparkContext.parallelize(range(2), 2).mapPartitions(slow).count()
    beats = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stage slow: ")]
    assert any(" s, job " in b and "/2 tasks" in b for b in beats), beats


def test_a_rule_on_an_unknown_tag_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shipped = (ROOT / "conf" / "audiences.yaml").read_text()
    assert "field: lifecycle_stage" in shipped
    bad = tmp_path / "audiences.yaml"
    bad.write_text(shipped.replace("field: lifecycle_stage", "field: lifecycle_stag", 1))
    with pytest.raises(SystemExit) as exit_info:
        main(["audience", "check", "--file", str(bad)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.count("\n") == 0 and err.startswith(f"error: {bad}: audiences.") and "unknown field 'lifecycle_stag'" in err
    )


@pytest.mark.parametrize(
    "args, error",
    [
        ([], "forget needs exactly one of --email and --user-id"),
        (["--email", "a@example.com", "--user-id", "C1"], "forget needs exactly one of --email and --user-id"),
        (["--user-id", " "], "forget: the --user-id value is blank"),
    ],
)
def test_forget_needs_exactly_one_identifier_before_anything_starts(
    args: list[str], error: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["forget", *args, "--set", f"lake.root={tmp_path / 'lake'}"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: {error}"
    assert not (tmp_path / "lake").exists()  # no lock taken, no session started
