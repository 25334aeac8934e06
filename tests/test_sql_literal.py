"""`core.sql.sql_literal`, the one way a value is written into SQL text: Spark reads back what went in, quotes and
backslashes included (two of the helpers it replaced disagreed on backslashes: `a\\b` became a backspace)."""

from __future__ import annotations

from datetime import date

from audiencelake.audiences.definitions import Compare
from audiencelake.core.sql import sql_literal

VALUES = ["it's", "a\\b", "a\\'b", "\\", "'", "line\\nfeed", "日本 ", "", True, False, 3, -2.5, date(1997, 1, 2)]


def test_spark_reads_back_every_literal(spark) -> None:
    row = spark.sql("SELECT " + ", ".join(f"{sql_literal(v)} AS c{i}" for i, v in enumerate(VALUES))).first()
    assert list(row) == VALUES


def test_an_audience_rule_matches_a_value_with_a_quote_and_a_backslash(spark) -> None:
    odd = "O'Brien\\Sons"
    df = spark.createDataFrame([(odd,), ("O'Brien",), ("OBrienSons",)], "name string")
    assert [r[0] for r in df.where(Compare("name", "eq", odd).text()).collect()] == [odd]
    assert df.where(Compare("name", "in", [odd, "x"]).text()).count() == 1
