"""Audience rules as Spark columns. A null field fails every comparison (SQL's three-valued logic, with unknown taken
as false), so `NOT (x > 5)` holds for x <= 5 only, never for a missing x."""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column
from pyspark.sql import functions as F

from audiencelake.audiences.definitions import All, Compare, InAudience, Not, Rule


def membership_column(audience: str) -> str:
    """The boolean column that marks members of `audience` once it is built."""
    return f"_in_{audience}"


def _lit(value) -> Column:
    return F.lit(value.isoformat()).cast("date") if isinstance(value, date) else F.lit(value)


def _compare(rule: Compare) -> Column:
    col = F.col(f"`{rule.field}`")
    if rule.op == "is_null":
        return col.isNull() if rule.value else col.isNotNull()
    if rule.op == "between":
        return col.between(_lit(rule.value[0]), _lit(rule.value[1]))
    if rule.op == "in":
        return col.isin(*[_lit(v) for v in rule.value])
    ops = {"eq": col.__eq__, "ne": col.__ne__, "lt": col.__lt__, "lte": col.__le__, "gt": col.__gt__, "gte": col.__ge__}
    return ops[rule.op](_lit(rule.value))


def _column(rule: Rule) -> Column:
    """The rule with SQL's null semantics (null: unknown)."""
    if isinstance(rule, Compare):
        return _compare(rule)
    if isinstance(rule, InAudience):
        return F.col(membership_column(rule.audience))
    if isinstance(rule, Not):
        return ~_column(rule.rule)
    combine = Column.__and__ if isinstance(rule, All) else Column.__or__
    out = _column(rule.rules[0])
    for r in rule.rules[1:]:
        out = combine(out, _column(r))
    return out


def to_column(rule: Rule) -> Column:
    """True where the rule holds; unknown (a null field) counts as false."""
    return F.coalesce(_column(rule), F.lit(False))


def steps(rule: Rule) -> list[tuple[str, Rule]]:
    """The funnel's rule steps: each condition of a top-level `all`, else the whole rule."""
    parts = rule.rules if isinstance(rule, All) else (rule,)
    return [(r.text(), r) for r in parts]
