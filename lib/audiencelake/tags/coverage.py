"""gold.tag_catalog: each tag's definition beside its coverage in one as-of date's profile."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from audiencelake.core.contracts import contract
from audiencelake.tags.definitions import NUMERIC_TYPES, Catalogue, Tag

TOP_VALUES = 5


@dataclass(frozen=True)
class Coverage:
    frame: DataFrame  # the catalogue rows of the date, one per tag
    users: int  # rows of the profile
    values: int  # its non-null tag values: the rows of its long form (gold.user_tags)


def _stats(profile: DataFrame, catalogue: Catalogue) -> dict:
    """One aggregation over the profile: users, non-null count per tag, min/mean/max for numbers."""
    cols = [F.count(F.lit(1)).alias("__users")]
    for i, t in enumerate(catalogue.tags):
        c = F.col(f"`{t.name}`")
        cols.append(F.count(c).alias(f"n{i}"))
        if t.type in NUMERIC_TYPES:
            cols += [F.min(c).cast("double").alias(f"lo{i}"), F.avg(c).alias(f"mu{i}"),
                     F.max(c).cast("double").alias(f"hi{i}")]  # fmt: skip
    return profile.agg(*cols).first().asDict()


def _values(long_tags: DataFrame, catalogue: Catalogue, users: int) -> tuple[dict[str, int], dict[str, str]]:
    """From the long form's counts per (tag, value), computed once: each tag's number of distinct values (exact),
    and the most frequent values of the non-numeric tags with their share of users, as JSON per tag. (Approximate
    distinct counts over the wide profile cost more: one HyperLogLog per tag made that aggregation about four times
    slower.) Only the non-numeric tags are ranked: a numeric tag's values are nearly one per user."""
    numeric = [t.name for t in catalogue.tags if t.type in NUMERIC_TYPES]
    counts = long_tags.groupBy("tag", "value").count().persist()
    try:
        distinct = {r["tag"]: int(r["count"]) for r in counts.groupBy("tag").count().collect()}
        rank = F.row_number().over(Window.partitionBy("tag").orderBy(F.desc("count"), "value"))
        ranked = counts.where(~F.col("tag").isin(numeric)).withColumn("r", rank)
        rows = ranked.where(F.col("r") <= TOP_VALUES).orderBy("tag", "r").collect()
    finally:
        counts.unpersist()
    out: dict[str, list] = {}
    for row in rows:
        out.setdefault(row["tag"], []).append({"value": row["value"], "share": round(row["count"] / max(users, 1), 4)})
    return distinct, {k: json.dumps(v, ensure_ascii=False) for k, v in out.items()}


def _definition(tag: Tag) -> str:
    return json.dumps(tag.model_dump(exclude_none=True, exclude={"description", "owner", "kind", "type"}))


def tag_catalog(
    profile: DataFrame,
    long_tags: DataFrame,
    catalogue: Catalogue,
    details: dict[str, dict],
    as_of: date,
    unavailable: dict[str, str] | None = None,
) -> Coverage:
    """The catalogue rows of one as-of date (one per tag, `unavailable` ones with why), and the counts of users and
    values they were made of."""
    unavailable = unavailable or {}
    stats = _stats(profile, catalogue)
    users = int(stats["__users"])
    distinct, tops = _values(long_tags, catalogue, users)
    rows = []
    for i, t in enumerate(catalogue.tags):
        numeric = t.type in NUMERIC_TYPES
        rows.append((
            t.name, t.description.strip(), t.kind, "+".join(dict.fromkeys(t.sources)) or None, t.owner, t.type,
            _definition(t), users, 1.0 - stats[f"n{i}"] / users if users else 1.0, distinct.get(t.name, 0),
            stats.get(f"lo{i}") if numeric else None, stats.get(f"mu{i}") if numeric else None,
            stats.get(f"hi{i}") if numeric else None, None if numeric else tops.get(t.name),
            json.dumps(details[t.name]) if t.name in details else None, unavailable.get(t.name), as_of,
        ))  # fmt: skip
    frame = profile.sparkSession.createDataFrame(rows, contract("tag_catalog").table_schema())
    return Coverage(frame, users, sum(int(stats[f"n{i}"]) for i in range(len(catalogue.tags))))
