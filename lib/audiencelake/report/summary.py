"""A plain-text summary of the lake: rows per table, the accounting per source, quarantine reasons."""

from __future__ import annotations

from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F

from audiencelake.core.lake import Lake

AUDIT_COLUMNS = ("rows_read", "rows_bronze_rejected", "rows_silver_rejected", "rows_duplicate", "rows_superseded",
                 "rows_to_silver")  # fmt: skip


def text_table(rows: list[tuple], header: tuple[str, ...]) -> str:
    cells = [tuple(str(v) for v in header)] + [tuple(str(v) for v in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    numeric = [all(isinstance(r[i], int) for r in rows) for i in range(len(header))]
    fmt = "  ".join(f"{{:{'>' if numeric[i] else '<'}{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*r) for r in cells)


def lake_summary(lake: Lake) -> str:
    """Rows per table, per-source accounting (read = rejected + duplicate + superseded + to silver), and the
    quarantine reasons with their rule."""
    out = [f"lake: {lake.settings.lake_root}", "", "tables"]
    tables = []
    for layer, name in lake.table_names():
        ref = lake.ref(layer, name)
        if lake.exists(ref):
            tables.append((str(ref), lake.read(ref).count(), lake.version(ref)))
    out.append(text_table(tables, ("table", "rows", "delta version")))
    audit_ref = lake.ref("ops", "ingest_audit")
    if lake.exists(audit_ref):
        sums = (
            lake.read(audit_ref).groupBy("source").agg(*[F.sum(c).alias(c) for c in AUDIT_COLUMNS]).orderBy("source")
        ).collect()
        rows = [(r["source"], *[r[c] for c in AUDIT_COLUMNS],
                 "yes" if r["rows_read"] == sum(r[c] for c in AUDIT_COLUMNS[1:]) else "NO") for r in sums]  # fmt: skip
        out += ["", "accounting per source (read = rejected + duplicate + superseded + to silver)"]
        header = ("source", "read", "bronze rej", "silver rej", "dup", "superseded", "to silver", "ok")
        out.append(text_table(rows, header))
    q_ref = lake.ref("ops", "quarantine")
    if lake.exists(q_ref):
        reasons = (
            lake.read(q_ref).groupBy("source", "stage", "reason", "rule").count().orderBy("source", "stage", "reason")
        ).collect()
        out += ["", "quarantine reasons"]
        out.append(text_table([tuple(r) for r in reasons], ("source", "stage", "reason", "rule", "rows")))
        out += ["", "rules failed by quarantined rows (every rule of each row)"]
        out.append(text_table([tuple(r) for r in failed_rules(lake.read(q_ref))], RULE_HEADER))
    return "\n".join(out)


RULE_HEADER = ("source", "rule", "column", "severity", "rows")


def failed_rules(quarantine: DataFrame) -> list[Row]:
    """Rows of ops.quarantine per failing rule (a row failing three rules counts for each), most first; none for a
    quarantine from before `failures` that no ingest has written to since."""
    if "failures" not in quarantine.columns:
        return []
    every = quarantine.select("source", F.explode("failures").alias("f"))
    return (
        every.groupBy("source", F.col("f.rule").alias("rule"), F.col("f.column").alias("column"),
                      F.col("f.severity").alias("severity"))
        .count().orderBy(F.desc("count"), "source", "rule").collect()
    )  # fmt: skip
