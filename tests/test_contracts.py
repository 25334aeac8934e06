from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import types as T

from audiencelake.core.contracts import contract, contracts, load_contract, spark_type
from audiencelake.core.errors import ContractError

VALID = """
table: t
layer: silver
description: test
keys: [id]
order_by: ts
columns:
  - {name: id, type: string, nullable: false}
  - {name: ts, type: timestamp, nullable: false}
  - {name: email, type: string, pii: email}
  - {name: price, type: "decimal(12,2)"}
expectations:
  - {name: price_ok, expectation: expect_column_values_to_be_between, kwargs: {column: price, min_value: 0}}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    return path


def test_every_shipped_contract_loads_and_silver_ones_have_keys() -> None:
    found = contracts()
    assert {"clickstream_events", "orders", "crm_profiles", "campaign_touches", "social_interactions"} <= set(found)
    for name, c in found.items():
        if c.layer == "silver":
            assert c.keys and c.order_by and c.source, name


def test_spark_types() -> None:
    assert spark_type("decimal(12,2)") == T.DecimalType(12, 2)
    assert spark_type("array<string>") == T.ArrayType(T.StringType(), True)
    with pytest.raises(ValueError, match="unknown type 'money'"):
        spark_type("money")


def test_schemas_keep_pii_out_of_the_table(tmp_path: Path) -> None:
    c = load_contract(_write(tmp_path, VALID))
    assert c.input_schema().fieldNames() == ["id", "ts", "email", "price"]
    assert c.table_schema().fieldNames() == [
        "id",
        "ts",
        "price",
        "_batch_id",
        "_file",
        "_ingested_at",
        "_record_hash",
        "_warnings",
    ]
    assert c.restricted_schema().fieldNames() == ["id", "email", "ts"]
    assert c.input_schema()["id"].nullable is False


def test_crm_contract_restricts_every_pii_column() -> None:
    crm = contract("crm_profiles")
    assert {c.name for c in crm.pii_columns} == {"first_name", "last_name", "email", "phone"}
    assert not {"first_name", "last_name", "email", "phone"} & set(crm.table_schema().fieldNames())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("keys: [id]", "keys: [nope]"), "keys: unknown column 'nope'"),
        (("column: price,", "column: cost,"), r"expectations\[0\] \(price_ok\): unknown column 'cost'"),
        (("expect_column_values_to_be_between", "expect_magic"), "unsupported expectation 'expect_magic'"),
        (("type: timestamp", "type: instant"), "unknown type 'instant'"),
        (("policy", "policy"), None),
    ],
)
def test_bad_contract_names_file_and_key(tmp_path: Path, change: tuple[str, str], message: str | None) -> None:
    text = VALID.replace(*change)
    if message is None:
        text = text + "policy: sometimes\n"
        message = "policy: Input should be 'fail', 'quarantine' or 'warn'"
    with pytest.raises(ContractError, match=message) as err:
        load_contract(_write(tmp_path, text))
    assert str(tmp_path / "t.yaml") in str(err.value)


def test_unknown_table() -> None:
    with pytest.raises(ContractError, match="no contract for table 'nope'"):
        contract("nope")
