"""The report's building blocks: the section context, HTML tables, charts and images, reading the lake's
tables, and the sentences a section shows when it has nothing to show."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from html import escape

from pyspark.sql import functions as F

from audiencelake.core import charts
from audiencelake.core.lake import Lake


@dataclass(frozen=True)
class Context:
    lake: Lake
    run_id: str | None  # the audience run shown; None: the latest


def table(header: list[str], rows: list[list]) -> str:
    def cell(v) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return escape("-" if v is None else str(v))

    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def chart(fig, caption: str) -> str:
    return f'<figure class="chart">{charts.svg(fig)}<figcaption>{escape(caption)}</figcaption></figure>'


def image(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode()
    return (
        f'<figure class="chart"><img alt="{escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def missing(what: str) -> str:
    return f'<p class="missing">Not available yet: {escape(what)}.</p>'


# What kind of export fills each silver table: the report names it when a section lacks the table
PROVIDED_BY = {
    "orders": "an order log (a source with table: orders)",
    "crm_profiles": "a CRM customer export with consent (table: crm_profiles)",
    "clickstream_events": "web or app analytics events (table: clickstream_events)",
    "campaign_touches": "campaign send, open and click logs (table: campaign_touches)",
    "social_interactions": "social media interactions (table: social_interactions)",
}


def lacking(ctx: Context, what: str, needs: tuple[str, ...], otherwise: str) -> str:
    """A sentence saying the lake cannot give `what` because it has none of the silver tables of one of `needs`
    ("silver.a|silver.b": either), and which source would provide it; `missing(otherwise)` when it has them (a
    stage has not run yet)."""
    for need in needs:
        tables = [t.removeprefix("silver.") for t in need.split("|")]
        if not any(ctx.lake.exists(ctx.lake.ref("silver", t)) for t in tables):
            names = " or ".join(f"silver.{t}" for t in tables)
            sources = " or ".join(PROVIDED_BY.get(t, t) for t in tables)
            sentence = f"No {what}: this lake has no {names}; {sources} would provide it."
            return f'<p class="missing">{escape(sentence)}</p>'
    return missing(otherwise)


def read_table(ctx: Context, layer: str, name: str):
    ref = ctx.lake.ref(layer, name)
    return ctx.lake.read(ref) if ctx.lake.exists(ref) else None


def latest(df, column: str = "as_of"):
    last = df.agg(F.max(column)).first()[0]
    return df.where(F.col(column) == last), last


def latest_of(ctx: Context, layer: str, name: str):
    """(rows of the table's latest as-of date, that date), or (None, None) when the table does not exist."""
    df = read_table(ctx, layer, name)
    return (None, None) if df is None else latest(df)
