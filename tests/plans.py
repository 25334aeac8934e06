"""Which files Spark's executed queries scanned: read from Spark's own SQL status store (works with the UI off)."""

from __future__ import annotations

import re
from collections import Counter

from pyspark.sql import SparkSession

NODE = re.compile(r"^\((\d+)\) (Scan \S+.*)$")
LOCATION = re.compile(r"^Location: \S+ \[(.+)\]$")


def last_execution_id(spark: SparkSession) -> int:
    executions = spark._jsparkSession.sharedState().statusStore().executionsList()
    return max((executions.apply(i).executionId() for i in range(executions.size())), default=-1)


def scanned_locations(spark: SparkSession, after: int) -> Counter:
    """How many times each table location was scanned by the queries run after execution id `after`.

    A scan is a `Scan <format>` node of a query's physical plan; each node counts once per query, however often
    the formatted plan prints it (adaptive plans print the initial and the final plan).
    """
    counts: Counter = Counter()
    executions = spark._jsparkSession.sharedState().statusStore().executionsList()
    for i in range(executions.size()):
        execution = executions.apply(i)
        if execution.executionId() <= after:
            continue
        nodes: dict[str, str] = {}
        current = None
        for line in execution.physicalPlanDescription().splitlines():
            if match := NODE.match(line):
                current = match.group(1)
            elif current and (loc := LOCATION.match(line)):
                for path in loc.group(1).split(", "):
                    nodes[current] = path.removeprefix("file:")
                current = None
            elif not line.strip():
                current = None
        counts.update(nodes.values())
    return counts
