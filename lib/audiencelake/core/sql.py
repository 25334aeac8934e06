"""Python values as Spark SQL literals: the one way the project writes a value into SQL text.

Spark's parser treats a backslash in a string literal as an escape (`spark.sql.parser.escapedStringLiterals` is
false by default), so a backslash is doubled and a quote is escaped with one: `a\\b` and `it's` come back from Spark
as they went in.
"""

from __future__ import annotations

from datetime import date, datetime


def sql_literal(value: object) -> str:
    """`value` as a Spark SQL literal: booleans as TRUE/FALSE, numbers as written, dates as DATE'...', anything
    else as a quoted string."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return f"DATE'{value.isoformat()}'"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
