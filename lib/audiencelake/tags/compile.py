"""Compile the source-level tags of a catalogue into ONE aggregation per source, whatever the number of tags.

Each source is read once, limited to rows at or before the as-of date (and within the longest window its tags
use); its extra `columns` are added; then every tag over it becomes one aggregate expression of a single
`groupBy(user)`. Windows and filters become `CASE WHEN` guards inside the aggregates, not separate scans.
The per-source results are joined on `user_id`.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from audiencelake.core.lake import Lake
from audiencelake.core.sql import sql_literal
from audiencelake.tags.definitions import Catalogue, Tag

AGE = "__age_days"  # days from an event to the end of the as-of date, for time decay


def part_name(tag: str, i: int, j: int) -> str:
    """The hidden column holding input `i`'s weight for value `j` of a `top` tag."""
    return f"__{tag}__{i}__{j}"


def run_params(catalogue: Catalogue, as_of: date) -> dict[str, object]:
    return {**catalogue.params, "as_of": as_of}


class SourceCompiler:
    """Builds the aggregate expressions of one source."""

    def __init__(self, catalogue: Catalogue, source: str, as_of: date) -> None:
        self.catalogue, self.source, self.as_of = catalogue, source, as_of
        self.params = run_params(catalogue, as_of)

    def sql(self, text: str) -> str:
        return self.catalogue.expr(text).bind(self.params)

    def guard(self, tag: Tag, *conditions: str | None) -> str:
        """SQL: the row is in the tag's window (the last `window_days` days up to the as-of date) and meets all
        `conditions`. Rows after the as-of date never reach the aggregation (see `source_rows`)."""
        parts = []
        if tag.window_days:
            start = self.as_of + timedelta(days=1 - tag.window_days)
            parts.append(f"{self.catalogue.sources[self.source].time} >= TIMESTAMP'{start.isoformat()} 00:00:00'")
        parts += [f"({self.sql(c)})" for c in conditions if c]
        return " AND ".join(parts) or "TRUE"

    def aggregate(self, tag: Tag) -> list[Column]:
        """The aggregate column(s) of one tag over this source."""
        fn, col = tag.function, self.sql(tag.column) if tag.column else None
        if fn == "top":
            return self.top_parts(tag)
        g = self.guard(tag, tag.filter)
        when = f"CASE WHEN {g} THEN {col} END"
        time = self.catalogue.sources[self.source].time
        text = {
            "count": f"count(CASE WHEN {g} THEN {col or 1} END)",
            "sum": f"sum({when})",
            "avg": f"avg({when})",
            "min": f"min({when})",
            "max": f"max({when})",
            "count_distinct": f"size(collect_set({when}))",
            "first": f"min_by({when}, CASE WHEN {g} THEN named_struct('t', {time}, 'v', {col}) END)",  # ties: min value
            "last": f"max_by({when}, CASE WHEN {g} THEN named_struct('t', {time}, 'v', {col}) END)",  # ties: max value
            "mode": f"mode({when}, true)",
            "share": f"avg(CASE WHEN {g} THEN CASE WHEN {self.sql(tag.condition or 'TRUE')} THEN 1D ELSE 0D END END)",
            "ratio": (  # no numerator rows over some denominator rows is 0, not null
                f"try_divide(coalesce(sum(CASE WHEN {self.guard(tag, tag.filter, tag.numerator)} THEN {col or 1} END), "
                f"0), sum(CASE WHEN {self.guard(tag, tag.filter, tag.denominator)} THEN {col or 1} END))"
            ),
        }[fn]
        return [F.expr(text).alias(tag.name)]

    def top_parts(self, tag: Tag) -> list[Column]:
        cols = []
        for i, inp in enumerate(tag.inputs):
            if inp.source != self.source:
                continue
            decay = f" * power(0.5, {AGE} / {tag.half_life_days})" if tag.half_life_days else ""
            value = self.sql(tag.column)
            for j, v in enumerate(tag.values):
                g = self.guard(tag, inp.filter, f"{value} = {sql_literal(v)}")
                text = f"sum(CASE WHEN {g} THEN CAST({self.sql(inp.weight)} AS DOUBLE){decay} END)"
                cols.append(F.expr(text).alias(part_name(tag.name, i, j)))
        return cols

    def attribute(self, tag: Tag) -> list[Column]:
        latest = self.catalogue.sources[self.source].latest_by
        return [F.expr(f"max_by({self.sql(tag.expression)}, {latest})").alias(tag.name)]


