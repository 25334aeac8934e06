"""Landing files -> raw records (_file, _raw, _error), one row per record, unparsed: how each format is read, and
why a record cannot be used at all (bronze `_error`, the quarantine's reason at stage `bronze`)."""

from __future__ import annotations

import logging
import re

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from audiencelake.core.contracts import contract
from audiencelake.core.source_settings import SourceSettings
from audiencelake.ingest.landing import canonical_path_col
from audiencelake.ingest.mapping import source_columns

log = logging.getLogger(__name__)

MALFORMED = "malformed_record"  # not a JSON object, or a CSV row with the wrong number of fields
JSON_ARRAY = "json_array"  # a JSON array where JSON lines (one object per line) were expected
INVALID_ENCODING = "invalid_encoding"  # bytes that are not UTF-8 (e.g. Latin-1): the reader put U+FFFD in their place
TOO_LARGE = "record_too_large"  # over MAX_RECORD_CHARS: no event or profile is that big (a runaway field, a dump)
MAX_RECORD_CHARS = 1_000_000


def record_error(raw: Column, malformed: Column) -> Column:
    """The bronze reason for a record (null when it can be used): its size, its encoding, then whether it parsed."""
    return (
        F.when(F.length(raw) > MAX_RECORD_CHARS, F.lit(TOO_LARGE))
        .when(raw.contains("\ufffd"), F.lit(INVALID_ENCODING))
        .when(malformed & F.ltrim(raw).startswith("["), F.lit(JSON_ARRAY))
        .when(malformed, F.lit(MALFORMED))
    )


def json_records(lines: DataFrame) -> DataFrame:
    """Text lines (`value`, with the file source's `_metadata`) -> (_file, _raw, _error); blank lines are skipped, a
    leading byte-order mark is dropped, and a line that is not a JSON object is malformed. Batch and streaming reads
    share it."""
    records = lines.select(
        canonical_path_col(F.col("_metadata.file_path")).alias("_file"),
        F.regexp_replace("value", "^\ufeff", "").alias("_raw"),  # a byte-order mark before a file's first line
    ).where(F.trim("_raw") != "")
    parsed = F.from_json("_raw", T.MapType(T.StringType(), T.StringType()))
    return records.withColumn("_error", record_error(F.col("_raw"), parsed.isNull()))


# RFC 4180: a header line, fields quoted with " and a " inside one doubled, line breaks allowed inside quotes (which
# makes Spark read each file whole: `multiLine: false` in a source's options splits large simple files)
CSV_DEFAULTS = {"header": "true", "multiLine": "true", "quote": '"', "escape": '"'}


def csv_options(src: SourceSettings) -> dict[str, str]:
    """The options a CSV source is read with: RFC 4180 (`CSV_DEFAULTS`) unless the source says otherwise, without a
    header when the source declares `names`."""
    return {**CSV_DEFAULTS, **src.options, **({"header": "false"} if src.names else {})}


def csv_separator(options: dict[str, str]) -> str:
    """The separator character(s) Spark reads from the options (`\\t` written in YAML is a tab)."""
    sep = options.get("sep", options.get("delimiter", ","))
    return sep.encode().decode("unicode_escape") if "\\" in sep else sep


def read_raw(spark: SparkSession, src: SourceSettings, paths: list[str]) -> DataFrame:
    """Read landing files into (_file, _raw, _error): one row per record, unparsed.

    JSON: the line is the raw record; a line that is not a JSON object is malformed. CSV: read as RFC 4180 unless
    the source's options say otherwise (`CSV_DEFAULTS`: a quoted field may hold line breaks and doubled quotes);
    fields are read as strings by the header's names and kept as a JSON object; a row with the wrong number of
    fields is malformed.
    A CSV file without a header is read by the source's `names`. Text (`text_records`): each line split by the
    source's `separator` or `widths` into its `names`.
    Either way a record with bytes that are not UTF-8 is `invalid_encoding` (`record_error`). A CSV header naming
    columns the source does not map, or lacking some it does, is logged with the file (schema drift).

    Raises:
        SourceError: a CSV header differs from the first file's, naming the file.
    """
    if src.format == "json":
        return json_records(spark.read.options(**src.options).text(paths))
    if src.format == "text":
        return text_records(spark.read.options(**src.options).text(paths), src)
    if src.format == "csv":
        options = csv_options(src)
        header = src.names or spark.read.options(**options).csv(paths[0]).columns
        _warn_drift(src, paths[0], header)
        schema = T.StructType(
            [T.StructField(h, T.StringType()) for h in header] + [T.StructField("_corrupt", T.StringType())]
        )
        df = (
            spark.read.options(
                **options, mode="PERMISSIVE", columnNameOfCorruptRecord="_corrupt", enforceSchema="false"
            )
            .schema(schema)
            .csv(paths)
        )
        raw = F.coalesce("_corrupt", F.to_json(F.struct(*[F.col(f"`{h}`") for h in header])))
        return df.select(
            canonical_path_col(F.col("_metadata.file_path")).alias("_file"),
            raw.alias("_raw"),
            record_error(raw, F.col("_corrupt").isNotNull()).alias("_error"),
        )
    df = spark.read.options(**src.options).parquet(*paths)
    return df.select(
        canonical_path_col(F.col("_metadata.file_path")).alias("_file"),
        F.to_json(F.struct(*[F.col(f"`{c}`") for c in df.columns])).alias("_raw"),
        F.lit(None).cast("string").alias("_error"),
    )


