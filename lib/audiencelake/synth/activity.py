"""Turn a person into source records: clickstream, orders, campaign touches, social interactions.

Every record carries `_day` (day index of its event) so the writer can place it in the file of its week.
Times are UTC `datetime`s here; the writer formats them the way each source system would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

from audiencelake.synth.catalog import (
    CATEGORIES,
    PRICE_DROP_FACTOR,
    PRICE_DROP_SHARE,
    SOCIAL_PLATFORMS,
    Catalogue,
    on_price_drop,
)
from audiencelake.synth.people import Person


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    day: int
    channel: str
    treat_share: float = 0.4  # share of eligible people targeted
    holdout_share: float = 0.1  # share of targeted people kept out as holdout
    effect: float = 1.0  # scales each person's campaign_effect: 0 plants a campaign that changes nothing


def _moment(start_date: date, day: int, hour: float) -> datetime:
    base = datetime(start_date.year, start_date.month, start_date.day)
    return base + timedelta(days=day, seconds=int(hour * 3600) % 86400)


def _hour(rng: np.random.Generator, preferred: int) -> float:
    return float((preferred + rng.normal(0, 2.5)) % 24)


def _item(rng: np.random.Generator, person: Person, catalogue: Catalogue) -> int:
    category = int(rng.choice(len(CATEGORIES), p=person.affinity))
    pool = catalogue.items_by_category[category]
    return int(pool[int(rng.integers(len(pool)))])


def _order_item(rng: np.random.Generator, person: Person, catalogue: Catalogue, day: int) -> int:
    """An item to buy: price-sensitive people pick, as often as their discount affinity, an item of the chosen
    category whose price is cut this week (the planted response to price drops)."""
    category = int(rng.choice(len(CATEGORIES), p=person.affinity))
    pool = catalogue.items_by_category[category]
    if rng.random() < person.discount_affinity:
        dropped = pool[on_price_drop(pool, day // 7, catalogue.seed)]
        if len(dropped):
            pool = dropped
    return int(pool[int(rng.integers(len(pool)))])


def clickstream(rng: np.random.Generator, person: Person, catalogue: Catalogue, start_date: date) -> list[dict]:
    """Sessions of page views, searches, product views and add-to-carts; logins link the visitor to a customer.

    The first session on each device starts with a login, so every device is linked to its customer; a cookie set
    after a reset may never log in and is linked only through the device.
    """
    active = person.last_day - person.first_day + 1
    sessions = sorted(
        int(d) for d in rng.integers(person.first_day, person.last_day + 1, rng.poisson(person.session_rate * active))
    )
    events: list[dict] = []
    seen_devices: set[str] = set()
    for day in sessions:
        starts = len(events)
        device = person.devices[int(rng.integers(len(person.devices)))]
        anon = device.anonymous_ids[-1] if day >= device.switch_day else device.anonymous_ids[0]
        t = _moment(start_date, day, _hour(rng, person.preferred_hour))
        base = {"anon_id": anon, "device_id": device.device_id, "platform": device.platform, "_day": day}

        def emit(kind: str, t: datetime = t, base: dict = base, **extra: object) -> None:
            events.append({**base, "event_type": kind, "ts": t, **extra})

        first_on_device = device.device_id not in seen_devices
        seen_devices.add(device.device_id)
        if person.customer_id and (first_on_device or rng.random() < 0.3):
            emit("login", login_customer_id=person.customer_id)
        for _ in range(int(rng.integers(1, 4))):
            t += timedelta(seconds=int(rng.integers(5, 90)))
            emit("page_view", t=t, page_url=f"/{('home', 'deals', 'new', 'cart')[int(rng.integers(4))]}")
        if rng.random() < 0.3:
            t += timedelta(seconds=int(rng.integers(5, 60)))
            emit("search", t=t, search_query=CATEGORIES[int(rng.choice(len(CATEGORIES), p=person.affinity))])
        for _ in range(int(rng.integers(1, 6))):
            item = _item(rng, person, catalogue)
            t += timedelta(seconds=int(rng.integers(5, 120)))
            ids = {"item_id": str(catalogue.item_ids[item]), "category": CATEGORIES[catalogue.item_category[item]]}
            emit("product_view", t=t, page_url=f"/p/{ids['item_id']}", **ids)
            if rng.random() < 0.15:
                emit("add_to_cart", t=t + timedelta(seconds=3), **ids)
        events[starts]["_visit"] = True  # the session's first event: it carries where the visit came from
    return events


# where visits come from (conf/channels.yaml names), with each channel's share of all visits; a person's own mix is
# drawn around these shares
TRAFFIC_SHARES = {"direct": 0.30, "organic_search": 0.18, "paid_search": 0.12, "social": 0.10, "email": 0.08,
                  "display": 0.06, "affiliate": 0.05, "sms_push": 0.04, "other": 0.07}  # fmt: skip


def _traffic_fields(rng: np.random.Generator, channel: str) -> dict[str, str]:
    """UTM parameters and referrer of a visit from `channel`, written the many ways trackers and marketers do."""
    pick = lambda *options: options[int(rng.integers(len(options)))]  # noqa: E731
    if channel == "organic_search":
        return {"referrer": pick("https://www.google.com/", "https://www.baidu.com/s?wd=shop", "https://www.bing.com/")}
    if channel == "paid_search":
        return {
            "utm_source": pick("google", "baidu"),
            "utm_medium": pick("cpc", "CPC", "ppc"),
            "utm_campaign": pick("brand_search", "generic_search"),
            "referrer": "https://www.google.com/",
        }
    if channel == "social":
        if rng.random() < 0.5:
            return {"referrer": pick("https://weibo.com/u/7788", "https://m.facebook.com/", "https://t.co/x1")}
        return {
            "utm_source": pick("wechat", "weibo", "instagram"),
            "utm_medium": "social",
            "utm_campaign": "spring_social",
        }
    if channel == "email":
        return {"utm_source": "newsletter", "utm_medium": pick("email", "Email"), "utm_campaign": "weekly_digest"}
    if channel == "display":
        return {"utm_source": "dsp_one", "utm_medium": pick("display", "banner"), "utm_campaign": "retargeting"}
    if channel == "affiliate":
        return {
            "utm_source": pick("cashback_club", "deal_finder"),
            "utm_medium": "affiliate",
            "referrer": "https://deals.partner.example/offer",
        }
    if channel == "sms_push":
        return {"utm_source": "crm", "utm_medium": pick("sms", "push")}
    if channel == "other":
        return {"referrer": pick("https://blog.example.org/review", "https://forum.example.net/t/42")}
    return {}  # direct: typed or bookmarked


def traffic(rng: np.random.Generator, events: list[dict]) -> None:
    """Set where each visit came from on its first event (`_visit`: its UTM fields and referrer, and the planted
    `_channel`), from a mix of channels drawn for the person around TRAFFIC_SHARES. A separate `rng`, so the rest of
    the world is the same with or without it."""
    names = list(TRAFFIC_SHARES)
    mix = rng.dirichlet([TRAFFIC_SHARES[n] * 8 for n in names])
    for event in events:
        if event.get("_visit"):
            channel = names[int(rng.choice(len(names), p=mix))]
            event.update(_traffic_fields(rng, channel), _channel=channel)


def _order(
    rng: np.random.Generator, person: Person, catalogue: Catalogue, start_date: date, day: int, seq: int, days: int
) -> list[dict]:
    t = _moment(start_date, day, _hour(rng, person.preferred_hour))
    lines = []
    channel = ("app", "web", "store")[int(rng.choice(3, p=[0.5, 0.35, 0.15]))]
    for line_no in range(1, int(rng.integers(1, 4)) + 1):
        item = _order_item(rng, person, catalogue, day)
        qty = int(rng.choice([1, 1, 1, 2, 3]))
        price = catalogue.price(item, day)
        discount = (
            round(price * qty * float(rng.uniform(0.1, 0.4)), 2) if rng.random() < person.discount_affinity else 0.0
        )
        line = {
            "order_no": f"O{person.index:07d}-{seq:04d}", "line": line_no, "type": "purchase",
            "customer": person.customer_id, "created_at": t, "sku": str(catalogue.item_ids[item]),
            "category": CATEGORIES[catalogue.item_category[item]], "qty": qty, "price": price,
            "discount": discount, "channel": channel, "_day": day,
        }  # fmt: skip
        lines.append(line)
        refund_day = day + int(rng.integers(2, 15))
        if rng.random() < 0.04 and refund_day < days:
            refund_t = t + timedelta(days=refund_day - day, hours=int(rng.integers(1, 12)))
            lines.append({**line, "type": "refund", "created_at": refund_t, "_day": refund_day})
    return lines


LINES_PER_ORDER = 2.0  # mean of integers(1, 4)
QUANTITY = 1.6  # mean of choice([1, 1, 1, 2, 3])
DISCOUNT_DEPTH = 0.25  # mean of uniform(0.1, 0.4)


def expected_order_value(person: Person, catalogue: Catalogue) -> float:
    """The planted mean net value of one of the person's orders, from the same draws `_order` makes: category by
    affinity, item uniform in it (price cut by PRICE_DROP_FACTOR when it is on a price drop: always sought with
    probability discount_affinity, else by chance), quantity and discount."""
    mean_price = sum(
        float(a) * float(catalogue.item_price[pool].mean())
        for a, pool in zip(person.affinity, catalogue.items_by_category, strict=True)
    )
    p_drop = person.discount_affinity + (1 - person.discount_affinity) * PRICE_DROP_SHARE
    list_price = mean_price * (1 - (1 - PRICE_DROP_FACTOR) * p_drop)
    line = QUANTITY * list_price * (1 - person.discount_affinity * DISCOUNT_DEPTH)
    return LINES_PER_ORDER * line


def orders(
    rng: np.random.Generator,
    person: Person,
    catalogue: Catalogue,
    start_date: date,
    days: int,
    extra_days: list[tuple[int, str]],
) -> list[dict]:
    """Orders at the person's purchase rate while active, plus the orders campaigns caused (`extra_days`: (day,
    campaign id)); the lines of a caused order carry the campaign's id as `_caused_by` (planted truth)."""
    if not person.customer_id:
        return []
    active = person.last_day - person.first_day + 1
    organic = rng.integers(person.first_day, person.last_day + 1, rng.poisson(person.purchase_rate * active))
    order_days = sorted([(int(d), "") for d in organic] + [(int(d), c) for d, c in extra_days])
    return [
        {**line, "_caused_by": cause} if cause else line
        for seq, (day, cause) in enumerate(order_days)
        for line in _order(rng, person, catalogue, start_date, day, seq, days)
    ]


