"""Sessions kept at ingest (`ingest/sessions.py`): late events that join, split or start sessions, replaced versions
and tied times, against a plain-Python sessionisation of all events; then through ingest on Delta with a stop
between the batch's write and the update of the rows it changed, and a lake written before the session columns."""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from audiencelake.core.contracts import contract
from audiencelake.core.failpoints import ENV, InjectedFault
from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from audiencelake.ingest.sessions import sessionise
from audiencelake.stages.declaration import StageContext
from audiencelake.stages.runner import run_stage
from conftest import lake_settings

C = contract("clickstream_events")
T0 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
GAP = timedelta(minutes=30)


def reference(events: list[tuple[str, str, datetime]]) -> dict[str, tuple[str, bool]]:
    """event_id -> (session_id, session_start) over (event_id, visitor, time): a visitor's session starts at their
    first event or one more than 30 minutes after the previous (ties by event id), named by its first event."""
    out: dict[str, tuple[str, bool]] = {}
    by_visitor: dict[str, list[tuple[datetime, str]]] = {}
    for event_id, visitor, ts in events:
        by_visitor.setdefault(visitor, []).append((ts, event_id))
    for rows in by_visitor.values():
        rows.sort()
        current, previous = None, None
        for ts, event_id in rows:
            start = previous is None or ts > previous + GAP
            current = event_id if start else current
            out[event_id] = (current, start)
            previous = ts
    return out


def frame(spark, events, sessions: dict[str, tuple[str, bool]] | None = None):
    columns = [col for col in C.all_columns if not col.pii]
    rows = []
    for e, v, ts in events:  # page views of visitor v; every other column null
        known = {"event_id": e, "event_ts": ts, "event_type": "page_view", "anonymous_id": v, "platform": "web",
                 "event_date": ts.date(), **dict(zip(("session_id", "session_start"), sessions[e] if sessions
                                                     else (None, None), strict=True))}  # fmt: skip
        rows.append(tuple(known.get(col.name) for col in columns))
    return spark.createDataFrame(rows, ", ".join(f"`{col.name}` {col.type}" for col in columns))


def apply(spark, stored, batch_events):
    """Sessionise `batch_events` against `stored` (event_id -> (visitor, ts, session)); returns the stored state
    after writing the batch and updating the rows it changed."""
    existing = None
    if stored:
        existing = frame(
            spark, [(e, v, ts) for e, (v, ts, _) in stored.items()], {e: s for e, (_, _, s) in stored.items()}
        )
    result = sessionise(frame(spark, batch_events), existing, C)
    state = dict(stored)
    for r in result.batch().collect():
        state[r["event_id"]] = (
            r["anonymous_id"],
            r["event_ts"].replace(tzinfo=UTC),
            (r["session_id"], r["session_start"]),
        )
    changed = result.changed().collect()
    for r in changed:
        v, ts, _ = state[r["event_id"]]
        state[r["event_id"]] = (v, ts, (r["session_id"], r["session_start"]))
    return state, {r["event_id"] for r in changed}


def test_a_late_event_joins_sessions_and_a_replaced_version_moves_out_of_its_own(spark):
    at = lambda minutes: T0 + timedelta(minutes=minutes)  # noqa: E731
    first = [("a1", "a", at(0)), ("a2", "a", at(10)), ("a3", "a", at(60)), ("a4", "a", at(70)), ("c1", "c", at(0)),
             ("d1", "d", at(0)), ("d2", "d", at(20))]  # fmt: skip
    state, changed = apply(spark, {}, first)
    assert {e: s for e, (_, _, s) in state.items()} == {
        "a1": ("a1", True), "a2": ("a1", False), "a3": ("a3", True), "a4": ("a3", False), "c1": ("c1", True),
        "d1": ("d1", True), "d2": ("d1", False),
    }  # fmt: skip
    assert not changed
    # a2 (10) -> late (35) -> a3 (60): gaps of 25 minutes, so one session from a1; c continues its own;
    # d1's newer version is at 60: d2 now starts its own session and d1 starts another after it
    state, changed = apply(spark, state, [("late", "a", at(35)), ("c2", "c", at(20)), ("d1", "d", at(60))])
    assert state["late"][2] == ("a1", False) and state["c2"][2] == ("c1", False)
    assert changed == {"a3", "a4", "d2"}  # a3 and a4 get a1's id (a3 no longer starts one); d2 starts one
    assert state["a3"][2] == ("a1", False) and state["a4"][2] == ("a1", False)
    assert state["a1"][2] == ("a1", True) and state["c1"][2] == ("c1", True)
    assert state["d2"][2] == ("d2", True) and state["d1"][2] == ("d1", True)


