"""Model fits at once in driver threads. On small data a Spark fit is mostly fixed cost in one driver thread (job
planning, scheduling, Python), so a second fit at the same time keeps the other core busy; on a cluster the same
threads submit independent jobs. Each fit gives the same model either way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from pyspark.sql import SparkSession
from pyspark.util import inheritable_thread_target

T = TypeVar("T")
R = TypeVar("R")


def map_fits(spark: SparkSession, fit: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """[fit(item) for item in items], up to `workers` at once, in the order of `items`. The threads inherit this
    thread's Spark local properties (job group, benchmark stage labels); MLflow's active run is this thread's, so
    log the results here, not in `fit`."""
    if workers <= 1 or len(items) <= 1:
        return [fit(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(inheritable_thread_target(spark)(fit), items))
