"""The identity graph on small hand-made silver tables: guards, persistent ids through a merge and a split, the
change log, relabelled events, and incremental runs giving the same graph as a rebuild and as a fresh lake."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from pyspark.sql import functions as F

from audiencelake.core.contracts import contract
from audiencelake.core.lake import RESTRICTED, Lake
from audiencelake.core.runs import Run
from audiencelake.identity.config import load_identity_config
from audiencelake.identity.graph import update_graph
from conftest import lake_settings

pytestmark = pytest.mark.e2e

T = [datetime(2026, 3, d, 12) for d in (1, 2, 3, 4)]


def _config():
    config = load_identity_config()
    return config.model_copy(update={"matching": config.matching.model_copy(update={"enabled": False})})


def _event(eid, ts, anon, device=None, login=None):
    return {"event_id": eid, "event_ts": ts, "event_type": "login" if login else "page_view", "anonymous_id": anon,
            "device_id": device, "platform": "web", "customer_id": login, "event_date": ts.date()}  # fmt: skip


def _crm(cid, email, signup, updated):
    return {"customer_id": cid, "user_id": cid, "email_hash": email, "phone_hash": f"ph-{cid}", "signup_date": signup,
            "updated_at": updated, "consent_email": True, "consent_sms": True, "consent_push": True,
            "consent_ads": True}  # fmt: skip


def _order(oid, cid, ts):  # user_id as ingest sets it from the map: C2 is still C2's own person then
    return {"order_id": oid, "line_no": 1, "line_type": "purchase", "customer_id": cid, "user_id": cid,
            "order_ts": ts, "order_date": ts.date(), "item_id": "I1", "quantity": 1, "unit_price": Decimal("9.90"),
            "discount": Decimal("0.00"), "amount": Decimal("9.90")}  # fmt: skip


BATCHES = [
    {  # two customers, an anonymous visitor
        "crm": [_crm("C1", "e1", date(2026, 1, 1), T[0]), _crm("C2", "e2", date(2026, 2, 1), T[0])],
        "events": [
            _event("E1", T[0], "a1", "d1", "C1"),
            _event("E2", T[0], "a2", "d2", "C2"),
            _event("E3", T[0], "a3", "d3"),
        ],
        "orders": [_order("O1", "C1", T[0]), _order("O2", "C2", T[0])],
    },
    {  # the visitor logs in as C2; a family tablet serves C1 and C2 (shared: links nothing)
        "crm": [],
        "events": [
            _event("E4", T[1], "a3", "d3", "C2"),
            _event("E5", T[1], "a9", "d9", "C1"),
            _event("E6", T[1], "a10", "d9", "C2"),
        ],
    },
    {  # C2 now gives C1's email: merge (and C2 orders again in the same batch)
        "crm": [_crm("C2", "e1", date(2026, 2, 1), T[2])],
        "events": [],
        "orders": [_order("O3", "C2", T[2])],
    },
    {"crm": [_crm("C2", "e2", date(2026, 2, 1), T[3])], "events": []},  # and takes it back: split
]


def _land(lake: Lake, batch: dict, ingested: datetime) -> None:
    tables = ("crm_profiles", batch["crm"]), ("clickstream_events", batch["events"]), ("orders", batch.get("orders"))
    for table, rows in tables:
        if not rows:
            continue
        schema = contract(table).table_schema()
        lineage = {"_batch_id": "b", "_file": "f", "_ingested_at": ingested, "_record_hash": "h"}
        full = [{f.name: {**lineage, **r}.get(f.name) for f in schema.fields} for r in rows]
        df = lake.spark.createDataFrame(full, schema)
        ref = lake.ref("silver", table)
        lake.ensure(ref)
        keys = contract(table).keys
        lake.merge_upsert(df, ref, keys)
        if table == "crm_profiles":
            pii = lake.ref(RESTRICTED, "crm_profiles_pii")
            lake.ensure(pii, "crm_profiles")
            lake.merge_upsert(df.select("customer_id", *[F.lit(None).cast("string").alias(c) for c in
                                        ("first_name", "last_name", "email", "phone")], "updated_at"), pii, keys)  # fmt: skip


def _run(lake: Lake, run_id: str):
    return update_graph(lake, Run.create(as_of="2026-03-10", run_id=run_id), _config())


def _map(lake: Lake) -> dict[str, tuple]:
    return {r["node"]: (r["component"], r["user_id"]) for r in lake.read(lake.ref("ops", "identity_map")).collect()}


def _users(lake: Lake) -> dict[str, str | None]:
    return {node: user for node, (_, user) in _map(lake).items()}


def _changes(lake: Lake) -> list[tuple]:
    ref = lake.ref("identity", "identity_changes")
    rows = lake.read(ref).collect() if lake.exists(ref) else []
    return sorted((r["run_id"], r["change"], tuple(r["old_ids"]), r["new_id"]) for r in rows)


def _events(lake: Lake) -> dict[str, str | None]:
    return {r["event_id"]: r["user_id"] for r in lake.read(lake.ref("silver", "clickstream_events")).collect()}


def _customer_rows(lake: Lake) -> dict[str, str]:
    """user_id of every order line and CRM record, by order id or customer id."""
    orders = lake.read(lake.ref("silver", "orders")).collect()
    crm = lake.read(lake.ref("silver", "crm_profiles")).collect()
    return {r["order_id"]: r["user_id"] for r in orders} | {r["customer_id"]: r["user_id"] for r in crm}


@pytest.fixture(scope="module")
def history(spark, tmp_path_factory):
    """One lake taken through the four batches, one identity run after each; the map after every run."""
    root = tmp_path_factory.mktemp("identity-graph")
    lake = Lake(spark, lake_settings(root))
    maps, stats, events, customers = [], [], [], []
    for k, batch in enumerate(BATCHES):
        _land(lake, batch, T[k])
        stats.append(_run(lake, f"r{k + 1}"))
        maps.append(_users(lake))
        events.append(_events(lake))
        customers.append(_customer_rows(lake))
    return {"lake": lake, "root": root, "maps": maps, "stats": stats, "events": events, "customers": customers}


def test_first_run_builds_persons_from_logins_and_crm(history) -> None:
    first = history["maps"][0]
    assert history["stats"][0].mode == "full"
    assert {n: first[n] for n in ("c:C1", "e:e1", "p:ph-C1", "a:a1", "d:d1")} == dict.fromkeys(
        ("c:C1", "e:e1", "p:ph-C1", "a:a1", "d:d1"), "C1"
    )
    assert first["a:a2"] == first["d:d2"] == first["c:C2"] == "C2"
    assert first["a:a3"] is None and first["d:d3"] is None  # never logged in
    assert history["events"][0] == {"E1": "C1", "E2": "C2", "E3": None}
    # the events were landed without a person: each one labelled now was changed by the first run's relabel
    assert history["stats"][0].events_updated == sum(v is not None for v in history["events"][0].values())


def test_a_shared_device_links_nothing_and_a_login_claims_a_visitor(history) -> None:
    lake, second = history["lake"], history["maps"][1]
    assert history["stats"][1].mode == "incremental"
    nodes = {r["node"]: r for r in lake.read(lake.ref("identity", "identity_nodes")).collect()}
    assert nodes["d:d9"]["customers"] == 2 and nodes["d:d9"]["shared"]
    assert second["c:C1"] == "C1" and second["c:C2"] == "C2"  # the tablet did not merge them
    assert second["d:d9"] is None and second["a:a9"] == "C1" and second["a:a10"] == "C2"  # each cookie: one login
    assert second["a:a3"] == second["d:d3"] == "C2"
    assert history["events"][1]["E3"] == "C2"  # the visitor's earlier event is credited now


def test_merge_keeps_the_oldest_id_and_split_gives_the_id_back(history) -> None:
    lake = history["lake"]
    merged, split = history["maps"][2], history["maps"][3]
    assert {merged[n] for n in ("c:C1", "c:C2", "a:a2", "a:a3", "e:e1")} == {"C1"}  # C1 signed up first
    assert history["events"][2] == dict.fromkeys(("E1", "E2", "E3", "E4", "E5", "E6"), "C1")
    assert split["c:C1"] == "C1" and split["c:C2"] == split["a:a2"] == split["a:a3"] == "C2"
    assert split["e:e1"] == "C1" and split["e:e2"] == "C2"
    assert history["events"][3]["E2"] == "C2"
    assert history["customers"][0] == {"O1": "C1", "O2": "C2", "C1": "C1", "C2": "C2"}
    assert history["customers"][2] == {"O1": "C1", "O2": "C1", "O3": "C1", "C1": "C1", "C2": "C1"}  # new O3 too
    assert history["customers"][3] == {"O1": "C1", "O2": "C2", "O3": "C2", "C1": "C1", "C2": "C2"}
    assert _changes(lake) == [("r3", "merge", ("C1", "C2"), "C1"), ("r4", "split", ("C1",), "C2")]
    persons = {r["user_id"]: r for r in lake.read(lake.ref("identity", "identity_persons")).collect()}
    assert persons["C2"]["status"] == "active" and persons["C2"]["merged_into"] is None
    assert persons["C2"]["updated_run"] == "r4" and persons["C1"]["anchor"] == "c:C1"


def test_ids_do_not_move_without_a_merge_or_split(history) -> None:
    first, second = history["maps"][0], history["maps"][1]
    assert all(second[node] == user for node, user in first.items() if user is not None)


def test_a_run_without_new_rows_changes_nothing(history) -> None:
    lake = history["lake"]
    before = (_map(lake), _changes(lake), _events(lake), _customer_rows(lake))
    stats = _run(lake, "r5")
    assert stats.rows_read == 0 and (_map(lake), _changes(lake), _events(lake), _customer_rows(lake)) == before


def test_rebuild_and_a_fresh_lake_give_the_incremental_graph(history, spark, tmp_path) -> None:
    lake = history["lake"]
    incremental = _map(lake)
    rebuilt_lake = Lake(spark, lake_settings(history["root"], "identity.rebuild=true"))
    assert _run(rebuilt_lake, "r6").mode == "full"
    assert _map(rebuilt_lake) == incremental
    assert _customer_rows(rebuilt_lake) == history["customers"][3]
    fresh = Lake(spark, lake_settings(tmp_path))
    for k, batch in enumerate(BATCHES):
        _land(fresh, batch, T[k])
    assert _run(fresh, "all").mode == "full"
    assert _map(fresh) == incremental
    assert _customer_rows(fresh) == history["customers"][3] and _events(fresh) == _events(lake)
    assert _changes(fresh) == []  # nothing was ever merged in the fresh lake: all of it arrived at once


def test_ids_recorded_before_a_merge_read_as_the_survivor(spark, tmp_path) -> None:
    from audiencelake.identity.lookup import current_user_ids

    lake = Lake(spark, lake_settings(tmp_path))
    persons = [("A", "c:A", "retired", "B"), ("B", "c:B", "retired", "C"), ("C", "c:C", "active", None),
               ("D", "c:D", "active", None), ("E", "c:E", "retired", None)]  # fmt: skip
    schema = contract("identity_persons").table_schema()
    rows = [(*p, "r1", "r2") for p in persons]
    lake.overwrite(spark.createDataFrame(rows, schema), lake.ref("identity", "identity_persons"))
    members = spark.createDataFrame([(u,) for u in ("A", "B", "D", "E", "Z")], "user_id string")
    assert sorted(r["user_id"] for r in current_user_ids(lake, members).collect()) == ["C", "C", "D", "E", "Z"]
