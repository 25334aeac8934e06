"""The Great Expectations types a contract may use, listed once: the kwargs each requires and, for a row-level type,
the Spark predicate of the rows it rejects (the quarantine's rule; Great Expectations' own run is the record).

The predicates follow Great Expectations' semantics: nulls are not unexpected except for not-null checks, and a pair
check ignores rows where either value is missing (`tests/test_gate.py` checks both agree row by row).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column
from pyspark.sql import functions as F


@dataclass(frozen=True)
class ExpectationType:
    required: frozenset[str]  # kwargs a contract must give
    rejects: Callable[[dict], Column] | None = None  # resolved kwargs -> rows rejected; None: table-level


def _column(kw: dict, key: str = "column") -> Column:
    return F.col(f"`{kw[key]}`")


def _between(col: Column, kw: dict) -> Column:
    ok = F.lit(True)
    if kw.get("min_value") is not None:
        ok = ok & ((col > F.lit(kw["min_value"])) if kw.get("strict_min") else (col >= F.lit(kw["min_value"])))
    if kw.get("max_value") is not None:
        ok = ok & ((col < F.lit(kw["max_value"])) if kw.get("strict_max") else (col <= F.lit(kw["max_value"])))
    return col.isNotNull() & ~ok


def _pair(kw: dict) -> Column:
    a, b = _column(kw, "column_A"), _column(kw, "column_B")
    ok = (a >= b) if kw.get("or_equal") else (a > b)
    return a.isNotNull() & b.isNotNull() & ~ok


def _type(*required: str, rejects: Callable[[dict], Column] | None = None) -> ExpectationType:
    return ExpectationType(frozenset(required), rejects)


EXPECTATION_TYPES: dict[str, ExpectationType] = {
    # row-level: each rejects particular rows, which are quarantined
    "expect_column_values_to_not_be_null": _type("column", rejects=lambda kw: _column(kw).isNull()),
    "expect_column_values_to_be_between": _type("column", rejects=lambda kw: _between(_column(kw), kw)),
    "expect_column_values_to_be_in_set": _type(
        "column", "value_set", rejects=lambda kw: _column(kw).isNotNull() & ~_column(kw).isin(list(kw["value_set"]))
    ),
    "expect_column_values_to_not_be_in_set": _type(
        "column", "value_set", rejects=lambda kw: _column(kw).isNotNull() & _column(kw).isin(list(kw["value_set"]))
    ),
    "expect_column_values_to_match_regex": _type(
        "column", "regex", rejects=lambda kw: _column(kw).isNotNull() & ~_column(kw).cast("string").rlike(kw["regex"])
    ),
    "expect_column_value_lengths_to_be_between": _type(
        "column", rejects=lambda kw: _between(F.length(_column(kw)), kw) & _column(kw).isNotNull()
    ),
    "expect_column_pair_values_a_to_be_greater_than_b": _type("column_A", "column_B", rejects=_pair),
    # table-level: recorded, and under the `fail` policy they stop the run, but they select no rows
    "expect_table_row_count_to_be_between": _type(),
    "expect_compound_columns_to_be_unique": _type("column_list"),
    "expect_column_values_to_be_unique": _type("column"),
}
