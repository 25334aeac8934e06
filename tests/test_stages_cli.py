from __future__ import annotations

import sys
from pathlib import Path

import pytest

from audiencelake.cli.main import main
from audiencelake.core.config import load_settings
from audiencelake.core.contracts import contracts
from audiencelake.core.errors import AudiencelakeError
from audiencelake.core.lake import Lake
from audiencelake.report.dictionary import data_dictionary
from audiencelake.stages.declaration import SILVER, StageContext, alternatives, stage
from audiencelake.stages.registry import STAGES, ordered, resolve, writer
from audiencelake.stages.runner import run_stage
from conftest import lake_settings
from helpers import job_script

ROOT = Path(__file__).resolve().parents[1]


def test_stages_run_in_registry_order() -> None:
    assert [s.name for s in ordered()][:4] == ["synth", "ingest", "identity", "quality"]
    assert [s.name for s in ordered()][-1] == "report"
    assert [s.name for s in ordered("ingest", "identity")] == ["ingest", "identity"]
    with pytest.raises(AudiencelakeError, match="unknown stage 'nope'"):
        ordered("nope")
    with pytest.raises(AudiencelakeError, match="runs before"):
        ordered("quality", "ingest")


def test_dependencies_come_from_what_stages_read_and_write() -> None:
    deps = {name: set(s.depends_on) for name, s in STAGES.items()}
    assert deps["profile"] == {"optimize"} and deps["score_churn"] == {"profile", "train_churn"}
    assert deps["train_churn"] == {"optimize"}  # its profiles are computed from silver, not read from gold
    assert deps["score_recommendations"] == {"train_recommendations", "score_segmentation"}
    assert deps["audiences"] >= {"score_churn", "score_clv", "score_propensity", "score_recommendations"}
    assert STAGES["train_churn"].registers == ("churn",) and writer("gold.segments") == "score_segmentation"
    assert writer("silver.orders") == "ingest" and writer("model.clv") == "train_clv"


def test_a_stage_needs_a_docstring_and_inputs_written_before_it() -> None:
    with pytest.raises(AudiencelakeError, match="needs a docstring"):
        stage("undocumented")(lambda ctx: {})

    def documented(ctx):
        """Does something."""

    with pytest.raises(AudiencelakeError, match="resource 'orders' is not 'layer.name'"):
        stage("bad", reads=("orders",))(documented)
    first = stage("first", writes=("gold.x",))(documented)
    second = stage("second", reads=("gold.x",))(documented)
    assert resolve([first, second])["second"].depends_on == ("first",)
    with pytest.raises(AudiencelakeError, match="stage 'second' reads gold.x, which no stage listed before it"):
        resolve([second, first])
    with pytest.raises(AudiencelakeError, match="stage 'first' is listed twice"):
        resolve([first, first])


def test_declared_silver_tables_are_the_contracts() -> None:
    assert set(SILVER) == {f"silver.{c.table}" for c in contracts().values() if c.layer == "silver"}
    layers = {"bronze", "silver", "silver_restricted", "gold", "ops", "identity", "work", "model", "landing",
              "exports", "reports", "*"}  # fmt: skip
    known = {f"{layer}.{name}" for layer, name in Lake(None, lake_settings(ROOT / "unused")).table_names()}
    for s in STAGES.values():
        for resource in (*(r for read in s.reads for r in alternatives(read)), *s.uses, *s.writes):
            assert resource.split(".")[0] in layers, (s.name, resource)
            if resource.split(".")[0] in ("silver", "gold", "ops") and "*" not in resource:
                assert resource in known, (s.name, resource)


def test_every_stage_has_a_job_script() -> None:
    for s in ordered():
        job = ROOT / "jobs" / job_script(s.name)
        assert job.exists(), job
        assert f'main(["{s.name}", *sys.argv[1:]])' in job.read_text()
    for script in (ROOT / "jobs").glob("*.py"):  # spark-submit puts jobs/ first on the import path
        assert script.stem not in sys.stdlib_module_names, f"{script} shadows the standard library's {script.stem}"


