"""Who an erasure request is about: from an email address or a user id to every identifier the lake holds for that
person (user ids, retired ids merged into them, CRM customer ids, cookies, devices, salted email and phone hashes,
node keys) and the raw values the records carry (emails and phones as they arrived)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.audiences.export import match_hashes
from audiencelake.core.lake import RESTRICTED, Lake
from audiencelake.core.pii import normalize_email, salted_hash, with_salt

MAX_HOPS = 20


@dataclass
class Person:
    """Everything that names one person. `keys` are matched exactly against every string column of every table;
    `tokens` (JSON-quoted, lower-case) are searched inside raw record text; `export_hashes` are the unsalted SHA-256
    digests customer-match exports carry (see `audiences.export.match_hashes`)."""

    user_ids: set[str] = field(default_factory=set)
    customers: set[str] = field(default_factory=set)
    nodes: set[str] = field(default_factory=set)
    identifiers: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    export_hashes: set[str] = field(default_factory=set)

    @property
    def found(self) -> bool:
        return bool(self.user_ids or self.customers or self.identifiers)

    @property
    def keys(self) -> set[str]:
        customer_nodes = {f"c:{c}" for c in self.customers}
        return _present(self.user_ids | self.customers | self.nodes | self.identifiers | customer_nodes)

    @property
    def tokens(self) -> set[str]:
        values = self.keys | _present(self.emails | self.phones | {e.strip() for e in self.emails})
        return {json.dumps(v.lower()) for v in values}


def _present(values: set[str]) -> set[str]:
    """Without blank values: an empty string would match every empty cell of everyone."""
    return {v for v in values if v and v.strip()}


def _values(df: DataFrame, column: str) -> set[str]:
    return {r[0] for r in df.select(column).distinct().collect() if r[0] is not None}


def _read(lake: Lake, layer: str, name: str) -> DataFrame | None:
    ref = lake.ref(layer, name)
    return lake.read(ref) if lake.exists(ref) else None


def email_hash(lake: Lake, email: str) -> str | None:
    """The salted hash silver keeps for `email` (None when nothing is left after normalisation)."""
    raw = lake.spark.createDataFrame([(email,)], "email string")
    return with_salt(raw, lake.settings.pii_salt()).select(salted_hash(normalize_email(F.col("email")))).first()[0]


def find_person(lake: Lake, email: str | None = None, user_id: str | None = None) -> Person:
    """Every identifier of the person with `email` (every CRM customer whose record carries it) or `user_id`."""
    person = Person()
    crm = _read(lake, "silver", "crm_profiles")
    identity_map = _read(lake, "ops", "identity_map")
    if email is not None:
        hashed = email_hash(lake, email)
        person.emails.add(email)
        if hashed is None:
            return person
        person.identifiers.add(hashed)
        node = f"e:{hashed}"
        if crm is not None:
            mine = crm.where(F.col("email_hash") == hashed)
            person.customers |= _values(mine, "customer_id")
            person.user_ids |= _values(mine, "user_id")
        edges = _read(lake, "identity", "identity_edges")
        if edges is not None:
            ends = edges.where((F.col("src") == node) | (F.col("dst") == node))
            other = F.when(F.col("src") == node, F.col("dst")).otherwise(F.col("src"))
            linked = _values(ends.select(other.alias("n")).where(F.col("n").startswith("c:")), "n")
            person.customers |= {n[2:] for n in linked}
        if identity_map is not None:
            person.user_ids |= _values(identity_map.where(F.col("node") == node), "user_id")
    if user_id is not None:
        person.user_ids.add(_surviving(lake, user_id))
    _close_over_merges(lake, person)
    if identity_map is not None and person.user_ids | person.customers:
        customer_nodes = [f"c:{c}" for c in person.customers]
        mine = identity_map.where(F.col("user_id").isin(*person.user_ids) | F.col("node").isin(*customer_nodes))
        person.user_ids |= _values(mine, "user_id")
        _close_over_merges(lake, person)
        mine = identity_map.where(F.col("user_id").isin(*person.user_ids) | F.col("node").isin(*customer_nodes))
        person.nodes |= _values(mine, "node")
        person.identifiers |= _values(mine, "identifier")
        person.customers |= _values(mine.where(F.col("id_type") == "customer"), "identifier")
    if crm is not None and person.user_ids:
        person.customers |= _values(crm.where(F.col("user_id").isin(*person.user_ids)), "customer_id")
    if crm is not None and person.customers:
        _add_own_contacts(lake, crm, person)
    person.export_hashes = _export_hashes(lake, person)
    return person


def _add_own_contacts(lake: Lake, crm: DataFrame, person: Person) -> None:
    """The email and phone hashes of the person's CRM records, and their raw values, that no other customer's
    record carries: a shared phone or address names other people too, whose rows must stay."""
    theirs = crm.where(F.col("customer_id").isin(*person.customers))
    restricted = _read(lake, RESTRICTED, "crm_profiles_pii")
    for kind in ("email", "phone"):
        column = f"{kind}_hash"
        hashes = _values(theirs, column)
        others = crm.where(F.col(column).isin(*hashes) & ~F.col("customer_id").isin(*person.customers))
        own = hashes - _values(others, column) if hashes else set()
        person.identifiers |= own
        if restricted is not None and own:
            rows = restricted.join(theirs.where(F.col(column).isin(*own)).select("customer_id"), "customer_id")
            getattr(person, f"{kind}s").update(_values(rows, kind))


def _export_hashes(lake: Lake, person: Person) -> set[str]:
    """The unsalted digests `customer_match` exports carry for the person's emails and phones."""
    values = [(e, None) for e in person.emails] + [(None, p) for p in person.phones]
    if not values:
        return set()
    hashed = lake.spark.createDataFrame(values, "email string, phone string").select(
        *match_hashes(F.col("email"), F.col("phone"))
    )
    return {v for row in hashed.collect() for v in row if v is not None}


def _surviving(lake: Lake, user_id: str) -> str:
    """The id a retired `user_id` was merged into (following chains), or `user_id` itself."""
    persons = _read(lake, "identity", "identity_persons")
    for _ in range(MAX_HOPS if persons is not None else 0):
        row = persons.where((F.col("user_id") == user_id) & F.col("merged_into").isNotNull()).first()
        if row is None:
            break
        user_id = row["merged_into"]
    return user_id


def _close_over_merges(lake: Lake, person: Person) -> None:
    """Add the retired ids that were merged (directly or through a chain) into one of the person's ids."""
    persons = _read(lake, "identity", "identity_persons")
    if persons is None:
        return
    for _ in range(MAX_HOPS):
        if not person.user_ids:
            return
        merged = _values(persons.where(F.col("merged_into").isin(*person.user_ids)), "user_id")
        if merged <= person.user_ids:
            return
        person.user_ids |= merged
