"""Great Expectations suites built from contracts: nullability and keys from the columns, plus the listed rules."""

from __future__ import annotations

from datetime import date

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.expectations.expectation import Expectation as GxExpectation

from audiencelake.core.contracts import Contract, Expectation
from audiencelake.quality.params import resolve_kwargs


def _class_name(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def contract_expectations(c: Contract) -> list[Expectation]:
    """Every expectation a contract implies: not-null per required column, key uniqueness, then the listed rules."""
    implied = [
        Expectation(name=f"{col.name}_not_null", expectation="expect_column_values_to_not_be_null",
                    kwargs={"column": col.name}, severity="error")
        for col in c.all_columns if not col.nullable and not col.pii
    ]  # fmt: skip
    if len(c.keys) == 1:
        implied.append(Expectation(name="keys_unique", expectation="expect_column_values_to_be_unique",
                                   kwargs={"column": c.keys[0]}, severity="error"))  # fmt: skip
    elif c.keys:
        implied.append(Expectation(name="keys_unique", expectation="expect_compound_columns_to_be_unique",
                                   kwargs={"column_list": list(c.keys)}, severity="error"))  # fmt: skip
    return implied + list(c.expectations)


def gx_expectation(c: Contract, exp: Expectation, as_of: date) -> GxExpectation:
    """The Great Expectations object for one contract expectation; its `meta` carries the contract name."""
    cls = getattr(gxe, _class_name(exp.expectation))
    return cls(**resolve_kwargs(c, exp, as_of), meta={"name": exp.name, "severity": exp.severity})


def build_suite(c: Contract, expectations: list[Expectation], as_of: date) -> gx.ExpectationSuite:
    suite = gx.ExpectationSuite(name=f"{c.layer}.{c.table}")
    for exp in expectations:
        suite.add_expectation(gx_expectation(c, exp, as_of))
    return suite