def longest_window(catalogue: Catalogue, source: str) -> int | None:
    """The longest window (days) the source's tags use, or None when one reads all history."""
    windows = [t.window_days for t in catalogue.tags if source in t.sources and t.mechanism == "aggregate"]
    return None if not windows or None in windows else max(windows)


def _since(df: DataFrame, time: str, date_col: str | None, start: date) -> DataFrame:
    """Rows at or after the start of `start` (UTC), also filtered on the date partition column to skip files."""
    df = df.where(F.col(time) >= F.lit(start.isoformat()).cast("date").cast("timestamp"))
    return df.where(F.col(date_col) >= F.lit(start)) if date_col else df


def source_rows(
    lake: Lake, catalogue: Catalogue, source: str, as_of: date, versions: dict[str, int | None] | None = None
) -> DataFrame:
    """The rows of a source a profile as of `as_of` may see, with its extra columns and the event age; read at its
    Delta version in `versions` (silver table -> version) when given, else at the latest.

    The extra `columns` (which may look at other rows through window functions) are computed over the rows of the
    tags' longest window plus the source's `lookback_days`, then the rows are cut to that window: a row's value
    never depends on which tags the catalogue holds, nor on anything after the as-of date.
    """
    src = catalogue.sources[source]
    compiler = SourceCompiler(catalogue, source, as_of)
    ref, version = lake.ref("silver", src.table), (versions or {}).get(src.table)
    df = lake.read(ref) if version is None else lake.read_version(ref, version)
    df = df.where(F.col(src.user).isNotNull())
    if src.time is None:
        df = df.where(F.expr(compiler.sql(src.where))) if src.where else df
        for name, text in src.columns.items():
            df = df.withColumn(name, F.expr(compiler.sql(text)))
        return df
    end = F.lit((as_of + timedelta(days=1)).isoformat()).cast("date").cast("timestamp")
    df = df.where(F.col(src.time) < end)
    if src.date:  # the partition column: lets Delta skip files
        df = df.where(F.col(src.date) <= F.lit(as_of))
    days = longest_window(catalogue, source)
    window_start = None if days is None else as_of + timedelta(days=1 - days)
    if window_start is not None and (src.lookback_days is not None or not src.columns):
        df = _since(df, src.time, src.date, window_start - timedelta(days=src.lookback_days or 0))
    for name, text in src.columns.items():
        df = df.withColumn(name, F.expr(compiler.sql(text)))
    if window_start is not None and src.columns:
        df = _since(df, src.time, None, window_start)
    return df.withColumn(AGE, (F.unix_micros(end) - F.unix_micros(F.col(src.time))) / 86_400_000_000.0)


def aggregate_source(
    lake: Lake, catalogue: Catalogue, source: str, as_of: date, versions: dict[str, int | None] | None = None
) -> DataFrame:
    """ONE groupBy over the source, holding every tag (and `top` part) that reads it."""
    compiler = SourceCompiler(catalogue, source, as_of)
    cols: list[Column] = []
    for tag in catalogue.tags:
        if source not in tag.sources:
            continue
        cols += compiler.attribute(tag) if tag.mechanism == "attribute" else compiler.aggregate(tag)
    user = catalogue.sources[source].user
    return source_rows(lake, catalogue, source, as_of, versions).groupBy(F.col(user).alias("user_id")).agg(*cols)


def aggregate_all(
    lake: Lake, catalogue: Catalogue, as_of: date, versions: dict[str, int | None] | None = None
) -> DataFrame:
    """Every source's aggregation, joined on `user_id` (a user seen by any source has a row); `versions` pins the
    silver tables' Delta versions (see `source_rows`)."""
    used = [s for s in catalogue.sources if any(s in t.sources for t in catalogue.tags)]
    frames = [aggregate_source(lake, catalogue, s, as_of, versions) for s in used]  # never empty: the loader checks
    return reduce(lambda left, right: left.join(right, "user_id", "full"), frames)
