"""Progress of long stages: a background thread that logs the running Spark jobs' task counts every so often."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

log = logging.getLogger("audiencelake.progress")


def running_jobs(spark: SparkSession) -> str:
    """The active Spark jobs and their stages' finished/total tasks, e.g. `job 12 [stage 30: 5/8 tasks]`."""
    tracker = spark.sparkContext.statusTracker()
    parts = []
    for job_id in sorted(tracker.getActiveJobsIds()):
        job = tracker.getJobInfo(job_id)
        if job is None:
            continue
        stages = []
        for stage_id in sorted(job.stageIds):
            info = tracker.getStageInfo(stage_id)
            if info is not None:
                stages.append(f"stage {stage_id}: {info.numCompletedTasks}/{info.numTasks} tasks")
        parts.append(f"job {job_id} [{', '.join(stages) or 'starting'}]")
    return "; ".join(parts) or "no Spark job running (driver-side work)"


@contextmanager
def heartbeat(spark: SparkSession | None, label: str, every: float = 30.0) -> Iterator[None]:
    """Log `label`, its elapsed seconds and the running Spark jobs every `every` seconds while the block runs."""
    if spark is None:
        yield
        return
    done = threading.Event()
    started = time.perf_counter()

    def beat() -> None:
        while not done.wait(every):
            try:
                log.info("%s: %.0f s, %s", label, time.perf_counter() - started, running_jobs(spark))
            except Exception as exc:  # the session may be stopping; progress must never break a stage
                log.debug("%s: no progress available: %s", label, exc)

    thread = threading.Thread(target=beat, name=f"heartbeat {label}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


class Steps:
    """Seconds per named step of one piece of work (`with steps("name"): ...`), accumulated per name and logged as
    `<label> step <name>: <s> s`; the log record carries `step=(label, name, seconds)` for benchmarks to collect."""

    def __init__(self, label: str, logger: logging.Logger = log) -> None:
        self.label, self.logger = label, logger
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
        self.logger.info("%s step %s: %.1f s", self.label, name, self.seconds[name],
                         extra={"step": (self.label, name, self.seconds[name])})  # fmt: skip
