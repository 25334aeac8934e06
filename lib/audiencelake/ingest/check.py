"""`audiencelake sources check`: a dry run of ingest over a sample of each source's landing files.

Each sampled record goes through what ingest does before it writes: the read (bronze's reasons), the mapping and
typing (`conform`), the derived columns, and the contract's row-level expectations with the business thresholds in
force. Nothing is written: no table, ledger or checkpoint changes, and files checked are ingested as new later.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from audiencelake.core.config import Settings
from audiencelake.core.errors import ConfigError, SourceError
from audiencelake.core.pii import SALT, with_salt
from audiencelake.ingest.conform import conform
from audiencelake.ingest.derive import derive
from audiencelake.ingest.failed_files import set_aside
from audiencelake.ingest.landing import list_files
from audiencelake.ingest.mapping import source_columns
from audiencelake.ingest.reader import read_grouped, read_raw
from audiencelake.quality.predicates import failing_rows
from audiencelake.quality.suites import contract_expectations

DRY_RUN_SALT = "sources-check"  # hashes made here are never shown or kept


@dataclass(frozen=True)
class ColumnCheck:
    name: str
    type: str
    required: bool
    origin: str  # the file column it is read from, or the SQL it is computed by
    example: str | None  # a typed value from the sample, as text


@dataclass(frozen=True)
class SourceCheck:
    source: str
    table: str
    format: str
    files: int
    sampled: int = 0
    columns: list[ColumnCheck] = field(default_factory=list)
    quarantined: dict[tuple[str, str], int] = field(default_factory=dict)  # (reason, rule) -> rows
    warned: int = 0
    shared_keys: int = 0  # conforming rows whose key another sampled row has too
    unread: list[str] = field(default_factory=list)  # file columns no contract column reads
    absent: list[str] = field(default_factory=list)  # file columns the source reads that no sampled record has
    unreadable: dict[str, str] = field(default_factory=dict)  # file -> why ingest would set it aside

    @property
    def to_silver(self) -> int:
        return self.sampled - sum(self.quarantined.values())

    def render(self) -> str:
        head = f"source {self.source} ({self.format} -> silver.{self.table}): {self.files} files"
        if not self.files:
            return f"{head}; nothing to check"
        lines = [f"{head}, {self.sampled} records sampled", "  column | type | from | example"]
        for col in self.columns:
            need = " (required)" if col.required else ""
            lines.append(f"  {col.name} | {col.type}{need} | {col.origin} | {col.example}")
        lines.append(
            f"  would enter silver: {self.to_silver}" + (f" ({self.warned} with warnings)" * bool(self.warned))
        )
        lines.append(f"  would be quarantined: {sum(self.quarantined.values())}")
        for (reason, rule), n in sorted(self.quarantined.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"    {reason} {rule}: {n}")
        if self.shared_keys:
            lines.append(f"  rows sharing their key ({self.table} keys) with another sampled row: {self.shared_keys}")
        if self.absent:
            lines.append(f"  file columns read but in no sampled record (their contract columns stay null): "
                         f"{', '.join(self.absent)}")  # fmt: skip
        if self.unread:
            lines.append(f"  file columns not read: {', '.join(self.unread)}")
        for path, reason in sorted(self.unreadable.items()):
            lines.append(f"  would be set aside as a file: {path}: {reason}")
        return "\n".join(lines)


def check_sources(spark: SparkSession, settings: Settings, as_of: date, sample: int = 10_000,
                  only: list[str] | None = None) -> list[SourceCheck]:  # fmt: skip
    """Check each configured source (or those named in `only`) on up to `sample` records of its landing files."""
    names = only or list(settings.sources)
    if unknown := sorted(set(names) - set(settings.sources)):
        raise ConfigError(
            settings.sources_file or "conf/sources.yaml", "sources",
            f"no source {unknown}; configured: {sorted(settings.sources)}",
        )  # fmt: skip
    return [check_source(spark, settings, name, as_of, sample) for name in names]


def check_source(spark: SparkSession, settings: Settings, source: str, as_of: date, sample: int) -> SourceCheck:
    src = settings.sources[source]
    c = settings.contract(src.table, source)
    files = list_files(spark, settings.source_path(source))
    if not files:
        return SourceCheck(source, src.table, src.format, 0)
    try:
        return _check(spark, source, files, c, src, as_of, sample)
    except SourceError:
        raise
    except Exception as exc:  # a file the reader cannot take: say which, as ingest would, and check the others
        bad = set_aside(spark, src, source, files, exc, "its landing files")
        readable = [f for f in files if f.path not in bad]
        if not readable:
            raise SourceError(f"source '{source}': cannot read its landing files: {next(iter(bad.values()))}") from exc
        checked = _check(spark, source, readable, c, src, as_of, sample, read_grouped)
        return replace(checked, files=len(files), unreadable=bad)


def _check(
    spark: SparkSession, source: str, files: list, c, src, as_of: date, sample: int, read=read_raw
) -> SourceCheck:
    raw = read(spark, src, [f.read_path for f in files]).limit(sample).cache()
    try:
        rows = raw.transform(conform, c, src).transform(with_salt, DRY_RUN_SALT).transform(derive, c).drop(SALT)
        return _summarise(source, src.format, len(files), c, src, rows, raw, as_of)
    finally:
        raw.unpersist()


def _summarise(source, fmt, n_files, c, src, rows: DataFrame, raw: DataFrame, as_of: date) -> SourceCheck:
    rules = [e for e in contract_expectations(c) if e.row_level]
    fails = [F.when(failing_rows(c, e, as_of), F.lit(e.name)) for e in rules if e.severity == "error"]
    warns = [failing_rows(c, e, as_of) for e in rules if e.severity == "warn"]
    first_fail = F.coalesce(*fails) if fails else F.lit(None).cast("string")
    outcome = rows.select(
        F.when(F.col("_reason").isNotNull(), F.col("_reason")).when(first_fail.isNotNull(), "expectation").alias("r"),
        F.coalesce("_rule", first_fail).alias("rule"),
        (F.col("_reason").isNull() & first_fail.isNull() & _any(warns)).alias("warned"),
        *[F.col(f"`{k}`") for k in c.keys],
    ).cache()
    try:
        counts = outcome.groupBy("r", "rule").agg(
            F.count("*").alias("n"), F.sum(F.col("warned").cast("int")).alias("w")
        )
        by = counts.collect()
        good = outcome.where(F.col("r").isNull())
        shared = good.groupBy(*c.keys).count().where("count > 1").agg(F.sum("count")).first()[0] or 0
    finally:
        outcome.unpersist()
    quarantined = Counter({(r["r"], r["rule"]): r["n"] for r in by if r["r"] is not None})
    examples = (
        rows.where(F.col("_reason").isNull())
        .agg(*[F.first(F.col(f"`{col.name}`").cast("string"), ignorenulls=True).alias(col.name) for col in c.columns])
        .first()
    )
    given = source_columns(c, src)
    columns = [
        ColumnCheck(col.name, col.type, not col.nullable,
                    given.renamed.get(col.name) or f"= {given.written[col.name]}", examples[col.name])
        for col in c.columns
    ]  # fmt: skip
    keys = raw.where(F.col("_error").isNull()).select(
        F.explode(F.map_keys(F.from_json("_raw", T.MapType(T.StringType(), T.StringType())))).alias("k")
    )
    seen = {r["k"] for r in keys.distinct().collect()}
    return SourceCheck(
        source, c.table, fmt, n_files, sum(r["n"] for r in by), columns, dict(quarantined),
        warned=sum(r["w"] or 0 for r in by if r["r"] is None), shared_keys=int(shared),
        unread=sorted(seen - set(given.file_columns)),
        absent=[f for f in given.file_columns if f not in seen] if seen else [],
    )  # fmt: skip


def _any(conditions: list) -> F.Column:
    out = F.lit(False)
    for cond in conditions:
        out = out | F.coalesce(cond, F.lit(False))
    return out
