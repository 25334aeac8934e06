"""Building audiences: consent, suppression and the frequency cap first, then the rule, `top`, and the stable
holdout. Pure functions of an audience's definition and its inputs (pinned Delta versions): the same run rebuilt
from the versions it recorded gives the same members."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.audiences import holdout
from audiencelake.audiences.definitions import Audience, Definitions, audiences_of, fields_of
from audiencelake.audiences.fields import SCORE_FIELDS, Inputs, audience_base, unavailable
from audiencelake.audiences.rules import membership_column, steps, to_column

# a channel can be used for a person who consented to it and, for email and SMS, has an address on record
REACHABLE = {"email": "_email_hash", "sms": "_phone_hash", "push": None, "ads": None}
TOUCHES = ("send", "impression")  # what counts against a frequency cap
MEMBER_COLUMNS = ("audience", "version", "run_id", "as_of", "user_id", "group", "send_hour", "reasons")

log = logging.getLogger("audiencelake.audiences")


@dataclass
class Built:
    """One audience of a run: its members (gold.audience_members rows), funnel and group sizes."""

    audience: Audience
    version: str
    rule: str
    members: DataFrame
    funnel: list[tuple[str, int]]
    treatment: int
    holdout: int


def needed(definitions: Definitions, names: list[str] | None) -> list[str]:
    """`names` (all when None) with the audiences they refer to, in dependency order."""
    if names is None:
        return list(definitions.audiences)
    wanted: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name not in wanted:
            wanted.add(name)
            stack += audiences_of(definitions.rules[name])
    return [n for n in definitions.audiences if n in wanted]


def suppressed_users(base: DataFrame, suppression: DataFrame | None) -> DataFrame:
    """user_id of everyone on the suppression list, by user id or by the email or phone hash of any of their CRM
    records (`_email_hashes`, `_phone_hashes`)."""
    if suppression is None:
        return base.sparkSession.createDataFrame([], "user_id string")
    by_id = suppression.where("id_type = 'user_id'").select(F.col("id_value").alias("user_id"))
    by_hash = [
        base.select("user_id", F.explode(f"_{kind}es").alias("_hash"))
        .join(suppression.where(f"id_type = '{kind}'"), F.col("_hash") == F.col("id_value"))
        .select("user_id")
        for kind in ("email_hash", "phone_hash")
    ]
    return by_id.unionByName(by_hash[0]).unionByName(by_hash[1]).distinct()


def capped_users(touches: DataFrame | None, audience: Audience, as_of: date) -> DataFrame | None:
    """user_id of people with max_touches or more sends/impressions on the channel in the cap's last days."""
    cap = audience.frequency_cap
    if cap is None or touches is None:
        return None
    start = as_of - timedelta(days=cap.days - 1)
    return (
        touches.where(F.col("channel") == audience.channel)
        .where(F.col("touch_type").isin(*TOUCHES) & (F.col("group") == "treatment"))
        .where(F.col("touch_date").between(F.lit(start), F.lit(as_of)))
        .groupBy("user_id")
        .count()
        .where(F.col("count") >= cap.max_touches)
        .select("user_id")
    )


def _flag(df: DataFrame, users: DataFrame | None, name: str) -> DataFrame:
    if users is None:
        return df.withColumn(name, F.lit(False))
    return df.join(users.withColumn(name, F.lit(True)), "user_id", "left").fillna({name: False})


def _funnel_counts(df: DataFrame, flags: list[tuple[str, str]]) -> list[tuple[str, int]]:
    """Users remaining after each step (flags applied cumulatively), in one aggregation."""
    cumulative, aggs = F.lit(True), [F.count("*")]
    for _, column in flags:
        cumulative = cumulative & F.col(column)
        aggs.append(F.sum(cumulative.cast("long")))
    row = df.agg(*aggs).first()
    return [("profiled users", int(row[0]))] + [(label, int(row[i + 1] or 0)) for i, (label, _) in enumerate(flags)]


