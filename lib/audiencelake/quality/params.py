"""Expectation kwargs with run-time placeholders resolved and values typed for the checked column."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from audiencelake.core.contracts import Contract, Expectation, param_name

_BOUNDS = ("min_value", "max_value")


def resolve_kwargs(c: Contract, exp: Expectation, as_of: date) -> dict:
    """Return the expectation's kwargs with `{as_of}` replaced, a parameter the contract's values in force
    (`Contract.with_params`) left unset at its default, and bounds typed like the column.

    Dates and timestamps compare against `date`/`datetime` values and decimals against `Decimal`, so Great
    Expectations and the Spark predicates see the same typed bounds.
    """
    kwargs = {k: c.params[name].default if (name := param_name(v)) in c.params else v for k, v in exp.kwargs.items()}
    column_type = c.column(kwargs["column"]).type if "column" in kwargs else None
    for key in _BOUNDS:
        value = kwargs.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            value = value.replace("{as_of}", as_of.isoformat())
        if column_type == "date":
            value = value if isinstance(value, date) else date.fromisoformat(str(value))
        elif column_type == "timestamp":
            value = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        elif column_type and column_type.startswith("decimal"):
            value = Decimal(str(value))
        kwargs[key] = value
    return kwargs
