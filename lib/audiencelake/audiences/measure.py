"""Measuring audience runs and campaigns of silver.campaign_touches against their holdouts: orders in each one's
window, per group, reduced in Spark to sums in one aggregation however many are measured; the statistics
(`uplift`) work on those sums. Results replace their rows of gold.campaign_results."""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.audiences.uplift import GroupSums, uplift
from audiencelake.core.errors import AudiencelakeError
from audiencelake.core.lake import Lake, check_schema
from audiencelake.core.runs import Run
from audiencelake.core.stage_inputs import kept_or_built, library_version
from audiencelake.models.purchases import purchases

log = logging.getLogger("audiencelake.audiences")
EMPTY = GroupSums(0, 0, 0.0, 0.0)
STAGE = "measure"
READS = (("silver", "orders"), ("silver", "campaign_touches"), ("ops", "audience_runs"), ("gold", "audience_members"))


def group_sums(groups: DataFrame, orders: DataFrame) -> dict[str, dict[str, GroupSums]]:
    """Per `name` and group of `groups` (name, user_id, group, window_start, window_end): users, converters and
    revenue sums over each user's orders (user_id, order_date, value) inside the name's window."""
    in_window = (
        groups.join(orders, "user_id")
        .where(F.col("order_date").between(F.col("window_start"), F.col("window_end")))
        .groupBy("name", "user_id")
        .agg(F.sum("value").alias("revenue"), F.count("*").alias("orders"))
    )
    per_user = groups.join(in_window, ["name", "user_id"], "left").fillna({"revenue": 0.0, "orders": 0})
    rows = (
        per_user.groupBy("name", "group")
        .agg(
            F.count("*").alias("users"),
            F.sum((F.col("orders") > 0).cast("long")).alias("conv"),
            F.sum("revenue").alias("rev"),
            F.sum(F.col("revenue") * F.col("revenue")).alias("rev2"),
        )
        .collect()  # two rows per name
    )
    out: dict[str, dict[str, GroupSums]] = {}
    for r in rows:
        out.setdefault(r["name"], {})[r["group"]] = GroupSums(int(r["users"]), int(r["conv"]), r["rev"], r["rev2"])
    return out


def measure(
    groups: DataFrame, orders: DataFrame, start: date, end: date, cost_per_contact: float | None = None
) -> dict:
    """Uplift of treatment over holdout in `groups` (user_id, group) for orders (user_id, order_date, value) in
    [start, end]."""
    windowed = groups.select(
        F.lit("").alias("name"), "user_id", "group", F.lit(start).alias("window_start"), F.lit(end).alias("window_end")
    )
    sums = group_sums(windowed, orders).get("", {})
    return uplift(sums.get("treatment", EMPTY), sums.get("holdout", EMPTY), cost_per_contact)


def campaign_groups(lake: Lake, window_days: int, campaign_id: str | None = None) -> DataFrame:
    """(name, user_id, group, window_start, window_end) of campaigns with a holdout: each targeted customer, and
    the window_days from the campaign's first touch."""
    touches = lake.read(lake.ref("silver", "campaign_touches"))
    if campaign_id is not None:
        touches = touches.where(F.col("campaign_id") == campaign_id)
    campaigns = (
        touches.groupBy("campaign_id")
        .agg(F.min("touch_date").alias("window_start"), F.countDistinct("group").alias("groups"))
        .where("groups = 2")
        .withColumn("window_end", F.date_add("window_start", window_days - 1))
    )
    users = touches.groupBy("campaign_id", "user_id").agg(F.max("group").alias("group"))
    return users.join(campaigns, "campaign_id").select(
        F.col("campaign_id").alias("name"), "user_id", "group", "window_start", "window_end"
    )


def _results(kind: str, groups: DataFrame, lake: Lake, costs: dict[str, float | None], run_ids: dict[str, str]):
    orders = purchases(lake).select("user_id", "order_date", "value")
    last_order = orders.agg(F.max("order_date")).first()[0]
    windows = {r["name"]: (r["window_start"], r["window_end"]) for r in
               groups.select("name", "window_start", "window_end").distinct().collect()}  # fmt: skip
    sums = group_sums(groups, orders)
    rows = []
    for name, (start, end) in sorted(windows.items()):
        got = sums.get(name, {})
        figures = uplift(got.get("treatment", EMPTY), got.get("holdout", EMPTY), costs.get(name))
        complete = last_order is not None and last_order >= end
        row = {"kind": kind, "name": name, "run_id": run_ids.get(name, ""), "window_start": start, "window_end": end}
        rows.append(row | {"complete": complete, **figures})
    return rows


