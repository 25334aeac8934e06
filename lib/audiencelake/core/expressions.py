"""SQL expressions in the declarative files (tag definitions, model settings, a source's computed columns): parsed
with sqlglot (Spark dialect) to validate them without Spark, to find the columns and tags they refer to, and to bind
`:name` parameters to literals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlglot
from pyspark.sql import functions as spark_functions
from sqlglot import exp
from sqlglot.errors import ParseError

from audiencelake.core.errors import AudiencelakeError

# Spark SQL functions that sqlglot parses as unknown (`Anonymous`) but Spark has: PySpark's functions module mirrors
# Spark SQL's built-in functions by name (timestamp_micros, xxhash64, make_date, ...), so no session is needed
SPARK_FUNCTIONS = frozenset(
    {"log1p", "expm1", "bround", "try_add", "try_subtract", "try_multiply", "nanvl"}
    | {name for name in dir(spark_functions) if name.islower() and not name.startswith("_")
       and callable(getattr(spark_functions, name))}
) - {"udf", "udtf", "pandas_udf", "col", "column", "lit", "expr", "broadcast", "call_function", "call_udf", "cast",
     "overload", "try_remote_functions", "to_str"}  # PySpark's helpers, not SQL functions  # fmt: skip
# Functions whose value depends on the clock or on chance: a profile must be a function of its data and as-of date.
NONDETERMINISTIC = tuple(
    getattr(exp, name)
    for name in (
        "Rand",
        "Randn",
        "CurrentDate",
        "CurrentTimestamp",
        "CurrentTime",
        "CurrentDatetime",
        "Uuid",
        "Shuffle",
    )
    if hasattr(exp, name)
)
# Spark functions sqlglot does not know whose value depends on the clock, chance or how Spark splits the work: a
# key made with monotonically_increasing_id() differs each time the same file is read
UNREPEATABLE = frozenset({
    "monotonically_increasing_id", "spark_partition_id", "input_file_block_start", "input_file_block_length",
    "input_file_name", "now", "localtimestamp", "current_timezone", "current_user", "session_user", "user", "random",
    "rand", "randn", "randstr", "uniform", "uuid", "shuffle", "current_date", "current_timestamp", "curdate",
})  # fmt: skip


class ExpressionError(AudiencelakeError, ValueError):
    """An expression does not parse, or uses something it may not (the message says what)."""


@dataclass(frozen=True)
class Parsed:
    text: str
    tree: exp.Expression

    @property
    def names(self) -> set[str]:
        """Column (or tag) names the expression reads."""
        return {c.name for c in self.tree.find_all(exp.Column)}

    @property
    def params(self) -> set[str]:
        """`:name` parameters the expression uses."""
        return {p.name for p in self.tree.find_all(exp.Placeholder)}

    def bind(self, values: dict[str, object]) -> str:
        """Spark SQL text with every `:name` replaced by the literal for `values[name]`."""

        def literal(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Placeholder):
                return to_literal(values[node.name])
            return node

        return self.tree.copy().transform(literal).sql(dialect="spark")


def to_literal(value: object) -> exp.Expression:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), "date")
    return exp.Literal.string(str(value))


def parse(text: str, *, windows: bool = False) -> Parsed:
    """Parse one Spark SQL expression.

    Args:
        text: the expression.
        windows: whether window functions (`... OVER (...)`) are allowed.

    Raises:
        ExpressionError: it does not parse, calls an unknown function, aggregates, or uses a window where none is
            allowed.
    """
    try:
        tree = sqlglot.parse_one(str(text), read="spark")
    except ParseError as exc:
        raise ExpressionError(f"not a valid SQL expression ({str(exc).splitlines()[0]}): {text!r}") from exc
    if isinstance(tree, exp.Query) or tree.find(exp.Select):
        raise ExpressionError(f"a query is not allowed here, only an expression: {text!r}")
    for fn in tree.find_all(exp.Anonymous):
        if fn.name.lower() not in SPARK_FUNCTIONS:
            raise ExpressionError(f"unknown function '{fn.name}' in {text!r}")
    clock = next((n for n in tree.find_all(*NONDETERMINISTIC)), None)
    if clock is None:
        clock = next((n for n in tree.find_all(exp.Anonymous) if n.name.lower() in UNREPEATABLE), None)
    if clock is None:
        clock = next((n for n in tree.find_all(exp.StrToUnix) if n.this is None), None)
    if clock is not None:
        raise ExpressionError(
            f"'{clock.sql(dialect='spark')}' reads the clock, chance or Spark's partitioning, so re-runs would not "
            f"agree (a tag uses :as_of; a source's key row_number() over the file, or sha2(_raw, 256)): {text!r}"
        )
    if not windows and tree.find(exp.Window):
        raise ExpressionError(f"window functions are only allowed in a source's columns: {text!r}")
    for agg in tree.find_all(exp.AggFunc):
        if not isinstance(agg.parent, exp.Window):
            raise ExpressionError(
                f"aggregate '{agg.sql(dialect='spark')}' is not allowed in an expression; use a tag's `function`"
            )
    return Parsed(str(text), tree)
