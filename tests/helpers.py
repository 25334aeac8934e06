"""Small builders shared by unit tests."""

from __future__ import annotations

import sys

import yaml

from audiencelake.core.contracts import Contract
from audiencelake.core.source_settings import SourceSettings

ORDERS_LIKE = """
table: t_orders
layer: silver
description: test table
keys: [order_id]
order_by: ts
policy: quarantine
columns:
  - {name: order_id, type: string, nullable: false}
  - {name: ts, type: timestamp, nullable: false}
  - {name: price, type: "decimal(12,2)", nullable: false}
  - {name: qty, type: int}
  - {name: paid, type: boolean}
  - {name: day, type: date}
  - {name: email, type: string, pii: email}
derived:
  - {name: email_hash, type: string}
  - {name: total, type: "decimal(14,2)", expression: "price * qty"}
expectations:
  - {name: price_ok, expectation: expect_column_values_to_be_between, kwargs: {column: price, min_value: 0}}
  - {name: qty_small, expectation: expect_column_values_to_be_between, severity: warn,
     kwargs: {column: qty, max_value: 10}}
"""


def make_contract(text: str = ORDERS_LIKE, **changes: object) -> Contract:
    data = yaml.safe_load(text)
    data.update(changes)
    return Contract.model_validate(data)


def make_source(**changes: object) -> SourceSettings:
    base = {"path": "unused", "format": "json", "table": "t_orders"}
    return SourceSettings.model_validate({**base, **changes})


def job_script(stage: str) -> str:
    """jobs/<stage>.py, or jobs/<stage>_job.py where <stage> is a standard-library module's name."""
    return f"{stage}_job.py" if stage in sys.stdlib_module_names else f"{stage}.py"
