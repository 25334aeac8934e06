from __future__ import annotations

from datetime import date

import pytest

from audiencelake.core.contracts import Contract
from audiencelake.core.errors import QualityGateError
from audiencelake.quality.gate import validate

RULES = Contract.model_validate({
    "table": "t", "layer": "silver", "description": "x", "keys": ["id"], "order_by": "d", "policy": "quarantine",
    "columns": [
        {"name": "id", "type": "string", "nullable": False}, {"name": "n", "type": "double"},
        {"name": "s", "type": "string"}, {"name": "d", "type": "date"}, {"name": "m", "type": "double"},
    ],
    "expectations": [
        {"name": "n_range", "expectation": "expect_column_values_to_be_between",
         "kwargs": {"column": "n", "min_value": 0, "max_value": 10, "strict_max": True}},
        {"name": "s_set", "expectation": "expect_column_values_to_be_in_set", "kwargs": {"column": "s", "value_set": ["a", "b"]}},
        {"name": "s_not", "expectation": "expect_column_values_to_not_be_in_set", "kwargs": {"column": "s", "value_set": ["zz"]}},
        {"name": "s_re", "expectation": "expect_column_values_to_match_regex", "kwargs": {"column": "s", "regex": "^[a-z]$"}},
        {"name": "s_len", "expectation": "expect_column_value_lengths_to_be_between",
         "kwargs": {"column": "s", "min_value": 1, "max_value": 1}},
        {"name": "d_past", "expectation": "expect_column_values_to_be_between",
         "kwargs": {"column": "d", "max_value": "{as_of}"}, "severity": "warn"},
        {"name": "m_ge_n", "expectation": "expect_column_pair_values_a_to_be_greater_than_b",
         "kwargs": {"column_A": "m", "column_B": "n", "or_equal": True}},
        {"name": "s_present", "expectation": "expect_column_values_to_not_be_null", "kwargs": {"column": "s"}},
    ],
})  # fmt: skip
ROWS = [
    ("1", 5.0, "a", date(2026, 1, 1), 6.0),
    ("2", -1.0, "zz", date(2030, 1, 1), None),
    ("3", 10.0, None, None, 1.0),
    ("4", None, "b", date(2026, 11, 1), 0.0),
    ("5", 3.0, "Q", date(2026, 11, 26), 2.0),
]
SCHEMA = "id string, n double, s string, d date, m double"
AS_OF = date(2026, 11, 25)


def _validate(spark, contract: Contract, scope: str = "batch"):
    df = spark.createDataFrame(ROWS, SCHEMA)
    return df, validate(contract, df, as_of=AS_OF, run_id="r", batch_id="b", scope=scope)


def test_great_expectations_and_predicates_agree_row_by_row(spark) -> None:
    _, result = _validate(spark, RULES)
    by_name = {r["expectation"]: r for r in result.records}
    expected = {"n_range": 2, "s_set": 2, "s_not": 1, "s_re": 2, "s_len": 1, "d_past": 2, "m_ge_n": 2, "s_present": 1}
    for name, count in expected.items():
        assert by_name[name]["unexpected_count"] == count, name
        assert by_name[name]["predicate_count"] == count, name
    assert by_name["id_not_null"]["success"] is True
    # failing values come from the failing rows only (rows 3 and 5 have m < n), and a rule that failed no row has none
    samples = {n: sorted(map(str, by_name[n]["unexpected_sample"])) for n in ("n_range", "m_ge_n", "s_present")}
    assert samples == {"n_range": ["-1.0", "10.0"], "m_ge_n": ["(1.0, 10.0)", "(2.0, 3.0)"], "s_present": ["None"]}
    assert by_name["id_not_null"]["unexpected_sample"] == []


def test_every_failing_rule_of_a_row_is_kept_with_its_columns_and_severity(spark) -> None:
    """As dqx keeps every error and warning of a row: the rules read off the rows by hand, in the contract's order."""
    df, result = _validate(spark, RULES)
    got = {
        r["id"]: (r["rej"], r["warn"], r["all"])
        for r in df.select(
            "id", result.rejects.alias("rej"), result.warnings.alias("warn"), result.failures.alias("all")
        ).collect()
    }

    def rules(*names):
        return [(n, {"m_ge_n": "m,n"}.get(n, n.split("_")[0]), "warn" if n == "d_past" else "error") for n in names]

    expected = {
        "1": (None, None),
        "2": (rules("n_range", "s_set", "s_not", "s_re", "s_len"), rules("d_past")),  # m is null: m_ge_n ignores it
        "3": (rules("n_range", "m_ge_n", "s_present"), None),  # 10.0 with strict_max; a null s fails only s_present
        "4": (None, None),  # n is null: the range and the pair rule ignore the row
        "5": (rules("s_set", "s_re", "m_ge_n"), rules("d_past")),
    }
    for row, (rejects, warnings) in expected.items():
        as_tuples = [None if v is None else [tuple(f) for f in v] for v in got[row]]
        assert as_tuples[:2] == [rejects, warnings], row
        order = [n for n in ("n_range", "s_set", "s_not", "s_re", "s_len", "d_past", "m_ge_n", "s_present")]
        every = sorted((rejects or []) + (warnings or []), key=lambda f: order.index(f[0])) or None
        assert as_tuples[2] == every, row


def test_fail_policy_names_table_column_and_expectation(spark) -> None:
    strict = RULES.model_copy(update={"policy": "fail"})
    _, result = _validate(spark, strict)
    with pytest.raises(QualityGateError) as err:
        result.enforce()
    message = str(err.value)
    assert "table 't'" in message
    assert "n_range (expect_column_values_to_be_between) on column n: 2 unexpected" in message
    assert "d_past" not in message  # warn severity never blocks


def test_table_scope_checks_key_uniqueness(spark) -> None:
    rows = [("1",), ("1",), ("2",)]
    df = spark.createDataFrame(rows, "id string").selectExpr("id", "1.0 as n", "'a' as s", "date'2026-01-01' as d",
                                                             "2.0 as m")  # fmt: skip
    result = validate(RULES, df, as_of=AS_OF, run_id="r", batch_id="*", scope="table")
    keys = next(r for r in result.records if r["expectation"] == "keys_unique")
    assert keys["success"] is False and keys["unexpected_count"] == 2
    assert keys["predicate_count"] is None  # table-level: GE only
    assert keys["unexpected_sample"] == ["1"]  # the duplicated key
