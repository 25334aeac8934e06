"""ops.stage_inputs: a stage's record of what it read keeps its outputs only for the same inputs, and a record
with other inputs is gone before the stage builds anew (a build stopped part-way leaves no record to trust)."""

from __future__ import annotations

from audiencelake.lake import Lake
from audiencelake.runs import Run
from audiencelake.stage_inputs import library_version, record, unchanged


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
