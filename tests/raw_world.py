"""An independent reading of a generated world's raw landing files, in plain Python (no Spark, no audiencelake
code), and the tags of conf/tags.yaml computed from it for chosen users: the expected values of the profile tests.

Records are kept the way the contracts say silver keeps them: rows that do not parse or break a required rule are
dropped, duplicates of a key count once, and the CRM profile is each customer's latest valid version.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np

SHANGHAI = timezone(timedelta(hours=8))
QUINTILES = (0.2, 0.4, 0.6, 0.8)
CATEGORIES = ["apparel", "beauty", "electronics", "home", "sports", "books", "grocery", "toys"]


def _utc(text: str) -> datetime | None:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)


def _json_lines(folder: Path):
    for path in sorted(folder.glob("*.jsonl*")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as fh:
            for line in fh:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue


def _customer_events(folder: Path, key: str, time: str, required: str) -> list[dict]:
    """JSON-lines records with a parseable time and the required field, each key once, credited to customer_id."""
    out, seen = [], set()
    for r in _json_lines(folder):
        ts = _utc(r.get(time))
        if ts is None or not r.get(required) or r.get(key) in seen:
            continue
        seen.add(r[key])
        out.append({**r, "ts": ts, "user": r["customer_id"]})
    return out


@dataclass
class RawWorld:
    orders: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    touches: list[dict] = field(default_factory=list)
    social: list[dict] = field(default_factory=list)
    crm: dict[str, dict] = field(default_factory=dict)
    anon_user: dict[str, str] = field(default_factory=dict)
    person: dict[str, str] = field(default_factory=dict)  # CRM customer id -> planted person (truth/persons.csv)
    visit_channel: dict[str, str] = field(default_factory=dict)  # a visit's first event_id -> its planted channel


def read_orders(landing: Path) -> list[dict]:
    """Order lines that parse and pass the contract's rules, each (order, line, type) once."""
    out: list[dict] = []
    seen: set = set()
    for path in sorted((landing / "orders").glob("*.csv")):
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                if None in row or not row["customer"]:
                    continue
                try:
                    price, qty, discount = float(row["price"]), int(row["qty"]), float(row["discount"])
                except (TypeError, ValueError):
                    continue
                if price < 0 or discount < 0:
                    continue
                key = (row["order_no"], row["line"], row["type"])
                if key in seen:
                    continue
                seen.add(key)
                local = datetime.strptime(row["created_at"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
                sign = -1 if row["type"] == "refund" else 1
                out.append({
                    "order_id": row["order_no"], "type": row["type"], "user": row["customer"],
                    "ts": local.astimezone(UTC), "item": row["sku"], "category": row["category"], "qty": qty,
                    "price": price, "discount": discount, "channel": row["channel"],
                    "amount": round((qty * price - discount) * sign, 2),
                })  # fmt: skip
    return out


def read_touches(landing: Path) -> list[dict]:
    return _customer_events(landing / "campaign_touches", "touch_id", "touch_ts", "campaign_id")


def read_world(landing: Path, truth: Path) -> RawWorld:
    w = RawWorld(orders=read_orders(landing))
    with open(truth / "persons.csv", newline="") as fh:
        w.person = {r["customer_id"]: r["person_id"] for r in csv.DictReader(fh)}
    for anon in csv.DictReader(open(truth / "identities.csv", newline="")):
        if anon["customer_id"]:
            w.anon_user[anon["anonymous_id"]] = anon["customer_id"]
    with open(truth / "visits.csv", newline="") as fh:
        w.visit_channel = {r["event_id"]: r["channel"] for r in csv.DictReader(fh)}
    seen = set()
    for r in _json_lines(landing / "clickstream"):
        ts = _utc(r.get("ts"))
        if ts is None or not r.get("anon_id") or not r.get("event_id") or r["event_id"] in seen:
            continue
        seen.add(r["event_id"])
        w.events.append({**r, "ts": ts, "user": w.anon_user.get(r["anon_id"])})
    w.touches = read_touches(landing)
    w.social = _customer_events(landing / "social", "interaction_id", "interaction_ts", "customer_id")
    versions: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for path in sorted((landing / "crm").glob("*.csv")):
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                if row["customer_id"] and row["birth_date"] < "2090":
                    versions[(row["customer_id"], row["updated_at"])].append(row)
    for (customer, _), rows in sorted(versions.items(), key=lambda kv: (kv[0][0], _utc(kv[0][1]))):
        distinct = {json.dumps(r, sort_keys=True) for r in rows}
        if len(distinct) == 1:  # same key and time with other content is a conflict: silver keeps neither
            w.crm[customer] = rows[0]
    return w


def rfm_segment(r: int | None, f: int | None, ever_bought: bool) -> str:
    """The named RFM segments of conf/tags.yaml, written out as plain rules."""
    if r is None:
        return "lost" if ever_bought else "no_purchase"
    if r >= 4 and f >= 4:
        return "champions"
    if r == 1 and f >= 4:
        return "cannot_lose"
    if r <= 2 and f >= 3:
        return "at_risk"
    if r == 3 and f >= 3:
        return "loyal"
    if r == 5 and f == 1:
        return "new_customers"
    if r >= 4:
        return "potential_loyalist"
    return {3: "about_to_sleep", 2: "hibernating", 1: "lost"}[r]


def _mode(values: list) -> object | None:
    """Most frequent value; ties go to the smallest (Spark's deterministic mode)."""
    if not values:
        return None
    counts = Counter(values)
    top = max(counts.values())
    return min(v for v, n in counts.items() if n == top)


def _sessions(events: list[dict]) -> list[dict]:
    """Events that start a session: a visitor's first event, or one more than 30 minutes after the previous."""
    by_anon: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        by_anon[e["anon_id"]].append(e)
    starts = []
    for rows in by_anon.values():
        rows.sort(key=lambda e: (e["ts"], e["event_id"]))
        for prev, e in zip([None, *rows], rows, strict=False):
            if prev is None or e["ts"] > prev["ts"] + timedelta(minutes=30):
                starts.append(e)
    return starts


class ExpectedTags:
    """The default catalogue's tags, computed from the raw world as of a date."""

    def __init__(self, world: RawWorld, as_of: date) -> None:
        self.as_of, self.person = as_of, world.person
        self.end = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC) + timedelta(days=1)
        self.orders = self._group(world.orders)
        self.touches = self._group(world.touches)
        self.social = self._group(world.social)
        visible = [e for e in world.events if e["ts"] < self.end and e["user"]]
        self.events = self._group(visible)
        self.session_starts = self._group(_sessions(visible))
        self.visit_channel = world.visit_channel
        # a person's CRM attributes come from their latest record signed up by the as-of date
        self.crm: dict[str, dict] = {}
        for customer, row in world.crm.items():
            person = self.person.get(customer, customer)
            known = self.crm.get(person)
            if row["signup_date"] <= as_of.isoformat() and (
                known is None or _utc(row["updated_at"]) > _utc(known["updated_at"])
            ):
                self.crm[person] = row
        self.item_lines: dict[str, list[dict]] = defaultdict(list)
        for o in world.orders:
            if o["ts"] < self.end:
                self.item_lines[o["item"]].append(o)

    def price_drop(self, line: dict) -> bool:
        """Listed at least 10% under the item's highest price over the 90 days up to the line."""
        since = line["ts"] - timedelta(days=90)
        top = max(o["price"] for o in self.item_lines[line["item"]] if since <= o["ts"] <= line["ts"])
        return line["price"] < 0.9 * top

    def _group(self, rows: list[dict]) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = defaultdict(list)
        for r in rows:
            if r["ts"] < self.end and r["user"]:
                out[self.person.get(r["user"], r["user"])].append(r)
        return out

    def within(self, rows: list[dict], days: int | None) -> list[dict]:
        return [r for r in rows if days is None or r["ts"] >= self.end - timedelta(days=days)]

    def age_days(self, r: dict) -> float:
        return (self.end - r["ts"]).total_seconds() / 86400.0

    def users(self) -> set[str]:
        return set(self.crm) | set(self.orders) | set(self.events) | set(self.touches) | set(self.social)

    def tags(self, user: str) -> dict[str, object]:
        """Every tag of the default catalogue for `user`."""
        if not hasattr(self, "_cuts"):
            base = [self.base_tags(u) for u in self.users()]
            buyers = [t for t in base if t["orders_365d"] > 0]
            self._cuts = {
                name: [float(np.quantile([t[name] for t in buyers], p, method="inverted_cdf")) for p in QUINTILES]
                for name in ("recency_days", "orders_365d", "spend_365d")
            }
        t = self.base_tags(user)
        buyer = t["orders_365d"] > 0
        for score, of, higher in (("rfm_recency_score", "recency_days", False),
                                  ("rfm_frequency_score", "orders_365d", True),
                                  ("rfm_monetary_score", "spend_365d", True)):  # fmt: skip
            cuts, v = self._cuts[of], t[of]
            t[score] = 1 + sum((v > c) if higher else (v < c) for c in cuts) if buyer else None
        t["rfm_segment"] = rfm_segment(t["rfm_recency_score"], t["rfm_frequency_score"], t["is_buyer"])
        t["high_value_price_insensitive"] = bool(
            buyer and t["rfm_monetary_score"] >= 4 and t["discount_order_share_365d"] < 0.2
        )
        return t

    def base_tags(self, user: str) -> dict[str, object]:
        """The tags that do not depend on the rest of the population."""
        t: dict[str, object] = {}
        orders, events = self.orders.get(user, []), self.events.get(user, [])
        touches, social = self.touches.get(user, []), self.social.get(user, [])
        purchases = [o for o in orders if o["type"] == "purchase"]
        crm = self.crm.get(user)
        if crm:
            birth, signup = date.fromisoformat(crm["birth_date"]), date.fromisoformat(crm["signup_date"])
            t["gender"], t["city"] = crm["gender"], crm["city"]
            t["age"] = self.as_of.year - birth.year - ((self.as_of.month, self.as_of.day) < (birth.month, birth.day))
            t["tenure_days"] = (self.as_of - signup).days
            for channel in ("email", "sms", "push", "ads"):
                t[f"consent_{channel}"] = crm[f"consent_{channel}"] == "true"
            bands = ((25, "18-24"), (35, "25-34"), (45, "35-44"), (55, "45-54"), (999, "55+"))
            t["age_band"] = next(band for limit, band in bands if t["age"] < limit)
            tiers = {"Shanghai": 1, "Beijing": 1, "Shenzhen": 1, "Guangzhou": 1, "Hangzhou": 2, "Chengdu": 2,
                     "Wuhan": 2, "Nanjing": 2, "Xiamen": 3, "Kunming": 3, "Zhuhai": 3}  # fmt: skip
            t["city_tier"] = tiers.get(crm["city"], 4)
            t["has_email"] = bool(crm["email"])
        for days in (30, 90, 365):
            t[f"orders_{days}d"] = len({o["order_id"] for o in self.within(purchases, days)})
        t["spend_90d"] = round(sum(o["amount"] for o in self.within(orders, 90)), 2)
        t["spend_365d"] = round(sum(o["amount"] for o in self.within(orders, 365)), 2)
        t["lifetime_spend"] = round(sum(o["amount"] for o in orders), 2)
        t["items_bought_365d"] = sum(o["qty"] for o in self.within(purchases, 365))
        dates = [o["ts"].date() for o in purchases]
        t["last_order_date"] = max(dates) if dates else None
        t["first_order_date"] = min(dates) if dates else None
        t["recency_days"] = (self.as_of - t["last_order_date"]).days if dates else None
        refunds = [o for o in self.within(orders, 365) if o["type"] == "refund"]
        bought = self.within(purchases, 365)
        t["refund_rate_365d"] = len(refunds) / len(bought) if bought else None
        discounted = {o["order_id"] for o in bought if o["discount"] > 0}
        t["discounted_orders_365d"] = len(discounted)
        t["discount_order_share_365d"] = len(discounted) / t["orders_365d"] if t["orders_365d"] else None
        depths = [o["discount"] / (o["qty"] * o["price"]) for o in bought if o["discount"] > 0]
        t["avg_discount_depth_365d"] = sum(depths) / len(depths) if depths else None
        drops = [self.price_drop(o) for o in bought]
        t["price_drop_purchase_share_365d"] = sum(drops) / len(drops) if drops else None
        t["preferred_shop_channel"] = _mode([o["channel"] for o in bought])
        starts = self.session_starts.get(user, [])
        t["sessions_30d"] = len(self.within(starts, 30))
        t["sessions_90d"] = len(self.within(starts, 90))
        for name, kind in (("product_views_30d", "product_view"), ("cart_adds_30d", "add_to_cart"),
                           ("searches_30d", "search")):  # fmt: skip
            t[name] = sum(1 for e in self.within(events, 30) if e["event_type"] == kind)
        views = sum(1 for e in self.within(events, 90) if e["event_type"] == "product_view")
        carts = sum(1 for e in self.within(events, 90) if e["event_type"] == "add_to_cart")
        t["cart_rate_90d"] = carts / views if views else None
        t["last_seen_date"] = max((e["ts"].date() for e in events), default=None)
        # a session's channel: the one planted on its first event; events planted for identity tests carry no
        # source, which is a direct visit
        channel = {id(e): self.visit_channel.get(e["event_id"], "direct") for e in starts}
        by_time = sorted(starts, key=lambda e: (e["ts"], channel[id(e)]))
        t["first_touch_channel"] = channel[id(by_time[0])] if by_time else None
        t["last_touch_channel"] = max((e["ts"], channel[id(e)]) for e in starts)[1] if starts else None
        mix = Counter(channel[id(e)] for e in self.within(starts, 90))
        t["channel_mix_90d"] = [c for c, _ in sorted(mix.items(), key=lambda kv: (-kv[1], kv[0]))][:3]
        local = [e["ts"].astimezone(SHANGHAI) for e in self.within(starts, 90)]
        t["preferred_hour"] = _mode([x.hour for x in local])
        t["preferred_day_of_week"] = _mode([x.strftime("%A") for x in local])
        t["preferred_device"] = _mode([e["platform"] for e in self.within(events, 90)])
        recent = self.within(events, 90)
        views90 = [e for e in recent if e["event_type"] == "product_view"]
        for c in CATEGORIES:
            t[f"interest_{c}_90d"] = sum(e.get("category") == c for e in views90) / len(views90) if views90 else None
        t["app_share_90d"] = sum(e["platform"] == "app" for e in recent) / len(recent) if recent else None
        email90 = [x for x in self.within(touches, 90) if x["channel"] == "email"]
        sends = sum(1 for x in email90 if x["touch_type"] == "send")
        t["email_sends_90d"] = sends
        t["email_open_rate_90d"] = sum(1 for x in email90 if x["touch_type"] == "open") / sends if sends else None
        t["campaign_clicks_90d"] = sum(1 for x in self.within(touches, 90) if x["touch_type"] in ("click", "ad_click"))
        engaged = [x for x in touches if x["touch_type"] in ("open", "click", "ad_click")]
        t["last_engaged_date"] = max((x["ts"].date() for x in engaged), default=None)
        t["preferred_contact_channel"] = _mode([x["channel"] for x in self.within(engaged, 365)])
        t["social_actions_90d"] = len(self.within(social, 90))
        t["social_platform"] = max(social, key=lambda x: x["ts"])["platform"] if social else None
        t["top_categories_3"] = self.top_categories(events, purchases)
        t["top_category"] = t["top_categories_3"][0] if t["top_categories_3"] else None
        last = [d for d in (t["last_order_date"], t["last_seen_date"], t["last_engaged_date"]) if d]
        t["days_since_last_activity"] = (self.as_of - max(last)).days if last else None
        t["avg_order_value_365d"] = t["spend_365d"] / t["orders_365d"] if t["orders_365d"] else None
        share, drops = t["discount_order_share_365d"], t["price_drop_purchase_share_365d"]
        t["price_sensitivity"] = (
            None if share is None else "high" if share >= 0.5 or drops >= 0.5 else "medium" if share >= 0.2 else "low"
        )
        t["is_buyer"] = bool(dates)
        t["cart_abandoner_30d"] = t["cart_adds_30d"] > 0 and t["orders_30d"] == 0
        t["email_reachable"] = bool(t.get("consent_email") and t.get("has_email"))
        t["engagement_score"] = round(min(100.0, 12 * math.log1p(t["sessions_30d"]) + 10 * math.log1p(t["orders_90d"])
                                          + 8 * math.log1p(t["campaign_clicks_90d"])
                                          + 20 * (t["email_open_rate_90d"] or 0)
                                          + 5 * math.log1p(t["social_actions_90d"])), 1)  # fmt: skip
        score = t["engagement_score"]
        t["engagement_level"] = "high" if score >= 40 else "medium" if score >= 15 else "low" if score > 0 else "none"
        t["lifecycle_stage"] = self.lifecycle(t)
        return t

    @staticmethod
    def lifecycle(t: dict) -> str:
        silent, tenure = t["days_since_last_activity"], t.get("tenure_days")
        quiet = silent if silent is not None else tenure
        if quiet is not None and quiet > 365 and t["lifetime_spend"] < 20:
            return "invalid"
        if tenure is not None and tenure <= 30:
            return "new"
        if silent is not None and silent <= 30:
            return "active"
        if silent is not None and silent <= 90:
            return "dormant"
        return "churned"

    def top_categories(self, events: list[dict], purchases: list[dict]) -> list[str]:
        weight: dict[str, float] = defaultdict(float)
        for e in events:
            if e["event_type"] in ("product_view", "add_to_cart") and e.get("category") in CATEGORIES:
                w = 2 if e["event_type"] == "add_to_cart" else 1
                weight[e["category"]] += w * 0.5 ** (self.age_days(e) / 60)
        for o in purchases:
            if o["category"] in CATEGORIES:
                weight[o["category"]] += 3 * 0.5 ** (self.age_days(o) / 60)
        ranked = sorted((c for c in weight if weight[c] > 0), key=lambda c: (-weight[c], c))
        return ranked[:3]