def build_one(
    definitions: Definitions,
    name: str,
    base: DataFrame,
    inputs: Inputs,
    run_id: str,
    as_of: date,
) -> Built:
    """Members of one audience from `base` (which carries the membership columns of the audiences it refers to)."""
    audience, rule = definitions.audiences[name], definitions.rules[name]
    # a CRM record's consent holds either way; without one, only an opt-out basis lets the channel be used
    reach = F.coalesce(F.col(f"_consent_{audience.channel}"), F.lit(audience.consent == "opt_out"))
    if REACHABLE[audience.channel]:
        reach = reach & F.col(REACHABLE[audience.channel]).isNotNull()
    df = base.withColumn("_s_consent", reach)
    df = _flag(df, suppressed_users(base, inputs.read("ops.suppression")), "_suppressed")
    df = _flag(df, capped_users(inputs.read("silver.campaign_touches"), audience, as_of), "_capped")
    df = df.withColumn("_s_suppression", ~F.col("_suppressed")).withColumn("_s_cap", ~F.col("_capped"))
    flags = [(f"consent to {audience.channel}", "_s_consent"), ("not suppressed", "_s_suppression")]
    if audience.frequency_cap:
        cap = audience.frequency_cap
        flags.append((f"under {cap.max_touches} {audience.channel} touches in {cap.days} days", "_s_cap"))
    for i, (label, part) in enumerate(steps(rule)):
        df = df.withColumn(f"_s_rule{i}", to_column(part))
        flags.append((label, f"_s_rule{i}"))
    df = df.cache()
    funnel = _funnel_counts(df, flags)
    selected = df
    for _, column in flags:
        selected = selected.where(F.col(column))
    if audience.top is not None:
        top = audience.top
        scored = selected.where(F.col(f"`{top.by}`").isNotNull())
        n = top.n if top.n is not None else math.ceil(Fraction(str(top.pct)) * funnel[-1][1] / 100)
        selected = scored.orderBy(F.col(f"`{top.by}`").desc(), "user_id").limit(n)
        label = f"top {top.n} by {top.by}" if top.n is not None else f"top {top.pct:g}% by {top.by}"
        funnel.append((label, selected.count()))
    reasons = definitions.reasons(name)
    members = selected.select(
        F.lit(name).alias("audience"),
        F.lit(definitions.version(name)).alias("version"),
        F.lit(run_id).alias("run_id"),
        F.lit(as_of).alias("as_of"),
        "user_id",
        holdout.group(F.col("user_id"), audience.salt, audience.holdout_pct).alias("group"),
        (F.col("preferred_hour") if audience.send_time else F.lit(None)).cast("int").alias("send_hour"),
        F.to_json(F.struct(*[F.col(f"`{r}`") for r in reasons])).alias("reasons"),
    ).cache()
    groups = dict(members.groupBy("group").count().collect())
    df.unpersist()
    sizes = int(groups.get("treatment", 0)), int(groups.get("holdout", 0))
    return Built(audience, definitions.version(name), rule.text(), members, funnel, *sizes)


def unreachable(audience: Audience, has_crm: bool) -> str | None:
    """Why no one can be reached on the audience's channel in a lake without a CRM (`has_crm` false), else None."""
    if has_crm:
        return None
    if audience.consent == "recorded":
        return (f"consent to {audience.channel} is recorded in silver.crm_profiles, which this lake lacks (a CRM "
                f"customer export with consent would provide it; a channel whose legal basis is opt-out can be "
                f"listed in opt_out_channels of conf/audiences.yaml)")  # fmt: skip
    if REACHABLE[audience.channel]:
        return f"{audience.channel} needs an address from silver.crm_profiles, which this lake lacks"
    return None


def skipped_audiences(
    definitions: Definitions, order: list[str], missing: dict[str, str], has_crm: bool = True
) -> dict[str, str]:
    """The audiences of `order` that cannot be built, and why: no one can be reached on their channel
    (`unreachable`), a field they use is unavailable (`missing`), or they refer to an audience that cannot be
    built."""
    skipped: dict[str, str] = {}
    for name in order:
        if why := unreachable(definitions.audiences[name], has_crm):
            skipped[name] = why
        elif gone := [f for f in _fields_used(definitions, name) if f in missing]:
            skipped[name] = missing[gone[0]]
        elif refers := [a for a in audiences_of(definitions.rules[name]) if a in skipped]:
            skipped[name] = f"refers to audience {refers[0]}, which is skipped ({skipped[refers[0]]})"
    return skipped


def build_audiences(
    definitions: Definitions, inputs: Inputs, run_id: str, as_of: date, names: list[str] | None = None
) -> tuple[list[Built], dict[str, str]]:
    """Build `names` (all when None) and the audiences they refer to, in dependency order; returns them with the
    audiences skipped because a tag or model score they use is unavailable (`skipped_audiences`), and why."""
    order = needed(definitions, names)
    used = {f for n in order for f in _fields_used(definitions, n)}
    has_crm = inputs.versions.get("silver.crm_profiles") is not None
    skipped = skipped_audiences(definitions, order, unavailable(inputs, as_of, used), has_crm)
    for name, why in skipped.items():
        log.warning("audience %s: skipped: %s", name, why)
    order = [n for n in order if n not in skipped]
    fields = sorted({f for n in order for f in _fields_used(definitions, n) if f in SCORE_FIELDS})
    base = audience_base(inputs, as_of, fields).cache()
    built: list[Built] = []
    for name in order:
        result = build_one(definitions, name, base, inputs, run_id, as_of)
        built.append(result)
        if any(name in audiences_of(definitions.rules[later]) for later in order):
            flagged = _flag(base, result.members.select("user_id"), membership_column(name)).cache()
            base.unpersist()
            base = flagged
    base.unpersist()
    return built, skipped


def _fields_used(definitions: Definitions, name: str) -> list[str]:
    audience = definitions.audiences[name]
    top = [audience.top.by] if audience.top else []
    return [*fields_of(definitions.rules[name]), *definitions.reasons(name), *audience.export_fields, *top]
