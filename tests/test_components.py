from __future__ import annotations

import pytest

from audiencelake.identity.components import ComponentsDidNotConverge, connected_components


def test_components_of_a_small_graph(spark) -> None:
    edges = [("e", "d"), ("d", "c"), ("c", "b"), ("b", "a"), ("x", "y"), ("z", "z")]
    df = spark.createDataFrame(edges, "src string, dst string")
    labels = {r["node"]: r["component"] for r in connected_components(df).collect()}
    assert labels == {"a": "a", "b": "a", "c": "a", "d": "a", "e": "a", "x": "x", "y": "x", "z": "z"}


def test_too_few_rounds_is_an_error(spark) -> None:
    chain = [(f"n{i:02d}", f"n{i + 1:02d}") for i in range(12)]
    with pytest.raises(ComponentsDidNotConverge, match="identity.max_iterations"):
        connected_components(spark.createDataFrame(chain, "src string, dst string"), max_iterations=2)
