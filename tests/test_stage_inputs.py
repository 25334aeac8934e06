"""ops.stage_inputs: a stage's record of what it read keeps its outputs only for the same inputs, and a record
with other inputs is gone before the stage builds anew (a build stopped part-way leaves no record to trust)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from audiencelake.core.contracts import contract
from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from audiencelake.core.stage_inputs import fingerprint, library_version, record, unchanged


def test_same_inputs_keep_the_counts_other_inputs_clear_the_record(spark, settings) -> None:
    lake = Lake(spark, settings)
    run = Run.create("2026-10-31", "inputs-1")
    inputs = {"silver": {"orders": 3}, "catalogue": {"tags": ["a"]}, "library": library_version()}
    assert unchanged(lake, "profile", "2026-10-31", inputs) is None  # no table yet
    record(lake, "profile", "2026-10-31", inputs, {"users": 7}, run)
    record(lake, "profile", "2026-10-30", inputs, {"users": 5}, run)
    assert unchanged(lake, "profile", "2026-10-31", {**inputs, "silver": {"orders": 3}}) == {"users": 7}
    assert unchanged(lake, "other", "2026-10-31", inputs) is None
    # a changed catalogue: not kept, and its record is deleted before the build ...
    assert unchanged(lake, "profile", "2026-10-31", {**inputs, "catalogue": {"tags": ["a", "b"]}}) is None
    # ... so going back to the old catalogue after a stopped build does not trust the old record
    assert unchanged(lake, "profile", "2026-10-31", inputs) is None
    assert unchanged(lake, "profile", "2026-10-30", inputs) == {"users": 5}  # other keys keep theirs
    assert library_version().count("+") == 1  # the package version and a hash of its code


def test_stages_record_at_once_and_an_unpartitioned_table_is_partitioned_first(spark, settings) -> None:
    """Score stages run two at a time and record as they end: on one unpartitioned table two replaceWhere writes
    conflict (ConcurrentAppendException) whatever their keys. A table an earlier release created so is rewritten
    partitioned by stage, its rows kept."""
    lake = Lake(spark, settings)
    ref = lake.ref("ops", "stage_inputs")
    run = Run.create("2026-10-31", "inputs-2")
    old = (("profile", "2026-10-31", fingerprint({"v": 0}), '{"v": 0}', '{"users": 7}', "inputs-1", datetime.now(UTC)),)
    lake.overwrite(spark.createDataFrame(old, contract("stage_inputs").table_schema()), ref)  # no partitions
    errors: list[str] = []

    def score(stage: str) -> None:
        try:
            for v in range(2):
                unchanged(lake, stage, "2026-10-31", {"v": v})
                record(lake, stage, "2026-10-31", {"v": v}, {"rows": v}, run)
        except Exception as exc:  # noqa: BLE001  (collected: a thread's exception would vanish)
            errors.append(f"{stage}: {type(exc).__name__}")

    threads = [threading.Thread(target=score, args=(f"score_{m}",)) for m in ("churn", "clv")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert lake.delta(ref).detail().first()["partitionColumns"] == ["stage"]
    assert unchanged(lake, "profile", "2026-10-31", {"v": 0}) == {"users": 7}
    assert unchanged(lake, "score_clv", "2026-10-31", {"v": 1}) == {"rows": 1}
