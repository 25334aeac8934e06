"""How a source's file columns become a contract's input columns: renamed (`mapping`), or computed (`columns`: a
Spark SQL expression over the file's columns, a window function, or a constant).

A computed column reads the file's values as text, as every value is read before it is typed: `abs(Quantity)` casts
'12' to a number. A value that does not cast becomes null there instead of failing the batch, so the row is
quarantined by the column it feeds (`missing_required` or `wrong_type`), like any unreadable value. Besides the
file's columns an expression may read `_raw` (the whole record as read, the same text every time the same file is
read) and `_file` (the landing file's path): `row_number() OVER (PARTITION BY _file, Invoice ORDER BY _raw)` numbers
an order's lines within each file the same way on every run, however the files are batched.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from sqlglot import exp

from audiencelake.core.contracts import Contract
from audiencelake.core.errors import SourceError
from audiencelake.core.expressions import parse, to_literal
from audiencelake.core.source_settings import SourceSettings

LINEAGE = ("_raw", "_file")  # bronze columns an expression may read besides the file's own
PARSED = "_parsed"  # the struct of the record's file columns, as text
_ANSI = "spark.sql.ansi.enabled"
_lenient = threading.Lock()


@dataclass(frozen=True)
class SourceColumns:
    """The contract input columns of one source: each one's SQL over the `_parsed` struct and `LINEAGE`, and the
    file columns they read."""

    renamed: dict[str, str]  # contract column -> file column
    computed: dict[str, str]  # contract column -> Spark SQL over `_parsed`
    written: dict[str, str]  # contract column -> its SQL as the source gives it
    file_columns: list[str]
    reads: dict[str, list[str]]  # computed contract column -> the file columns its SQL reads

    def value(self, name: str) -> Column:
        """The contract column's value as text, before it is typed."""
        if name in self.renamed:
            return F.col(PARSED).getField(self.renamed[name])
        return F.expr(self.computed[name]).cast("string")

    def select(self, c: Contract, df: DataFrame, *columns: Column) -> DataFrame:
        """`df.select(*columns)` where `df` has the `_parsed` struct.

        Raises:
            SourceError: Spark cannot compute a computed column (a function given text where it wants a number,
                say), naming the table, the column, its expression and Spark's reason.
        """
        try:
            return df.select(*columns)
        except AnalysisException:
            for name, sql in self.computed.items():
                try:
                    df.select(F.expr(sql))
                except AnalysisException as exc:
                    reason = str(exc).split(";", 1)[0].splitlines()[0]
                    raise SourceError(
                        f"table '{c.table}' columns.{name}: cannot compute {self.written[name]!r}: {reason}"
                    ) from None
            raise


def source_columns(c: Contract, src: SourceSettings) -> SourceColumns:
    """Where each input column of `c` comes from in `src`'s files: `columns` first, then `mapping`, else the file
    column of the same name."""
    inverse = {target: file_col for file_col, target in src.mapping.items()}
    renamed: dict[str, str] = {}
    computed: dict[str, str] = {}
    files: list[str] = []
    reads: dict[str, list[str]] = {}
    for col in c.columns:
        given = src.columns.get(col.name)
        if given is None:
            renamed[col.name] = inverse.get(col.name, col.name)
            files.append(renamed[col.name])
            continue
        tree = parse(given, windows=True).tree if isinstance(given, str) else to_literal(given)
        reads[col.name] = [n.name for n in tree.find_all(exp.Column) if not n.table and n.name not in LINEAGE]
        files += reads[col.name]
        computed[col.name] = tree.transform(_in_parsed).sql(dialect="spark")
    written = {name: str(src.columns[name]) for name in computed}
    return SourceColumns(renamed, computed, written, list(dict.fromkeys(files)), reads)


def _in_parsed(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Column) and not node.table and node.name not in LINEAGE:
        return exp.column(exp.to_identifier(node.name, quoted=True), table=exp.to_identifier(PARSED))
    return node


@contextmanager
def lenient_casts(spark: SparkSession, needed: bool = True) -> Iterator[None]:
    """Analyse the DataFrames built inside with ANSI mode off, so that a cast of text that is not a number gives null
    instead of failing the query (Spark fixes a cast's mode when it analyses it: the DataFrame keeps it). One thread
    at a time; ANSI mode is restored on leaving."""
    if not needed:
        yield
        return
    with _lenient:
        before = spark.conf.get(_ANSI)
        spark.conf.set(_ANSI, "false")
        try:
            yield
        finally:
            spark.conf.set(_ANSI, before)
