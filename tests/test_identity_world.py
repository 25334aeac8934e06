"""Identity resolution on the generated world against its planted identities: CRM duplicates with typos, swapped
names, changed email domains, old emails and moved cities; family tablets shared by three customers; test accounts
sharing one email and phone. Pairwise scores are computed here with scikit-learn, not with the library's own."""

from __future__ import annotations

import csv

import pytest
from sklearn.metrics.cluster import pair_confusion_matrix

from audiencelake.identity.config import load_identity_config

pytestmark = pytest.mark.e2e


def _truth(world, name: str) -> list[dict]:
    with open(world["truth"] / name, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def identity_map(world) -> dict[tuple[str, str], str | None]:
    lake = world["lake"]
    rows = lake.read(lake.ref("ops", "identity_map")).collect()
    return {(r["id_type"], r["identifier"]): r["user_id"] for r in rows}


def _pairwise(true_labels: list[str], predicted: list[str]) -> tuple[float, float, float]:
    (_, fp), (fn, tp) = pair_confusion_matrix(true_labels, predicted)  # counts ordered pairs: ratios are unaffected
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return precision, recall, 2 * precision * recall / (precision + recall)


def test_crm_records_cluster_into_the_planted_persons(world, identity_map) -> None:
    persons = _truth(world, "persons.csv")
    assert {p["kind"] for p in persons} == {"customer", "duplicate", "test_account"}
    items = [p for p in persons if ("customer", p["customer_id"]) in identity_map]
    assert len(items) == len(persons)  # every CRM record that reached silver is a node
    predicted = [identity_map[("customer", p["customer_id"])] or f"alone:{p['customer_id']}" for p in items]
    precision, recall, f1 = _pairwise([p["person_id"] for p in items], predicted)
    assert f1 >= 0.97, (precision, recall, f1)
    people_per_user: dict[str, set[str]] = {}
    for p, user in zip(items, predicted, strict=True):
        people_per_user.setdefault(user, set()).add(p["person_id"])
    over_merged = sum(len(people) > 1 for people in people_per_user.values())
    assert over_merged / len(people_per_user) < 0.005
    # a linked duplicate carries the original customer's id: the original signed up first, so it is the anchor
    duplicates = [(p, identity_map[("customer", p["customer_id"])]) for p in items if p["kind"] == "duplicate"]
    assert all(user in (p["customer_id"], p["person_id"]) for p, user in duplicates)
    assert sum(user == p["person_id"] for p, user in duplicates) >= 0.9 * len(duplicates)


def test_every_identifier_joins_its_person(world, identity_map) -> None:
    persons = {p["customer_id"]: p["person_id"] for p in _truth(world, "persons.csv")}
    labels = [(persons[c], identity_map[("customer", c)] or f"alone:{c}") for c in persons]
    for row in _truth(world, "identities.csv"):
        if row["customer_id"] and ("anonymous", row["anonymous_id"]) in identity_map:
            labels.append((persons[row["customer_id"]], identity_map[("anonymous", row["anonymous_id"])] or "?"))
    precision, recall, f1 = _pairwise([t for t, _ in labels], [p for _, p in labels])
    assert f1 >= 0.97 and precision >= 0.995, (precision, recall, f1)


def test_every_silver_row_carries_the_person_of_its_customer_or_cookie(world, identity_map) -> None:
    lake = world["lake"]
    for table in ("crm_profiles", "orders", "campaign_touches", "social_interactions"):
        rows = lake.read(lake.ref("silver", table)).select("customer_id", "user_id").distinct().collect()
        wrong = [(r["customer_id"], r["user_id"]) for r in rows
                 if r["user_id"] != (identity_map.get(("customer", r["customer_id"])) or r["customer_id"])]  # fmt: skip
        assert not wrong, (table, wrong[:5])
    events = lake.read(lake.ref("silver", "clickstream_events")).select("anonymous_id", "user_id").distinct()
    assert all(r["user_id"] == identity_map[("anonymous", r["anonymous_id"])] for r in events.collect())
    linked = [p["customer_id"] for p in _truth(world, "persons.csv")
              if p["kind"] == "duplicate" and identity_map[("customer", p["customer_id"])] == p["person_id"]]  # fmt: skip
    assert linked  # some duplicates were linked, and their CRM rows now carry the original's id


def test_shared_devices_and_test_accounts_link_nothing(world, identity_map) -> None:
    lake = world["lake"]
    nodes = {r["node"]: r for r in lake.read(lake.ref("identity", "identity_nodes")).collect()}
    family = [r for r in _truth(world, "identities.csv") if r["anonymous_id"].startswith("ap_family")]
    assert family, "the world plants family tablets"
    for row in family:
        for node in (f"a:{row['anonymous_id']}", f"d:{row['device_id']}"):
            assert nodes[node]["customers"] == 3 and nodes[node]["shared"], node
        assert identity_map[("anonymous", row["anonymous_id"])] is None
    tests = [p["customer_id"] for p in _truth(world, "persons.csv") if p["kind"] == "test_account"]
    assert sorted(identity_map[("customer", c)] for c in tests) == sorted(tests)  # four persons, not one
    limit = load_identity_config().identifiers["email"].max_customers
    shared_emails = [n for n in nodes.values() if n["id_type"] == "email" and n["shared"]]
    assert len(shared_emails) == 1 and shared_emails[0]["customers"] == len(tests) > limit


def test_probabilistic_edges_keep_their_probability_and_no_pii(world) -> None:
    lake = world["lake"]
    edges = lake.read(lake.ref("identity", "identity_edges"))
    matches = edges.where("source = 'crm_match'").collect()
    threshold = load_identity_config().matching.threshold
    assert matches and all(threshold <= m["match_probability"] <= 1 for m in matches)
    assert all(m["src"].startswith("c:") and m["dst"].startswith("c:") and m["src"] < m["dst"] for m in matches)
    assert edges.where("source <> 'crm_match' AND match_probability IS NOT NULL").count() == 0
    model = lake.read(lake.ref("identity", "identity_match_model")).collect()
    emails = {u["email"].lower() for u in _truth(world, "users.csv")}
    assert len(model) == 1 and not any(e in model[0]["model_json"].lower() for e in emails)  # parameters only


def test_new_records_scored_against_all_get_the_probabilities_of_a_full_scoring(world) -> None:
    import json

    from pyspark.sql import functions as F

    from audiencelake.core.lake import RESTRICTED
    from audiencelake.identity.matching import Matcher, match_records

    lake = world["lake"]
    crm = lake.read(lake.ref("silver", "crm_profiles"))
    records = match_records(crm, lake.read(lake.ref(RESTRICTED, "crm_profiles_pii"))).localCheckpoint()
    model = json.loads(lake.read(lake.ref("identity", "identity_match_model")).first()["model_json"])
    matcher = Matcher.open(records, model)
    try:
        full = {(r["a"], r["b"]): r["match_probability"] for r in matcher.pairs(0.0).collect()}
        new = records.where(F.col("unique_id") >= "C9").select("unique_id")  # duplicates and test accounts
        new_ids = {r["unique_id"] for r in new.collect()}
        part = {(r["a"], r["b"]): r["match_probability"] for r in matcher.pairs(0.0, new).collect()}
    finally:
        matcher.close()
    expected = {pair: p for pair, p in full.items() if set(pair) & new_ids}
    assert expected and part.keys() == expected.keys()
    assert all(abs(part[pair] - p) < 1e-9 for pair, p in expected.items())