DEFAULT_WINDOW_DAYS = 7  # days measured from a campaign's send day


def measure_campaigns(lake: Lake, window_days: int = DEFAULT_WINDOW_DAYS, campaign_id: str | None = None) -> list[dict]:
    """Uplift of every campaign with a holdout in silver.campaign_touches (or of one) over window_days from its
    send day.

    Raises:
        AudiencelakeError: `campaign_id` has no touches in both groups.
    """
    rows = _results("campaign", campaign_groups(lake, window_days, campaign_id), lake, {}, {})
    if campaign_id is not None and not rows:
        raise AudiencelakeError(f"silver.campaign_touches has no campaign '{campaign_id}' with treatment and holdout")
    return rows


def measure_audience(lake: Lake, audience: str, run_id: str) -> dict:
    """Uplift of an audience run over its measure_days after the run date (the send is the day after).

    Raises:
        AudiencelakeError: the run did not build that audience.
    """
    runs = lake.ref("ops", "audience_runs")
    record = None
    if lake.exists(runs):
        record = lake.read(runs).where((F.col("run_id") == run_id) & (F.col("audience") == audience)).first()
    if record is None:
        raise AudiencelakeError(f"ops.audience_runs has no audience '{audience}' in run '{run_id}'")
    spec = json.loads(record["definition"])["audience"]
    start = record["as_of"] + timedelta(days=1)
    end = record["as_of"] + timedelta(days=int(spec["measure_days"]))
    members = lake.read(lake.ref("gold", "audience_members"))
    groups = members.where((F.col("audience") == audience) & (F.col("run_id") == run_id)).select(
        F.lit(audience).alias("name"), "user_id", "group", F.lit(start).alias("window_start"),
        F.lit(end).alias("window_end"),
    )  # fmt: skip
    [row] = _results("audience", groups, lake, {audience: spec.get("cost_per_contact")}, {audience: run_id})
    return row


def write_results(lake: Lake, rows: list[dict]) -> int:
    """Upsert result rows into gold.campaign_results (one row per kind, name and run id)."""
    ref = lake.ref("gold", "campaign_results")
    lake.ensure(ref)
    if not rows:
        return 0
    schema = lake.read(ref).schema
    df = lake.spark.createDataFrame([tuple(r.get(f.name) for f in schema.fields) for r in rows], schema)
    lake.merge_upsert(check_schema(df, "campaign_results"), ref, ["kind", "name", "run_id"])
    return len(rows)


def measure_all(lake: Lake, window_days: int = DEFAULT_WINDOW_DAYS) -> list[dict]:
    """Every campaign of silver.campaign_touches with a holdout, and every audience run whose window has ended."""
    rows = []
    if lake.exists(lake.ref("silver", "campaign_touches")):
        rows += measure_campaigns(lake, window_days)
    runs_ref = lake.ref("ops", "audience_runs")
    if lake.exists(runs_ref):
        last_order = purchases(lake).agg(F.max("order_date")).first()[0]
        for r in lake.read(runs_ref).orderBy("seq", "audience").collect():  # one row per audience run
            end = r["as_of"] + timedelta(days=int(json.loads(r["definition"])["audience"]["measure_days"]))
            if last_order is not None and last_order >= end:
                rows.append(measure_audience(lake, r["audience"], r["run_id"]))
    return rows


def measure_stage(lake: Lake, run: Run) -> dict:
    """The `measure` stage: `measure_all` into gold.campaign_results, unless the tables it reads and writes are as
    its last run left them (the results would be the same rows)."""
    inputs = {"tables": {f"{layer}.{name}": lake.version(lake.ref(layer, name)) for layer, name in READS},
              "library": library_version()}  # fmt: skip

    def build() -> dict:
        rows = measure_all(lake)
        write_results(lake, rows)
        return {"results": len(rows), "significant": sum(bool(r["significant"]) for r in rows)}

    counts = kept_or_built(lake, STAGE, "all", inputs, lake.ref("gold", "campaign_results"), build, run)
    if "kept" in counts:
        log.info("measure: orders, touches and audience runs as its last run read them; results kept")
    return counts
