"""Independent model fits (or the profiles they read) at once in driver threads. On small data a Spark fit is mostly
fixed cost in one driver thread (job planning, scheduling, Delta commits, Python), so a second one at the same time
keeps the other core busy; on a cluster the same threads submit independent jobs. Each gives the same result either
way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from pyspark.sql import SparkSession
from pyspark.util import inheritable_thread_target

T = TypeVar("T")
R = TypeVar("R")


def map_parallel(spark: SparkSession, work: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """[work(item) for item in items], up to `workers` at once, in the order of `items`. The threads inherit this
    thread's Spark local properties (job group, benchmark stage labels); MLflow's active run is this thread's, so
    log the results here, not in `work`."""
    if workers <= 1 or len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        # wrapped per item: each thread gets its own copy of the local properties (one shared copy would carry
        # one thread's SQL execution id and job description into the other's queries)
        futures = [pool.submit(inheritable_thread_target(spark)(work), item) for item in items]
        return [f.result() for f in futures]
