"""Which files Spark's executed queries scanned: read from Spark's own SQL status store (works with the UI off)."""

from __future__ import annotations

import re
from collections import Counter

from pyspark.sql import SparkSession

NODE = re.compile(r"^\((\d+)\) (Scan \S+.*)$")
LOCATION = re.compile(r"^Location: \S+ \[(.+)\]$")
RELATION = re.compile(r"^\((\d+)\) InMemoryRelation$")
TREE_NODE = re.compile(r"^([\s+\-:|]*?)(?:\* )?([A-Za-z][^(]*?)\s*\((\d+)\)")


def last_execution_id(spark: SparkSession) -> int:
    executions = spark._jsparkSession.sharedState().statusStore().executionsList()
    return max((executions.apply(i).executionId() for i in range(executions.size())), default=-1)


def scanned_locations(spark: SparkSession, after: int) -> Counter:
    """How many times each table location was scanned by the queries run after execution id `after`.

    A scan is a `Scan <format>` node of a query's physical plan; each node counts once per query, however often
    the formatted plan prints it (adaptive plans print the initial and the final plan). A scan inside a cached
    relation (`InMemoryRelation`, a persisted DataFrame) is computed once, by the first query that reads it: it
    counts once per relation over all the queries, though every query reading the cache prints it.
    """
    counts: Counter = Counter()
    cached_seen: set[tuple[str, str]] = set()
    executions = spark._jsparkSession.sharedState().statusStore().executionsList()
    for i in range(executions.size()):
        execution = executions.apply(i)
        if execution.executionId() <= after:
            continue
        plan = execution.physicalPlanDescription()
        inside = _cached_nodes(plan)
        nodes: dict[str, str] = {}
        relations: dict[str, str] = {}
        current = None
        for line in plan.splitlines():
            if match := NODE.match(line):
                current = match.group(1)
            elif match := RELATION.match(line):
                current = "relation:" + match.group(1)
            elif current and current.startswith("relation:") and line.startswith("Arguments: "):
                relations[current.removeprefix("relation:")] = line
                current = None
            elif current and (loc := LOCATION.match(line)):
                for path in loc.group(1).split(", "):
                    nodes[current] = path.removeprefix("file:")
                current = None
            elif not line.strip():
                current = None
        for node, path in nodes.items():
            if node not in inside:
                counts[path] += 1
            elif (key := (relations[inside[node]], path)) not in cached_seen:  # (KeyError: a plan format unknown)
                cached_seen.add(key)
                counts[path] += 1
    return counts


def _cached_nodes(plan: str) -> dict[str, str]:
    """Node id -> id of the innermost `InMemoryRelation` above it, from a formatted plan's tree (its indentation)."""
    inside: dict[str, str] = {}
    open_relations: list[tuple[int, str]] = []  # (indentation, relation id)
    for line in plan.splitlines():
        match = TREE_NODE.match(line)
        if not match:
            continue
        indent, name, node = len(match.group(1)), match.group(2), match.group(3)
        while open_relations and indent <= open_relations[-1][0]:
            open_relations.pop()
        if open_relations:
            inside[node] = open_relations[-1][1]
        if name.startswith("InMemoryRelation"):
            open_relations.append((indent, node))
    return inside
