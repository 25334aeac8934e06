"""Plant identity ground truth on top of a chunk's people, from a random stream of its own (so the rest of the
world is unchanged): CRM duplicates with realistic noise, family devices shared by several customers, and test
accounts that share one email. The truth lists every CRM customer id with the person it belongs to."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np

from audiencelake.synth.catalog import CITIES, EMAIL_DOMAINS
from audiencelake.synth.people import Person

DUPLICATE_SHARE = 0.05  # customers with a second CRM record
FAMILY_SHARE = 0.02  # customers who also log in on a family tablet shared by FAMILY_SIZE customers
FAMILY_SIZE = 3
TEST_ACCOUNTS = 4  # in chunk 0: QA accounts sharing one email and one phone
DUPLICATE_OFFSET = 9_000_000  # a duplicate's customer id is C<offset + person index>
TEST_OFFSET = 9_900_000


@dataclass
class IdentityPlants:
    crm: list[dict] = field(default_factory=list)  # extra CRM records (the dict form _render_crm takes), with _day
    events: list[dict] = field(default_factory=list)  # extra clickstream records, with _day
    persons: list[dict] = field(default_factory=list)  # truth: customer_id, person_id, kind, noise
    shared_anonymous: list[dict] = field(default_factory=list)  # truth identities of shared devices


def _typo(rng: np.random.Generator, word: str) -> str:
    if len(word) < 3:
        return word + "h"
    i = int(rng.integers(1, len(word) - 1))
    kind = int(rng.integers(3))
    if kind == 0:  # swap two neighbours
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:  # drop one
        return word[:i] + word[i + 1 :]
    return word[:i] + "aeiou"[int(rng.integers(5))] + word[i + 1 :]  # replace one


# What can differ between a person's two CRM records, and how many of these kinds one duplicate shows (most
# differ in one or two fields; a record differing in everything is no longer recognisable, by anyone)
NOISE = ("typo", "swapped_names", "email", "moved", "phone")
NOISE_KINDS = (1, 2, 3)
NOISE_KIND_WEIGHTS = (0.45, 0.4, 0.15)


def _duplicate(rng: np.random.Generator, p: Person, start: date, days: int, end: date) -> tuple[dict, list[str]]:
    v = dict(p.crm_versions[-1])
    kinds = set(rng.choice(NOISE, size=int(rng.choice(NOISE_KINDS, p=NOISE_KIND_WEIGHTS)), replace=False).tolist())
    noise = []
    first, last = v["first_name"], v["last_name"]
    if "typo" in kinds:
        first, last = (_typo(rng, first), last) if rng.random() < 0.5 else (first, _typo(rng, last))
        noise.append("typo")
    if "swapped_names" in kinds:
        first, last = last, first
        noise.append("swapped_names")
    local, domain = v["email"].lower().split("@")
    email = v["email"]
    if "email" in kinds and rng.random() < 0.6:
        email = f"{local}@{next(d for d in np.roll(EMAIL_DOMAINS, -int(rng.integers(1, 4))) if d != domain)}"
        noise.append("email_domain")
    elif "email" in kinds:
        email = f"{first.lower()}{int(rng.integers(10, 99))}@{EMAIL_DOMAINS[int(rng.integers(len(EMAIL_DOMAINS)))]}"
        noise.append("old_email")
    if "moved" in kinds:
        v["city"] = next(c for c, _ in np.roll(np.array(CITIES, dtype=object), -int(rng.integers(1, 5)), axis=0)
                         if c != v["city"])  # fmt: skip
        noise.append("moved")
    if "phone" in kinds and rng.random() < 0.5:
        v["phone"] = None
        noise.append("no_phone")
    elif "phone" in kinds:
        v["phone"] = f"1{int(rng.integers(30, 90))}{int(rng.integers(10**8)):08d}"
        noise.append("new_phone")
    signup = date.fromisoformat(v["signup_date"])
    latest = end - timedelta(days=1)
    dup_signup = signup + timedelta(days=int(rng.integers(1, max(2, (latest - signup).days))))
    dup_signup = min(dup_signup, latest)
    day = max(0, (dup_signup - start).days)
    at = datetime(dup_signup.year, dup_signup.month, dup_signup.day, int(rng.integers(24)), int(rng.integers(60)))
    record = {
        **v, "customer_id": f"C{DUPLICATE_OFFSET + p.index}", "first_name": first, "last_name": last,
        "email": email, "signup_date": dup_signup.isoformat(), "updated_at": at, "_day": min(day, days - 1),
        "consent_email": False, "consent_sms": False, "consent_push": False, "consent_ads": False,
    }  # fmt: skip
    return record, noise


def _family_events(rng: np.random.Generator, family: list[Person], key: str, start: date) -> list[dict]:
    device, anon = f"dv_family{key}", f"ap_family{key}"
    out = []
    for member in family:
        for k in range(2):
            day = int(rng.integers(member.first_day, member.last_day + 1))
            t = datetime(start.year, start.month, start.day) + timedelta(days=day, hours=float(rng.uniform(8, 22)))
            base = {"anon_id": anon, "device_id": device, "platform": "app", "_day": day}
            ids = f"E{member.index:07d}-F{k:04d}"
            out.append({**base, "event_id": f"{ids}a", "event_type": "login", "ts": t,
                        "login_customer_id": member.customer_id})  # fmt: skip
            out.append({**base, "event_id": f"{ids}b", "event_type": "page_view", "ts": t + timedelta(seconds=30),
                        "page_url": "/home"})  # fmt: skip
    return out


def plant_identities(
    rng: np.random.Generator, customers: list[Person], chunk: int, start: date, days: int
) -> IdentityPlants:
    """Duplicates, family devices and (chunk 0) test accounts for one chunk's customers."""
    plants = IdentityPlants()
    end = start + timedelta(days=days)
    for p in customers:
        plants.persons.append({"customer_id": p.customer_id, "person_id": p.customer_id, "kind": "customer",
                               "noise": ""})  # fmt: skip
        if rng.random() < DUPLICATE_SHARE:
            record, noise = _duplicate(rng, p, start, days, end)
            plants.crm.append(record)
            plants.persons.append({"customer_id": record["customer_id"], "person_id": p.customer_id,
                                   "kind": "duplicate", "noise": "+".join(noise)})  # fmt: skip
    families = int(round(len(customers) * FAMILY_SHARE / FAMILY_SIZE)) if len(customers) >= FAMILY_SIZE else 0
    order = rng.permutation(len(customers))
    for f in range(families):
        family = [customers[int(i)] for i in order[f * FAMILY_SIZE : (f + 1) * FAMILY_SIZE]]
        key = f"{chunk:04d}{f:04d}"
        plants.events += _family_events(rng, family, key, start)
        plants.shared_anonymous.append({"anonymous_id": f"ap_family{key}", "device_id": f"dv_family{key}",
                                        "platform": "app", "customer_id": ""})  # fmt: skip
    if chunk == 0 and customers:
        template = customers[0].crm_versions[0]
        for i in range(TEST_ACCOUNTS):
            cid = f"C{TEST_OFFSET + i}"
            plants.crm.append({
                **template, "customer_id": cid, "first_name": "Test", "last_name": f"Account{i}",
                "email": "qa.team@example.com", "phone": "13800000000", "birth_date": f"199{i}-01-01",
                "consent_email": False, "consent_sms": False, "consent_push": False, "consent_ads": False,
            })  # fmt: skip
            plants.persons.append({"customer_id": cid, "person_id": cid, "kind": "test_account", "noise": ""})
    return plants
