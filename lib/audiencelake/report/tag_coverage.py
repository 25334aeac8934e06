"""The tag coverage table printed by the demo and `audiencelake tags coverage`: gold.tag_catalog of one date."""

from __future__ import annotations

import json
from datetime import date

from pyspark.sql import functions as F

from audiencelake.core.errors import AudiencelakeError
from audiencelake.core.lake import Lake
from audiencelake.report.summary import text_table


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:,.2f}".rstrip("0").rstrip(".")


def coverage_table(lake: Lake, as_of: date | str | None = None) -> str:
    """One line per tag: kind, type, filled share, distinct values, and min/mean/max or the most common values.

    Raises:
        AudiencelakeError: gold.tag_catalog does not exist, or has no rows for the date.
    """
    ref = lake.ref("gold", "tag_catalog")
    if not lake.exists(ref):
        raise AudiencelakeError(f"{ref} does not exist yet: run `audiencelake profile` first")
    catalog = lake.read(ref)
    if as_of is None:
        as_of = catalog.agg(F.max("as_of")).first()[0]
    rows = catalog.where(F.col("as_of") == F.lit(str(as_of)).cast("date")).orderBy("kind", "name").collect()
    if not rows:
        raise AudiencelakeError(f"{ref} has no rows for as_of {as_of}")
    lines = []
    for r in rows:
        if r["mean_value"] is not None:
            summary = f"min {_fmt(r['min_value'])} / mean {_fmt(r['mean_value'])} / max {_fmt(r['max_value'])}"
        else:
            summary = ", ".join(f"{v['value']} {v['share']:.0%}" for v in _values(r["top_values"]))
        lines.append((r["name"], r["kind"], r["value_type"], f"{1 - r['null_rate']:.0%}", r["distinct_values"],
                      summary[:70]))  # fmt: skip
    head = f"tag coverage as of {as_of}: {rows[0]['users']} users, {len(rows)} tags"
    return head + "\n" + text_table(lines, ("tag", "kind", "type", "filled", "distinct", "distribution"))


def _values(text: str | None) -> list[dict]:
    return json.loads(text) if text else []
