"""The Spark predicate of the rows a contract's row-level expectation rejects (`core.expectations` lists the types
and their predicates), with the expectation's kwargs resolved for the run date."""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column

from audiencelake.core.contracts import Contract, Expectation
from audiencelake.core.expectations import EXPECTATION_TYPES
from audiencelake.quality.params import resolve_kwargs


def failing_rows(c: Contract, exp: Expectation, as_of: date) -> Column:
    """The predicate selecting the rows that `exp` rejects.

    Raises:
        ValueError: `exp` is a table-level expectation, which rejects no particular rows.
    """
    rejects = EXPECTATION_TYPES[exp.expectation].rejects
    if rejects is None:
        raise ValueError(f"contract '{c.table}': expectation '{exp.name}' ({exp.expectation}) is table-level and "
                         "selects no rows")  # fmt: skip
    return rejects(resolve_kwargs(c, exp, as_of))