def test_committed_data_dictionary_is_current() -> None:
    assert (ROOT / "docs" / "data_dictionary.md").read_text() == data_dictionary(load_settings("local", environ={}))


def test_cli_writes_docs_and_reports_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "dd.md"
    main(["contracts", "docs", "--out", str(out)])
    assert out.read_text() == data_dictionary(load_settings("local", environ={}))
    with pytest.raises(SystemExit) as exit_info:
        main(["ingest", "--env", "local", "--set", "spark.mastr=local[1]"])
    assert exit_info.value.code == 2
    assert "local.yaml: spark.mastr: Extra inputs are not permitted" in capsys.readouterr().err


def test_synth_stage_reuses_the_same_world_and_refuses_another(spark, settings) -> None:
    from audiencelake.core.lake import Lake
    from audiencelake.core.runs import Run

    lake = Lake(spark, settings)
    ctx = StageContext(lake, Run.create(), {"users": 30, "days": 14, "seed": 1})
    first = run_stage("synth", ctx)
    persons = (Path(settings.landing_root).parent / "truth" / "persons.csv").read_text().splitlines()[1:]
    assert sum(p.endswith(",customer,") for p in persons) == 30  # and their duplicates, and the test accounts
    assert first["rows_crm_profiles"] == len(persons) >= 30 + 4
    assert run_stage("synth", ctx) == {"skipped": 1}
    other = StageContext(lake, Run.create(), {"users": 31, "days": 14, "seed": 1})
    with pytest.raises(AudiencelakeError, match="holds a world generated with"):
        run_stage("synth", other)


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


def test_a_rule_on_a_tag_the_lake_cannot_give_is_refused(spark, tmp_path: Path, capsys) -> None:
    """A lake with social interactions only: `audience check` refuses the first rule on a tag of another source,
    naming the file, the key and the missing table."""
    settings = lake_settings(tmp_path)
    Lake(spark, settings).ensure(Lake(spark, settings).ref("silver", "social_interactions"))
    with pytest.raises(SystemExit) as exit_info:
        main(["audience", "check", "--set", f"lake.root={settings.lake_root}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: {ROOT / 'conf' / 'audiences.yaml'}: audiences.winback_high_value.rule.all[1].field: tag 'is_buyer' "
        "is unavailable in this lake: reads tag last_order_date: silver.orders does not exist"
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


def test_every_stage_on_an_empty_lake_runs_or_says_in_one_line_what_it_lacks(spark, tmp_path: Path) -> None:
    """No landing file, no table: `run` completes; each stage that cannot run is skipped with one line naming the
    missing table and the stage that writes it, and run alone it raises that line (the CLI's exit 2)."""
    from audiencelake.core.runs import Run
    from audiencelake.stages.runner import MissingInput, run_pipeline
    from audiencelake.synth.world import DEFAULT_END

    ctx = StageContext(Lake(spark, lake_settings(tmp_path)), Run.create(as_of=DEFAULT_END, run_id="empty-1"))
    counts = run_pipeline(ctx)
    skipped = {name: c["skipped"] for name, c in counts.items() if isinstance(c.get("skipped"), str)}
    models = {f"{step}_{m}" for m in ("segmentation", "churn", "clv", "recommendations", "propensity")
              for step in ("train", "score")}  # fmt: skip
    assert set(skipped) == {"profile", "audiences", "export", "measure", "attribution"} | models, counts
    assert skipped["profile"] == f"none of {', '.join(SILVER)} exists (written by stage ingest)"
    assert skipped["train_clv"] == "silver.orders does not exist (written by stage ingest)"
    assert counts["report"]["bytes"] > 0
    for name, why in skipped.items():
        assert "\n" not in why and "(written by stage " in why, (name, why)
        with pytest.raises(MissingInput) as err:
            run_stage(name, ctx)
        assert str(err.value) == f"stage {name}: {why}"