def read_grouped(spark: SparkSession, src: SourceSettings, paths: list[str]) -> DataFrame:
    """`read_raw` of CSV files with headers that differ (a column added, reordered): each header's files read
    apart, by their own header, into one frame of raw records (the JSON in `_raw` names each value's column); other
    formats, or a CSV without a header, as `read_raw`. One Spark job per file to read the headers."""
    if src.format != "csv" or src.names:
        return read_raw(spark, src, paths)
    options = csv_options(src)
    groups: dict[tuple[str, ...], list[str]] = {}
    for path in paths:
        groups.setdefault(tuple(spark.read.options(**options).csv(path).columns), []).append(path)
    frames = [read_raw(spark, src, group) for group in groups.values()]
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


def text_records(lines: DataFrame, src: SourceSettings) -> DataFrame:
    """Text lines -> (_file, _raw, _error): each line's fields, split by the source's `separator` (a regular
    expression; spaces around the line are dropped first) or cut by its `widths`, named by its `names` and kept as a
    JSON object. A line with another number of fields, or longer than the widths, is malformed (its text is kept);
    blank lines and a line that repeats the names (a header) are skipped."""
    names = src.names or []
    line = F.regexp_replace("value", "^\ufeff", "")
    if src.widths:
        starts = [sum(src.widths[:i]) + 1 for i in range(len(src.widths))]
        fields = F.array(*[F.trim(F.substring(line, s, w)) for s, w in zip(starts, src.widths, strict=True)])
        malformed = (F.length(F.rtrim(line)) > sum(src.widths)) | (F.length(line) < starts[-1])
    else:
        fields = F.split(F.trim(line), src.separator or "")
        malformed = F.size(fields) != len(names)
    record = F.to_json(F.struct(*[fields[i].alias(n) for i, n in enumerate(names)]))
    out = (
        lines.where(F.trim(line) != "")
        .select(
            canonical_path_col(F.col("_metadata.file_path")).alias("_file"),
            F.when(malformed, line).otherwise(record).alias("_raw"),
            malformed.alias("_malformed"),
            (fields == F.array(*[F.lit(n) for n in names])).alias("_header"),
        )
        .where(~F.col("_header"))
    )
    return out.select("_file", "_raw", record_error(F.col("_raw"), F.col("_malformed")).alias("_error"))


def _warn_drift(src: SourceSettings, path: str, header: list[str]) -> None:
    """Log the columns a CSV header adds to (kept in bronze `_raw` only) or lacks from the source's contract."""
    expected = set(source_columns(contract(src.table), src).file_columns)
    if extra := [h for h in header if h not in expected]:
        log.warning("%s: columns %s are not in contract '%s' (kept in bronze only)", path, extra, src.table)
    if missing := sorted(expected - set(header)):
        log.warning("%s: columns %s of contract '%s' are missing from the header", path, missing, src.table)


def read_failure(text: str) -> str:
    """The file and the root cause in a Spark read error (a Py4J error's text: a Java stack trace)."""
    file = re.search(r"while reading file (\S+?)\.?\s", text)
    causes = re.findall(r"Caused by: ([^\n]+)", text)
    cause = causes[-1].strip() if causes else next((line for line in text.splitlines() if line.strip()), text)
    if "EOFException" in cause:
        cause += " (a truncated or corrupt compressed file)"
    return f"{file.group(1)}: {cause}" if file else cause
