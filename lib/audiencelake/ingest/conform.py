"""Bronze raw records -> typed contract columns, each row marked with why it cannot enter silver, if it cannot.

Pure DataFrame transforms. Checks, in order: the record parsed at all (bronze `_error`), then per column in
contract order: a required value is present (`missing_required`), a present value has the contract's type
(`wrong_type`). The first failure is the row's reason; its column is the rule.
"""

from __future__ import annotations

import re

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from audiencelake.core.contracts import Column as ContractColumn
from audiencelake.core.contracts import Contract, spark_type
from audiencelake.core.source_settings import SourceSettings
from audiencelake.ingest.mapping import PARSED, lenient_casts, source_columns

# Characters no identifier means to hold but copies and exports bring along: zero-width spaces and joiners, the
# byte-order mark, soft hyphens (Unicode format characters) and control characters
INVISIBLE = r"[\p{Cf}\p{Cc}]"
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")
_OFFSET = re.compile(r"[XxZOzV]")
_VALUE_OFFSET = r"(Z|[+-]\d{2}:?\d{2})$"


def _has_offset(pattern: str) -> bool:
    return bool(_OFFSET.search(re.sub(r"'[^']*'", "", pattern)))


def typed_value(raw: Column, col: ContractColumn, src: SourceSettings) -> Column:
    """Convert a raw string to the column's type; null when it does not convert."""
    pattern = src.timestamp_formats.get(col.name)
    if col.type in ("timestamp", "date"):
        ts = F.try_to_timestamp(raw, F.lit(pattern)) if pattern else raw.try_cast("timestamp")
        if col.type == "date" or src.time_zone == "UTC":
            return ts
        if pattern:
            return ts if _has_offset(pattern) else F.to_utc_timestamp(ts, src.time_zone)
        # no pattern: a value that carries its own offset keeps it; a bare wall-clock time is in the source's zone
        return F.when(raw.rlike(_VALUE_OFFSET), ts).otherwise(F.to_utc_timestamp(ts, src.time_zone))
    if col.type == "boolean":
        word = F.lower(raw)
        return F.when(word.isin(*TRUE_WORDS), True).when(word.isin(*FALSE_WORDS), False).otherwise(F.lit(None))
    if col.type == "string":
        return raw
    if col.type in ("int", "long"):  # a whole number written with a fraction ('12.0', as spreadsheets and SQL give)
        number = raw.try_cast("decimal(38,9)")
        return F.when(number == F.floor(number), number.try_cast(spark_type(col.type)))
    return raw.try_cast(spark_type(col.type))


def _with_fields(struct: Column, values: dict[str, Column]) -> Column:
    for name, value in values.items():
        struct = struct.withField(name, value)
    return struct


def conform(df: DataFrame, c: Contract, src: SourceSettings) -> DataFrame:
    """Add the contract's typed columns and `_reason`/`_rule` (null when the row conforms).

    Each raw value is trimmed and each typed value converted once, into a column, and the checks read those
    columns: written inline, every check would parse the value again (a timestamp up to six times a row).

    Args:
        df: bronze rows (`_raw`, `_error` and lineage).
        c: the target table's contract.
        src: the source settings (renamed and computed columns, timestamp formats, time zone).
    """
    given = source_columns(c, src)
    raw_schema = T.StructType([T.StructField(f, T.StringType()) for f in given.file_columns])
    raw = {col.name: f"_in_{i}" for i, col in enumerate(c.columns)}  # the trimmed raw string of each column
    unread = F.col("_error").isNotNull()  # rejected at bronze: not parsed again (it may be a 50 MB line)
    ids = set(c.identifier_columns)
    source = df.withColumn(PARSED, F.when(~unread, F.from_json("_raw", raw_schema)))
    # the file values an identifier is computed from are cleaned first (`concat(customer, '-', day)`)
    dirty = sorted({f for name in ids & set(given.computed) for f in given.reads[name] if "." not in f})
    if dirty:
        clean = {f: F.regexp_replace(F.col(PARSED).getField(f), INVISIBLE, "") for f in dirty}
        changed = [F.col(PARSED).getField(f) != value for f, value in clean.items()]
        source = source.withColumn("_dirty_ids", F.greatest(*changed, F.lit(False)))
        source = source.withColumn(PARSED, _with_fields(F.col(PARSED), clean))
    with lenient_casts(df.sparkSession, needed=bool(given.computed)):
        parsed = given.select(
            c,
            source,
            *[F.col(f"`{name}`") for name in df.columns],
            *([F.col("_dirty_ids")] if dirty else []),
            *[F.trim(given.value(col.name)).alias(raw[col.name]) for col in c.columns],
        )
    cleaned = {name: F.regexp_replace(F.col(raw[name]), INVISIBLE, "") for name in ids}
    touched = [F.col(raw[name]) != cleaned[name] for name in ids] + ([F.col("_dirty_ids")] if dirty else [])
    parsed = parsed.select(
        *[F.col(f"`{name}`") for name in df.columns],
        *[F.nullif(F.trim(cleaned.get(col.name, F.col(raw[col.name]))), F.lit("")).alias(raw[col.name])
          for col in c.columns],
        F.coalesce(F.greatest(*touched) if len(touched) > 1 else touched[0], F.lit(False)).alias("_ids_cleaned")
        if touched else F.lit(False).alias("_ids_cleaned"),
    )  # fmt: skip
    typed = parsed.select(
        "*",
        *[typed_value(F.col(raw[col.name]), col, src).cast(spark_type(col.type)).alias(col.name) for col in c.columns],
    )
    checks: list[tuple[Column, str | Column, str]] = [(unread, F.col("_error"), "_raw")]
    for col in c.columns:
        if not col.nullable:
            checks.append((F.col(raw[col.name]).isNull(), "missing_required", col.name))
        checks.append((F.col(raw[col.name]).isNotNull() & F.col(f"`{col.name}`").isNull(), "wrong_type", col.name))
    first = F.coalesce(
        *[F.when(cond, F.struct(F.lit(r).alias("reason"), F.lit(n).alias("rule"))) for cond, r, n in checks]
    )
    return (
        typed.withColumn("_check", first)
        .select("*", F.col("_check.reason").alias("_reason"), F.col("_check.rule").alias("_rule"))
        .withColumn(
            "_stage", F.when(F.col("_error").isNotNull(), "bronze").when(F.col("_reason").isNotNull(), "silver")
        )
        .drop("_check", *raw.values())
    )