def test_random_arrival_orders_give_the_sessions_of_all_events_at_once(spark):
    rng = random.Random(3)
    events = []
    for v in range(6):
        t = T0
        for i in range(25):
            t += timedelta(minutes=rng.choice([0, 5, 20, 29, 31, 45, 200]))  # 0: tied times, ordered by id
            events.append((f"v{v}-{i:02d}", f"v{v}", t))
    rng.shuffle(events)
    state: dict = {}
    for start in range(0, len(events), 50):  # three batches, each with events before and between earlier ones
        state, _ = apply(spark, state, events[start : start + 50])
    assert {e: s for e, (_, _, s) in state.items()} == reference(events)


@pytest.mark.e2e
def test_ingest_keeps_sessions_through_a_stop_and_an_older_lake(spark, tmp_path: Path, monkeypatch):
    """Batch 1 lands; silver is then rewritten without session columns (a lake from before them); batch 2 brings a
    late event, a newer version of an event that moves it hours later, and one that moves an event to another
    visitor; it is stopped right after the update of the stored rows it changed, before its own write (the rows it
    replaces are still in silver then); the re-run finishes. Silver's sessions equal the reference over the latest
    version of every event."""
    at = lambda minutes: T0 + timedelta(minutes=minutes)  # noqa: E731
    first = [("a1", "a", at(0)), ("a2", "a", at(10)), ("a3", "a", at(60)), ("b1", "b", at(0)), ("b2", "b", at(45)),
             ("b3", "b", at(50))]  # fmt: skip
    second = [("late", "a", at(35)), ("a2", "a", at(200)), ("b2", "c", at(46))]
    landing = tmp_path / "landing"
    others = [
        f"sources.{s}.path={tmp_path}/elsewhere/*" for s in ("orders", "crm_profiles", "campaign_touches", "social")
    ]
    lake = Lake(spark, lake_settings(tmp_path, f"lake.landing={landing}", *others))

    def land(name: str, events) -> None:
        (landing / "clickstream").mkdir(parents=True, exist_ok=True)
        lines = [json.dumps({"event_id": e, "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "event_type": "page_view",
                             "anon_id": v, "platform": "web"}) for e, v, ts in events]  # fmt: skip
        with gzip.open(landing / "clickstream" / f"{name}.jsonl.gz", "wt") as f:
            f.write("\n".join(lines) + "\n")

    def ingest() -> None:
        run_stage("ingest", StageContext(lake, Run.create(as_of=T0.date(), run_id="sessions"), {}))

    land("one", first)
    ingest()
    ref = lake.ref("silver", "clickstream_events")
    # as a release before sessions (and before `_warnings`) left the table
    lake.overwrite(lake.read(ref).drop("session_id", "session_start", "_warnings"), ref, ["event_date"])
    land("two", second)
    monkeypatch.setenv(ENV, f"{ref}:2")  # 1: the older rows sessionised, 2: the stored rows the batch changes
    with pytest.raises(InjectedFault):
        ingest()
    monkeypatch.delenv(ENV)
    ingest()
    got = {r[0]: (r[1], r[2]) for r in lake.read(ref).select("event_id", "session_id", "session_start").collect()}
    latest = {e: (e, v, ts) for e, v, ts in first + second}  # each event's newer version replaces the older
    assert got == reference(list(latest.values()))
    # a2 moved away: `late` starts a session a3 joins; b2 moved to visitor c: b3 starts its own
    assert got["a3"] == ("late", False) and got["b3"] == ("b3", True) and got["b2"] == ("b2", True)
    assert lake.read(ref).where(F.col("session_id").isNull()).count() == 0
    assert "_warnings" in lake.read(ref).columns
