"""Draw the people of one chunk of the world: their planted segment, behaviour, devices and CRM history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np

from audiencelake.synth.catalog import CATEGORIES, CITIES, EMAIL_DOMAINS, FIRST_NAMES, LAST_NAMES, SEGMENTS


@dataclass
class Device:
    device_id: str
    platform: str  # app | web
    anonymous_ids: list[str]  # the app instance id, or one or two cookies (the second after a cookie reset)
    switch_day: int  # day index from which the second cookie is used


@dataclass
class Person:
    """A customer (`customer_id` set) or an anonymous visitor who never logs in (`customer_id` None)."""

    index: int
    customer_id: str | None
    segment: int
    first_day: int  # first active day index (signup, or 0)
    last_day: int  # last active day index (churn date for churners, else the end)
    churner: bool
    purchase_rate: float
    session_rate: float
    discount_affinity: float
    campaign_effect: float
    preferred_hour: int
    affinity: np.ndarray  # probabilities over CATEGORIES
    devices: list[Device]
    social_linked: bool
    crm_versions: list[dict] = field(default_factory=list)  # CRM rows, oldest first


def _phone_variants(rng: np.random.Generator, digits: str) -> str:
    a, b, c = digits[:3], digits[3:7], digits[7:]
    return [f"+86 {a} {b} {c}", digits, f"0086-{a}-{b}-{c}", f"({a}) {b}-{c}"][int(rng.integers(4))]


def draw_people(
    rng: np.random.Generator, start: int, count: int, days: int, start_date: date, customers: bool
) -> list[Person]:
    """Draw `count` people with global indexes from `start`.

    Args:
        rng: the chunk's random generator.
        start: global index of the first person (ids are derived from it, so chunks never collide).
        count: how many people.
        days: length of the simulated period in days.
        start_date: the first day of the period.
        customers: True for CRM customers, False for anonymous visitors.
    """
    shares = np.array([s.share for s in SEGMENTS])
    people = []
    for offset in range(count):
        index = start + offset
        seg_idx = int(rng.choice(len(SEGMENTS), p=shares / shares.sum()))
        seg = SEGMENTS[seg_idx]
        new_customer = customers and rng.random() < 0.12
        first_day = int(rng.integers(0, max(1, days - 14))) if new_customer else 0
        churner = customers and rng.random() < seg.churn_prob
        last_day = int(rng.integers(int(days * 0.55), days - 5)) if churner else days - 1
        last_day = max(last_day, first_day + 3)
        alpha = np.full(len(CATEGORIES), 0.4)
        alpha[list(seg.favourite_categories)] += (6.0, 3.0)
        affinity = rng.dirichlet(alpha)
        prefix = f"{index:07d}"
        devices = []
        for d in range(int(rng.integers(1, 4)) if customers else 1):
            platform = "app" if rng.random() < seg.app_share else "web"
            token = f"{prefix}{d}{int(rng.integers(16**6)):06x}"
            if platform == "app":
                anon = [f"ap_{token}"]
            else:
                anon = [f"ck_{token}a"] + ([f"ck_{token}b"] if rng.random() < 0.35 else [])
            switch = int(rng.integers(first_day + 1, last_day + 1)) if len(anon) > 1 else days
            devices.append(Device(f"dv_{token}", platform, anon, switch))
        person = Person(
            index=index,
            customer_id=f"C{prefix}" if customers else None,
            segment=seg_idx,
            first_day=first_day,
            last_day=last_day,
            churner=churner,
            purchase_rate=seg.purchase_rate * float(rng.lognormal(0, 0.35)) * (1 if customers else 0),
            session_rate=seg.session_rate * float(rng.lognormal(0, 0.3)) * (1 if customers else 0.4),
            discount_affinity=float(np.clip(seg.discount_affinity + rng.normal(0, 0.05), 0, 1)),
            campaign_effect=float(np.clip(seg.campaign_effect + rng.normal(0, 0.02), 0, 1)),
            preferred_hour=int((seg.preferred_hour + rng.integers(-2, 3)) % 24),
            affinity=affinity,
            devices=devices,
            social_linked=customers and rng.random() < 0.4,
        )
        if customers:
            person.crm_versions = _crm_history(rng, person, days, start_date, seg.consent_prob)
        people.append(person)
    return people


def _crm_history(rng: np.random.Generator, person: Person, days: int, start_date: date, consent: float) -> list[dict]:
    first, last = FIRST_NAMES[int(rng.integers(len(FIRST_NAMES)))], LAST_NAMES[int(rng.integers(len(LAST_NAMES)))]
    domain = EMAIL_DOMAINS[int(rng.integers(len(EMAIL_DOMAINS)))]
    email = f"{first}.{last}{person.index}@{domain}".lower()
    digits = f"1{int(rng.integers(30, 90))}{person.index:08d}"[:11]
    city = CITIES[int(rng.integers(len(CITIES)))][0]
    age_days = int(rng.integers(18 * 365, 70 * 365))
    signup = (
        start_date + timedelta(days=person.first_day)
        if person.first_day > 0
        else start_date - timedelta(days=int(rng.integers(30, 1500)))
    )
    signed_at = datetime(signup.year, signup.month, signup.day, int(rng.integers(0, 24)), int(rng.integers(60)))
    base = {
        "customer_id": person.customer_id,
        "first_name": first.capitalize(),
        "last_name": last.capitalize(),
        "email": email.upper() if rng.random() < 0.1 else email,
        "phone": _phone_variants(rng, digits),
        "birth_date": (start_date - timedelta(days=age_days)).isoformat(),
        "gender": ("F", "M", "U")[int(rng.choice(3, p=[0.52, 0.45, 0.03]))],
        "city": city,
        "signup_date": signup.isoformat(),
        "consent_email": bool(rng.random() < consent),
        "consent_sms": bool(rng.random() < consent * 0.7),
        "consent_push": bool(rng.random() < consent * 0.9),
        "consent_ads": bool(rng.random() < consent * 0.8),
        "updated_at": signed_at,
        "_day": max(0, person.first_day),
    }
    versions = [base]
    for _ in range(int(rng.choice(3, p=[0.7, 0.2, 0.1]))):
        day = int(rng.integers(versions[-1]["_day"] + 1, days + 1)) if versions[-1]["_day"] + 1 < days else None
        if day is None:
            break
        change = dict(versions[-1])
        what = int(rng.integers(3))
        if what == 0:
            change["city"] = CITIES[int(rng.integers(len(CITIES)))][0]
        elif what == 1:
            change["phone"] = _phone_variants(rng, digits)
        else:
            change["consent_email"] = not change["consent_email"]
        moment = start_date + timedelta(days=min(day, days - 1))
        change["updated_at"] = datetime(moment.year, moment.month, moment.day, int(rng.integers(24)), 30)
        change["_day"] = min(day, days - 1)
        versions.append(change)
    return versions
