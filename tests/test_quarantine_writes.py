"""A batch's quarantine write (`ingest/silver.py`): a clean batch makes no commit, unless an earlier run of the same
batch (stopped part-way, or under other rules) left rows for it, which then go."""

from __future__ import annotations

from datetime import UTC, date, datetime

from pyspark.sql import types as T

from audiencelake.core.contracts import RULE_FAILURES, contract
from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from audiencelake.ingest.silver import _write_quarantine

BAD = f"_stage string, _reason string, _rule string, _file string, _raw string, _failures {RULE_FAILURES}"


def test_a_clean_batch_commits_nothing_and_clears_what_an_earlier_run_left(spark, settings) -> None:
    lake = Lake(spark, settings)
    ref, run, c = lake.ref("ops", "quarantine"), Run.create(run_id="q"), contract("orders")
    none = spark.createDataFrame([], BAD)
    one = spark.createDataFrame([("quality", "expectation", "r", "f", "{}", None)], BAD)

    def rows() -> list[tuple]:
        return sorted((r["source"], r["batch_id"], r["rule"]) for r in lake.read(ref).collect())

    _write_quarantine(lake, "orders", c, "b2", run, none, any_bad=False, fresh=False)
    assert not lake.exists(ref)  # nothing to write, nothing to clear: not even an empty table
    _write_quarantine(lake, "orders", c, "b1", run, one, any_bad=True, fresh=True)
    _write_quarantine(lake, "orders", c, "b2", run, none, any_bad=False, fresh=False)
    assert rows() == [("orders", "b1", "r")]
    version = lake.version(ref)
    _write_quarantine(lake, "orders", c, "b2", run, none, any_bad=False, fresh=False)
    _write_quarantine(
        lake, "crm", c, "b1", run, none, any_bad=False, fresh=False
    )  # another source's batch of the same id
    assert lake.version(ref) == version
    # batch b1 again (a run stopped after its quarantine write): the same rows, not twice
    _write_quarantine(lake, "orders", c, "b1", run, one, any_bad=True, fresh=False)
    assert rows() == [("orders", "b1", "r")]
    # batch b1 again, clean this time (the rule was changed): its earlier rows go
    _write_quarantine(lake, "orders", c, "b1", run, none, any_bad=False, fresh=False)
    assert rows() == [] and lake.version(ref) == version + 2


def test_a_quarantine_from_an_earlier_release_gets_the_failures_column(spark, settings) -> None:
    """Written before `failures` existed: the next write adds the column (old rows null), once per lake."""
    lake = Lake(spark, settings)
    ref, run = lake.ref("ops", "quarantine"), Run.create(run_id="q")
    earlier = T.StructType([f for f in contract("quarantine").table_schema().fields if f.name != "failures"])
    row = ("orders", "orders", "silver", "wrong_type", "unit_price", "f", "b0", "{}", "h", "q0", datetime.now(UTC))
    lake.overwrite(spark.createDataFrame([row], earlier), ref)
    bad = spark.createDataFrame([("silver", "wrong_type", "unit_price", "f", "{}", None)], BAD)
    _write_quarantine(lake, "orders", contract("orders"), "b1", run, bad, any_bad=True, fresh=False)
    rows = {r["batch_id"]: r["failures"] for r in lake.read(ref).collect()}
    assert rows == {"b0": None, "b1": [("wrong_type", "unit_price", "error")]}
    assert lake.add_new_columns(ref) == []  # checked once


def test_a_gold_table_from_an_earlier_release_gets_its_new_columns_on_the_next_write(spark, settings) -> None:
    """gold.tag_catalog written before `unavailable` existed: the profile's next write adds it (old rows null)."""
    lake = Lake(spark, settings)
    ref, schema = lake.ref("gold", "tag_catalog"), contract("tag_catalog").table_schema()
    earlier = T.StructType([f for f in schema.fields if f.name != "unavailable"])
    old = ("spend", "d", "aggregate", "orders", "o", "double", "{}", 1, 0.0, 1, 1.0, 1.0, 1.0, None, None)
    lake.overwrite(spark.createDataFrame([(*old, date(2026, 1, 1))], earlier), ref)
    new = spark.createDataFrame([(*old, "silver.orders does not exist", date(2026, 1, 2))], schema)
    lake.replace_where(new, ref, "as_of = DATE'2026-01-02'")
    rows = {r["as_of"]: r["unavailable"] for r in lake.read(ref).collect()}
    assert rows == {date(2026, 1, 1): None, date(2026, 1, 2): "silver.orders does not exist"}
