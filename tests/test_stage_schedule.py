"""`run_pipeline` with `pipeline.parallel_stages`: a stage starts once its dependencies are done, no more stages run
at once than allowed, and a failure lets the running stages finish, starts no other and is raised. Fake stages in
the real registry (a Spark session is needed for the threads' local properties)."""

from __future__ import annotations

import _thread
import logging
import threading
import time

import pytest

from audiencelake import stages
from audiencelake.core.errors import AudiencelakeError
from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from conftest import lake_settings


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    """Registers `a -> (b, c) -> d` in place of the real stages; returns the events they log (name, start or end)."""
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
        registry[name] = stages.Stage(name, make(name, meet.wait if name in "bc" else None), deps, name)
    monkeypatch.setattr(stages, "REGISTRY", registry)
    monkeypatch.setattr(stages, "load_stages", lambda: None)
    return events, registry, make


def context(spark, tmp_path, workers: int) -> stages.StageContext:
    lake = Lake(spark, lake_settings(tmp_path, f"pipeline.parallel_stages={workers}"))
    return stages.StageContext(lake, Run.create(run_id="schedule"))


def test_independent_stages_run_at_once_after_their_dependencies(spark, tmp_path, fake) -> None:
    events, _, _ = fake
    ctx = context(spark, tmp_path, 2)
    counts = stages.run_pipeline(ctx)
    assert list(counts) == ["a", "b", "c", "d"] and counts["d"] == {"stage": "d"}
    at = {e: i for i, e in enumerate(events)}
    assert at[("a", "end")] < min(at[("b", "start")], at[("c", "start")])  # after their dependency
    assert max(at[("b", "end")], at[("c", "end")]) < at[("d", "start")]
    assert max(at[("b", "start")], at[("c", "start")]) < min(at[("b", "end")], at[("c", "end")])  # at once
    assert set(ctx.seconds) == {"a", "b", "c", "d"} and ctx.elapsed is not None


def test_one_at_a_time_when_one_is_allowed(spark, tmp_path, fake) -> None:
    events, registry, make = fake
    registry["b"] = stages.Stage("b", make("b"), ("a",), "b")  # no barrier: c would wait for b forever
    registry["c"] = stages.Stage("c", make("c"), ("a",), "c")
    stages.run_pipeline(context(spark, tmp_path, 1))
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

    registry["b"] = stages.Stage("b", make("b", fail), ("a",), "b")
    registry["c"] = stages.Stage("c", make("c", lambda: (c_started.set(), failure_seen.wait(20))), ("a",), "c")
    registry["e"] = stages.Stage("e", make("e"), ("c",), "e")
    handler = Seen()
    logging.getLogger("audiencelake.stages").addHandler(handler)
    try:
        with pytest.raises(AudiencelakeError, match="b: no input"):
            stages.run_pipeline(context(spark, tmp_path, 2))
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

    registry["b"] = stages.Stage("b", make("b", long_job), ("a",), "b")
    registry["c"] = stages.Stage("c", make("c", interrupt), ("a",), "c")
    with pytest.raises(KeyboardInterrupt):
        stages.run_pipeline(context(spark, tmp_path, 2))
    assert outcome == ["cancelled"] and ("c", "end") in events and ("b", "end") not in events
    assert not any(name == "d" for name, _ in events)