def campaign_touches(
    rng: np.random.Generator, person: Person, campaigns: list[Campaign], start_date: date, days: int
) -> tuple[list[dict], list[dict], list[tuple[int, str]]]:
    """Touches of the campaigns that target this person, the planted assignments, and the days of caused orders.

    Returns:
        (touches, assignments, (day, campaign id) of each caused order). An assignment records the group and
        whether the campaign caused an extra order: the ground truth for uplift measurement.
    """
    touches, assignments, extra_days = [], [], []
    if not person.customer_id:
        return touches, assignments, extra_days
    consent_key = {"email": "consent_email", "push": "consent_push", "sms": "consent_sms", "ads": "consent_ads"}
    for campaign in campaigns:
        if not person.first_day <= campaign.day <= person.last_day:
            continue
        version = [v for v in person.crm_versions if v["_day"] <= campaign.day][-1]
        if not version[consent_key[campaign.channel]] or rng.random() >= campaign.treat_share:
            continue
        group = "holdout" if rng.random() < campaign.holdout_share else "treatment"
        t = _moment(start_date, campaign.day, 10 + rng.random())

        def touch(kind: str, at: datetime, group: str = group, campaign: Campaign = campaign, seq: int = len(touches)):
            touches.append({
                "touch_id": f"T{person.index:07d}-{campaign.campaign_id}-{len(touches) - seq}",
                "customer_id": person.customer_id, "campaign_id": campaign.campaign_id, "channel": campaign.channel,
                "touch_type": kind, "touch_ts": at, "group": group, "_day": (at - _moment(start_date, 0, 0)).days,
            })  # fmt: skip

        caused = False
        if group == "holdout":
            touch("suppressed", t)
        else:
            touch("impression" if campaign.channel == "ads" else "send", t)
            if rng.random() < (0.35 if campaign.channel == "email" else 0.15):
                opened = t + timedelta(minutes=int(rng.integers(5, 600)))
                touch("ad_click" if campaign.channel == "ads" else "open", opened)
                if campaign.channel != "ads" and rng.random() < 0.3:
                    touch("click", opened + timedelta(seconds=int(rng.integers(2, 120))))
            caused = rng.random() < person.campaign_effect * campaign.effect
            order_day = campaign.day + int(rng.integers(0, 4))
            if caused and order_day < days:
                extra_days.append((order_day, campaign.campaign_id))
        assignments.append({
            "customer_id": person.customer_id, "campaign_id": campaign.campaign_id, "group": group,
            "caused_order": caused, "campaign_effect": person.campaign_effect,
        })  # fmt: skip
    return touches, assignments, extra_days


def social(rng: np.random.Generator, person: Person, start_date: date) -> list[dict]:
    """Follows, likes, comments and shares by customers who linked a social account."""
    if not person.social_linked:
        return []
    active = person.last_day - person.first_day + 1
    platform = SOCIAL_PLATFORMS[int(rng.integers(len(SOCIAL_PLATFORMS)))]
    out = []
    for k, day in enumerate(
        sorted(int(d) for d in rng.integers(person.first_day, person.last_day + 1, rng.poisson(0.05 * active)))
    ):
        out.append({
            "interaction_id": f"S{person.index:07d}-{k:04d}", "customer_id": person.customer_id, "platform": platform,
            "action": ("follow", "like", "like", "comment", "share")[int(rng.integers(5))],
            "target_id": f"post{int(rng.integers(500)):04d}",
            "interaction_ts": _moment(start_date, day, _hour(rng, person.preferred_hour)), "_day": day,
        })  # fmt: skip
    return out
