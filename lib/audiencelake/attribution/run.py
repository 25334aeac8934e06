"""The `attribution` stage: gold.journeys as of the run date, then every rules-based model's credits into
gold.attribution, each table's rows of the date replaced in one commit (a re-run gives the same rows)."""

from __future__ import annotations

import logging

from pyspark.sql import functions as F

from audiencelake.attribution.journeys import build_journeys
from audiencelake.attribution.rules import MODELS, attribute
from audiencelake.core.errors import MissingData
from audiencelake.core.lake import Lake, check_schema
from audiencelake.core.runs import Run
from audiencelake.core.sql import sql_literal
from audiencelake.core.stage_inputs import kept_or_built, library_version
from audiencelake.tags.channels import ChannelRules
from audiencelake.tags.loader import load_catalogue

log = logging.getLogger("audiencelake.attribution")
STAGE = "attribution"
READS = ("orders", "clickstream_events", "campaign_touches")  # silver tables the journeys are built from


def attribution_stage(lake: Lake, run: Run) -> dict:
    """Journeys and rules-based attribution as of the run date, kept (no work, no commit) when the tables they are
    built from, the channel rules and the library are as the date's last complete run found them.

    Raises:
        MissingData: no source of the tag catalogue names channel rules, so visits have no channel.
    """
    catalogue = load_catalogue(lake.settings.profile.tags, lake.settings.overrides("tags"))
    rules = catalogue.channel_rules
    if rules is None:
        raise MissingData(f"attribution: no source of {catalogue.file} names channel rules (`channels:`)")
    inputs = {"tables": {f"silver.{t}": lake.version(lake.ref("silver", t)) for t in READS},
              "rules": rules.model_dump(mode="json"), "library": library_version()}  # fmt: skip
    output = lake.ref("gold", "attribution")
    counts = kept_or_built(lake, STAGE, run.as_of.isoformat(), inputs, output, lambda: _build(lake, run, rules), run)
    if "kept" in counts:
        log.info("attribution as of %s: orders, visits, touches and rules as its last run read them; kept", run.as_of)
    return counts


def _build(lake: Lake, run: Run, rules: ChannelRules) -> dict:
    date = f"as_of = {sql_literal(run.as_of)}"
    journeys_ref, attribution_ref = lake.ref("gold", "journeys"), lake.ref("gold", "attribution")
    journeys = build_journeys(lake, rules, run.as_of)
    lake.replace_where(check_schema(journeys, "journeys"), journeys_ref, date)
    written = lake.read(journeys_ref).where(F.col("as_of") == F.lit(run.as_of))
    counts = written.agg(
        F.count("*").alias("conversions"),
        F.sum((F.size("touchpoints") > 0).cast("long")).alias("attributed"),
        F.sum(F.size("touchpoints")).alias("touchpoints"),
    ).first()
    credited = attribute(written, rules.attribution, run.as_of)
    lake.replace_where(check_schema(credited, "attribution"), attribution_ref, date)
    out = {k: int(counts[k] or 0) for k in ("conversions", "attributed", "touchpoints")} | {"models": len(MODELS)}
    log.info("attribution as of %s: %s", run.as_of, out)
    return out
