"""`run_pipeline` with `pipeline.parallel_stages`: a stage starts once its dependencies are done, no more stages run
at once than allowed, and a failure lets the running stages finish, starts no other and is raised. Fake stages in
a registry of their own (a Spark session is needed for the threads' local properties)."""

from __future__ import annotations

import _thread
import logging
import threading
import time

import pytest

from audiencelake.core.errors import AudiencelakeError
from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from audiencelake.report.tables import stage_table
from audiencelake.stages.declaration import Stage, StageContext, one_of, stage
from audiencelake.stages.registry import resolve
from audiencelake.stages.runner import MissingInput, run_pipeline, run_stage
from conftest import lake_settings


@pytest.fixture
def fake():
    """A registry `a -> (b, c) -> d`; returns the events its stages log (name, start or end)."""
    events: list[tuple[str, str]] = []
    meet = threading.Barrier(2, timeout=20)  # b and c each wait for the other: only stages run at once pass it
    lock = threading.Lock()

    def make(name: str, body=None):
        def fn(ctx):
            with lock:
                events.append((name, "start"))
            if body is not None:
                body()
            with lock:
                events.append((name, "end"))
            return {"stage": name}

        fn.__doc__ = f"Fake stage {name}."
        return fn

    registry = {}
    for name, deps in (("a", ()), ("b", ("a",)), ("c", ("a",)), ("d", ("b", "c"))):
        registry[name] = fake_stage(name, make(name, meet.wait if name in "bc" else None), deps)
    return events, registry, make


def fake_stage(name: str, fn, deps: tuple[str, ...]) -> Stage:
    return Stage(name, fn, name, depends_on=deps)


def context(spark, tmp_path, workers: int) -> StageContext:
    lake = Lake(spark, lake_settings(tmp_path, f"pipeline.parallel_stages={workers}"))
    return StageContext(lake, Run.create(run_id="schedule"))


def test_independent_stages_run_at_once_after_their_dependencies(spark, tmp_path, fake) -> None:
    events, registry, _ = fake
    ctx = context(spark, tmp_path, 2)
    counts = run_pipeline(ctx, stages=registry)
    assert list(counts) == ["a", "b", "c", "d"] and counts["d"] == {"stage": "d"}
    at = {e: i for i, e in enumerate(events)}
    assert at[("a", "end")] < min(at[("b", "start")], at[("c", "start")])  # after their dependency
    assert max(at[("b", "end")], at[("c", "end")]) < at[("d", "start")]
    assert max(at[("b", "start")], at[("c", "start")]) < min(at[("b", "end")], at[("c", "end")])  # at once
    assert set(ctx.seconds) == {"a", "b", "c", "d"} and ctx.elapsed is not None


def test_one_at_a_time_when_one_is_allowed(spark, tmp_path, fake) -> None:
    events, registry, make = fake
    registry["b"] = fake_stage("b", make("b"), ("a",))  # no barrier: c would wait for b forever
    registry["c"] = fake_stage("c", make("c"), ("a",))
    run_pipeline(context(spark, tmp_path, 1), stages=registry)
    assert events == [(n, e) for n in "abcd" for e in ("start", "end")]


def test_a_failure_lets_the_running_stage_finish_and_starts_no_other(spark, tmp_path, fake) -> None:
    """b fails while c runs; c ends only once the scheduler has seen the failure, which makes e (after c alone)
    ready: e must not start, and d (after b) cannot."""
    events, registry, make = fake
    c_started, failure_seen = threading.Event(), threading.Event()

    def fail():
        c_started.wait(20)
        raise AudiencelakeError("b: no input")

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("stage b failed"):
                failure_seen.set()

    registry["b"] = fake_stage("b", make("b", fail), ("a",))
    registry["c"] = fake_stage("c", make("c", lambda: (c_started.set(), failure_seen.wait(20))), ("a",))
    registry["e"] = fake_stage("e", make("e"), ("c",))
    handler = Seen()
    logging.getLogger("audiencelake.stages").addHandler(handler)
    try:
        with pytest.raises(AudiencelakeError, match="b: no input"):
            run_pipeline(context(spark, tmp_path, 2), stages=registry)
    finally:
        logging.getLogger("audiencelake.stages").removeHandler(handler)
    assert failure_seen.is_set() and ("c", "end") in events
    assert not any(name in "de" for name, _ in events)


def test_an_interrupted_run_cancels_the_jobs_a_running_stage_starts_after_it(spark, tmp_path, fake) -> None:
    """Ctrl-C while b and c run: c has finished, b is between two jobs; the job b starts next is cancelled (its
    stage's job group), the run stops with KeyboardInterrupt instead of waiting for b's long job."""
    events, registry, make = fake
    interrupted = threading.Event()
    outcome: list[str] = []

    def long_job():
        interrupted.wait(20)
        time.sleep(0.5)  # driver-side work: no job of b's is running when the interrupt arrives
        try:
            spark.sparkContext.parallelize(range(2), 2).foreach(lambda _: time.sleep(120))
            outcome.append("finished")
        except Exception as exc:  # the job cancelled
            outcome.append("cancelled" if "cancel" in str(exc).lower() else str(exc)[:200])
            raise

    def interrupt():
        _thread.interrupt_main()  # as Ctrl-C: the main thread raises once it runs again
        interrupted.set()

    registry["b"] = fake_stage("b", make("b", long_job), ("a",))
    registry["c"] = fake_stage("c", make("c", interrupt), ("a",))
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(context(spark, tmp_path, 2), stages=registry)
    assert outcome == ["cancelled"] and ("c", "end") in events and ("b", "end") not in events
    assert not any(name == "d" for name, _ in events)


def test_a_stage_whose_input_does_not_exist_is_skipped_saying_which_and_who_writes_it(spark, tmp_path) -> None:
    """In a pipeline the stage is skipped (its counts say why) and the others run; alone it is one error line."""
    ran = []

    def make(name: str):
        def fn(ctx):
            ran.append(name)
            return {}

        fn.__doc__ = f"Fake stage {name}."
        return fn

    def finds_nothing(ctx):
        ran.append("finds_nothing")
        raise MissingInput("no tag can be computed")

    finds_nothing.__doc__ = "Fake stage that finds, when it runs, that it has nothing to work on."
    registry = resolve([
        stage("maker", writes=("gold.made",))(make("maker")),  # writes nothing, as a stage with nothing to do
        stage("needs", reads=("gold.made",))(make("needs")),
        stage("other", uses=("gold.made",))(make("other")),  # reads it when it exists
        stage("either", reads=(one_of("gold.made", "silver.orders"),))(make("either")),
        stage("finds_nothing")(finds_nothing),
    ])  # fmt: skip
    assert registry["either"].depends_on == ("maker",)
    ctx = context(spark, tmp_path, 1)
    counts = run_pipeline(ctx, stages=registry)
    assert counts["needs"] == {"skipped": "gold.made does not exist (written by stage maker)"}
    assert counts["either"] == {"skipped": "none of gold.made, silver.orders exists (written by stage maker)"}
    assert counts["finds_nothing"] == {"skipped": "no tag can be computed"}
    assert ran == ["maker", "other", "finds_nothing"]
    with pytest.raises(MissingInput, match=r"^stage needs: gold.made does not exist \(written by stage maker\)$"):
        run_stage("needs", ctx, registry)
    assert "skipped=gold.made does not exist" in stage_table(counts, ctx.seconds)
