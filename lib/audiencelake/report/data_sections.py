"""The report's sections on the data: sources and quarantine, quality results, tag coverage, the RFM grid and
the segments."""

from __future__ import annotations

from html import escape

from pyspark.sql import functions as F

from audiencelake.core import charts
from audiencelake.report.blocks import (
    PROVIDED_BY,
    Context,
    chart,
    lacking,
    latest_of,
    missing,
    read_table,
    table,
)
from audiencelake.report.summary import AUDIT_COLUMNS, RULE_HEADER, failed_rules


def sources(ctx: Context) -> str:
    audit = read_table(ctx, "ops", "ingest_audit")
    if audit is None:
        return missing("ops.ingest_audit (run the ingest stage)")
    absent = [t for t in PROVIDED_BY if not ctx.lake.exists(ctx.lake.ref("silver", t))]
    have = [t for t in PROVIDED_BY if t not in absent]
    intro = f"<p>This lake has {escape(', '.join(f'silver.{t}' for t in have) or 'no silver table')}."
    if absent:
        intro += (f" It lacks {escape(', '.join(f'silver.{t}' for t in absent))}: "
                  f"{escape('; '.join(PROVIDED_BY[t] for t in absent))} would fill "
                  f"{'it' if len(absent) == 1 else 'them'}, and the tags, models and audiences that need "
                  f"{'it' if len(absent) == 1 else 'them'} (below).")  # fmt: skip
    intro += "</p>"
    sums = audit.groupBy("source").agg(*[F.sum(c).alias(c) for c in AUDIT_COLUMNS]).orderBy("source").collect()
    labels = [r["source"] for r in sums]
    series = {c.removeprefix("rows_").replace("_", " "): [r[c] for r in sums] for c in AUDIT_COLUMNS[1:]}
    out = intro + chart(
        charts.bars("Records read per source, by outcome", "source", "records", labels, series, stacked=True),
        "Every record read is accounted for: rejected, duplicate, superseded or in silver.",
    )
    out += table(
        ["source", *[c.removeprefix("rows_") for c in AUDIT_COLUMNS]],
        [[r["source"], *[r[c] for c in AUDIT_COLUMNS]] for r in sums],
    )
    quarantine = read_table(ctx, "ops", "quarantine")
    if quarantine is not None:
        reasons = quarantine.groupBy("source", "reason", "rule").count().orderBy(F.desc("count")).collect()
        if reasons:
            labels = [f"{r['source']}: {r['reason']} ({r['rule'] or '-'})" for r in reasons]
            out += chart(
                charts.hbars("Quarantined records by reason", "records", labels, [r["count"] for r in reasons]),
                "ops.quarantine keeps each rejected record with its reason, rule and file.",
            )
            rules = failed_rules(quarantine)
            out += "<p>Every rule the quarantined records fail (a record failing several counts for each):</p>"
            out += table(list(RULE_HEADER), [list(r) for r in rules])
    return out


def quality(ctx: Context) -> str:
    results = read_table(ctx, "ops", "quality_results")
    if results is None:
        return missing("ops.quality_results (run the quality stage)")
    whole = results.where(F.col("scope") == "table")
    newest = whole.groupBy("table").agg(F.max("validated_at").alias("validated_at"))  # each table's latest
    rows = whole.join(newest, ["table", "validated_at"]).orderBy("table", "expectation").collect()
    if not rows:
        return missing("a whole-table validation (run the quality stage)")
    passed = sum(r["success"] for r in rows)
    out = f"<p>{passed} of {len(rows)} expectations pass on the whole silver tables (Great Expectations).</p>"
    by_table: dict[str, list[int]] = {}
    for r in rows:
        by_table.setdefault(r["table"], [0, 0])[0 if r["success"] else 1] += 1
    names = sorted(by_table)
    series = {"pass": [by_table[t][0] for t in names], "fail": [by_table[t][1] for t in names]}
    out += chart(
        charts.bars("Expectations per silver table", "table", "expectations", names, series, stacked=True),
        "The latest table-scope validation of each silver table.",
    )
    out += table(
        ["table", "expectation", "severity", "success", "rows", "unexpected (GE)", "failing (predicate)"],
        [
            [
                r["table"],
                r["expectation"],
                r["severity"],
                r["success"],
                r["element_count"],
                r["unexpected_count"],
                r["predicate_count"],
            ]
            for r in rows
        ],
    )
    return out


def tags(ctx: Context) -> str:
    latest, as_of = latest_of(ctx, "gold", "tag_catalog")
    if latest is None:
        return missing("gold.tag_catalog (run the profile stage)")
    everything = latest.orderBy("kind", "name").collect()
    lacking = [r for r in everything if r.asDict().get("unavailable")]
    rows = [r for r in everything if not r.asDict().get("unavailable")]
    labels = [f"{r['name']} ({r['kind']})" for r in rows]
    filled = [1 - r["null_rate"] for r in rows]
    out = chart(
        charts.hbars(f"Tag coverage as of {as_of}", "share of users with a value", labels, filled),
        f"{len(rows)} tags of conf/tags.yaml over {everything[0]['users'] if everything else 0} users.",
    )
    if lacking:
        out += (
            f"<p>{len(lacking)} tags could not be computed: the sources they read have no table in this lake. "
            "Landing those sources' files makes them available at the next run.</p>"
        )
        out += table(["tag", "kind", "why"], [[r["name"], r["kind"], r["unavailable"]] for r in lacking])
    return out


def rfm(ctx: Context) -> str:
    latest, as_of = latest_of(ctx, "gold", "user_profile")
    orders = ctx.lake.exists(ctx.lake.ref("silver", "orders"))  # without them the RFM tags are unavailable (null)
    if latest is None or "rfm_recency_score" not in latest.columns or not orders:
        return lacking(ctx, "RFM scores", ("silver.orders",), "gold.user_profile with the RFM tags")
    scored = latest.where(F.col("rfm_recency_score").isNotNull() & F.col("rfm_frequency_score").isNotNull())
    counts = {(r[0], r[1]): r[2] for r in scored.groupBy("rfm_recency_score", "rfm_frequency_score").count().collect()}
    scores = list(range(1, 6))
    cells = [[counts.get((rec, freq), 0) for freq in scores] for rec in reversed(scores)]
    out = chart(
        charts.heatmap(
            f"Buyers by RFM score as of {as_of}",
            "frequency score",
            "recency score",
            scores,
            list(reversed(scores)),
            cells,
        ),
        "Quintile scores; 5 is the most recent or frequent.",
    )
    if "rfm_segment" in latest.columns:
        segments = latest.groupBy("rfm_segment").count().orderBy(F.desc("count")).collect()
        out += table(["RFM segment", "users"], [[r[0], r[1]] for r in segments])
    return out


def segments(ctx: Context) -> str:
    latest, as_of = latest_of(ctx, "gold", "segments")
    if latest is None:
        return missing("gold.segments (run score_segmentation)")
    rows = latest.groupBy("segment", "description").count().orderBy("segment").collect()
    out = chart(
        charts.bars(
            f"Segment sizes as of {as_of}",
            "segment",
            "users",
            [str(r["segment"]) for r in rows],
            {"users": [r["count"] for r in rows]},
        ),
        "KMeans segments of the champion model.",
    )
    return out + table(
        ["segment", "users", "description"], [[r["segment"], r["count"], r["description"]] for r in rows]
    )
