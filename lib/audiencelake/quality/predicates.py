"""Spark predicates from row-level expectations: a Column that is true for the rows the expectation rejects.

They follow Great Expectations' semantics (nulls are not unexpected except for not-null checks; a pair check
ignores rows where either value is missing), and a test checks both agree on the counts.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column
from pyspark.sql import functions as F

from audiencelake.contracts import Contract, Expectation
from audiencelake.quality.params import resolve_kwargs


def _between(col: Column, kw: dict) -> Column:
    ok = F.lit(True)
    if kw.get("min_value") is not None:
        ok = ok & ((col > F.lit(kw["min_value"])) if kw.get("strict_min") else (col >= F.lit(kw["min_value"])))
    if kw.get("max_value") is not None:
        ok = ok & ((col < F.lit(kw["max_value"])) if kw.get("strict_max") else (col <= F.lit(kw["max_value"])))
    return col.isNotNull() & ~ok


def failing_rows(c: Contract, exp: Expectation, as_of: date) -> Column:
    """The predicate selecting the rows that `exp` rejects.

    Raises:
        ValueError: `exp` is a table-level expectation, which rejects no particular rows.
    """
    kw = resolve_kwargs(c, exp, as_of)
    col = F.col(f"`{kw['column']}`") if "column" in kw else None
    kind = exp.expectation
    if kind == "expect_column_values_to_not_be_null":
        return col.isNull()
    if kind == "expect_column_values_to_be_between":
        return _between(col, kw)
    if kind == "expect_column_values_to_be_in_set":
        return col.isNotNull() & ~col.isin(list(kw["value_set"]))
    if kind == "expect_column_values_to_not_be_in_set":
        return col.isNotNull() & col.isin(list(kw["value_set"]))
    if kind == "expect_column_values_to_match_regex":
        return col.isNotNull() & ~col.cast("string").rlike(kw["regex"])
    if kind == "expect_column_value_lengths_to_be_between":
        return _between(F.length(col), kw) & col.isNotNull()
    if kind == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = F.col(f"`{kw['column_A']}`"), F.col(f"`{kw['column_B']}`")
        ok = (a >= b) if kw.get("or_equal") else (a > b)
        return a.isNotNull() & b.isNotNull() & ~ok
    raise ValueError(f"contract '{c.table}': expectation '{exp.name}' ({kind}) is table-level and selects no rows")
