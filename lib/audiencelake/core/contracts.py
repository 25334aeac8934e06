"""Data contracts: one YAML per table under schemas/, the single source of a table's schema, keys, PII and rules.

Spark StructTypes, Great Expectations suites (`audiencelake.quality.suites`), row predicates
(`audiencelake.quality.predicates`) and the data dictionary are all derived from these objects.
"""

from __future__ import annotations

import re
from datetime import date
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pyspark.sql import types as T

from audiencelake.core.declarative import Strict, read_yaml, validate
from audiencelake.core.errors import ConfigError, ContractError
from audiencelake.core.expectations import EXPECTATION_TYPES
from audiencelake.core.resources import resource_dir

_PRIMITIVES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "int": T.IntegerType(),
    "long": T.LongType(),
    "double": T.DoubleType(),
    "boolean": T.BooleanType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
}
_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
_ARRAY = re.compile(r"^array<(.+)>$")
_STRUCT = re.compile(r"^struct<(.+)>$")
# the rules a row fails, each with the columns it reads and its severity: quarantined rows' `failures` and silver
# rows' `_warnings` (as dqx keeps every error and warning of a row)
RULE_FAILURES = "array<struct<rule:string,column:string,severity:string>>"


def spark_type(type_name: str) -> T.DataType:
    """Map a contract type name (`string`, `decimal(12,2)`, `array<string>`, ...) to a Spark type.

    Raises:
        ValueError: the name is not a supported type.
    """
    name = type_name.strip().lower()
    if name in _PRIMITIVES:
        return _PRIMITIVES[name]
    if match := _DECIMAL.match(name):
        return T.DecimalType(int(match.group(1)), int(match.group(2)))
    if match := _ARRAY.match(name):
        return T.ArrayType(spark_type(match.group(1)), containsNull=True)
    if match := _STRUCT.match(name):  # of primitive fields: struct<name:type,...>
        fields = [part.split(":", 1) for part in match.group(1).split(",")]
        if any(len(f) != 2 for f in fields):
            raise ValueError(f"type '{type_name}': a struct's fields are name:type")
        return T.StructType([T.StructField(n.strip(), spark_type(t), True) for n, t in fields])
    kinds = f"{sorted(_PRIMITIVES)}, decimal(p,s), array<type> or struct<name:type,...>"
    raise ValueError(f"unknown type '{type_name}'; use one of {kinds}")


class Column(Strict):
    name: str
    type: str
    nullable: bool = True
    pii: Literal["email", "phone", "name"] | None = None
    expression: str | None = None  # Spark SQL over the table's columns, for derived columns
    # false: Delta keeps no min/max of the column in its log (raw record text, hashes of people), so deleting a
    # person's rows and vacuuming removes every copy of their values; the log outlives the files.
    stats: bool = True
    description: str = ""

    @model_validator(mode="after")
    def _check_type(self) -> Column:
        try:
            spark_type(self.type)
        except ValueError as exc:
            raise ValueError(f"column '{self.name}': {exc}") from exc
        return self

    def field(self) -> T.StructField:
        return T.StructField(self.name, spark_type(self.type), self.nullable, {"comment": self.description})


class Expectation(Strict):
    name: str
    expectation: str
    kwargs: dict = Field(default_factory=dict)
    severity: Literal["error", "warn"] = "error"

    @property
    def row_level(self) -> bool:
        return EXPECTATION_TYPES[self.expectation].rejects is not None

    @property
    def columns(self) -> list[str]:
        """The columns the expectation reads, in kwargs order."""
        names = [self.kwargs[k] for k in ("column", "column_A", "column_B") if k in self.kwargs]
        return names + list(self.kwargs.get("column_list", []))


Threshold = date | int | float | str | None
_PARAM = re.compile(r"^\{([a-z][a-z0-9_]*)\}$")  # a kwarg that is a parameter: "{max_quantity}"
RUN_PARAMS = ("as_of",)  # parameters each run sets: the run date


def param_name(value: object) -> str | None:
    """The parameter a kwarg's value reads (`"{max_quantity}"` -> `max_quantity`), or None."""
    found = _PARAM.match(value) if isinstance(value, str) else None
    return found[1] if found else None


class Param(Strict):
    """A business threshold an expectation reads (`"{name}"` as a kwarg's whole value), with its default; settings
    set it per environment (`quality.params.<table>.<name>`) or per source (`sources.<source>.params.<name>`)."""

    default: Threshold
    description: str


class Sessions(Strict):
    """How an event table's rows group into sessions, kept at ingest (`ingest/sessions.py`): a visitor's (`by`)
    session starts at their first event or at one more than `gap_minutes` after their previous event (by `time`,
    ties by the key). `date` is the partition column holding the date of `time`: reads of recent rows skip files."""

    by: str
    time: str
    date: str | None = None
    gap_minutes: int = Field(30, gt=0)


SESSION_COLUMNS = {"session_id": "string", "session_start": "boolean"}  # derived columns a `sessions` table has


class Contract(Strict):
    """A table's contract. `columns` are what a source delivers (typed); `derived` are added by the pipeline."""

    table: str
    layer: Literal["bronze", "silver", "gold", "ops", "identity"]
    description: str
    source: str | None = None
    keys: list[str] = Field(default_factory=list)
    order_by: str | None = None
    partition_by: list[str] = Field(default_factory=list)
    # columns the optimize stage Z-orders a partition's files by (the columns reads filter on besides the date)
    cluster_by: list[str] = Field(default_factory=list)
    policy: Literal["fail", "quarantine", "warn"] = "fail"
    tag_columns: bool = False  # the table also has one column per tag of conf/tags.yaml (gold.user_profile)
    columns: list[Column]
    derived: list[Column] = Field(default_factory=list)
    sessions: Sessions | None = None
    expectations: list[Expectation] = Field(default_factory=list)
    params: dict[str, Param] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_references(self) -> Contract:
        names = [c.name for c in self.all_columns]
        if len(names) != len(set(names)):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"columns: duplicate column names {dupes}")
        for field_name, refs in (("keys", self.keys), ("partition_by", self.partition_by),
                                 ("cluster_by", self.cluster_by)):  # fmt: skip
            for ref in refs:
                if ref not in names:
                    raise ValueError(f"{field_name}: unknown column '{ref}'")
        both = sorted(set(self.cluster_by) & set(self.partition_by))
        if both:
            raise ValueError(f"cluster_by: {both} are partition columns (Z-order works within a partition)")
        if self.order_by and self.order_by not in names:
            raise ValueError(f"order_by: unknown column '{self.order_by}'")
        if self.sessions:
            self._check_sessions(names)
        seen: set[str] = set()
        for i, exp in enumerate(self.expectations):
            where = f"expectations[{i}] ({exp.name})"
            if exp.name in seen:
                raise ValueError(f"{where}: duplicate expectation name")
            seen.add(exp.name)
            kind = EXPECTATION_TYPES.get(exp.expectation)
            if kind is None:
                raise ValueError(f"{where}: unsupported expectation '{exp.expectation}'; supported: "
                                 f"{sorted(EXPECTATION_TYPES)}")  # fmt: skip
            if missing := kind.required - set(exp.kwargs):
                raise ValueError(f"{where}: missing kwargs {sorted(missing)}")
            for col in exp.columns:
                if col not in names:
                    raise ValueError(f"{where}: unknown column '{col}'")
                if col in {c.name for c in self.pii_columns}:
                    raise ValueError(f"{where}: column '{col}' is PII; validate its hash instead")
            for key, value in exp.kwargs.items():
                name = param_name(value)
                if name and name not in self.params and name not in RUN_PARAMS:
                    raise ValueError(f"{where}: kwargs.{key} reads parameter '{name}', which `params` lacks")
        return self

    def param_type(self, name: str) -> str:
        """The type of the column whose bound parameter `name` sets (a length bound: int)."""
        for e in self.expectations:
            if any(param_name(v) == name for v in e.kwargs.values()):
                if e.expectation == "expect_column_value_lengths_to_be_between" or "column" not in e.kwargs:
                    return "int"
                return self.column(e.kwargs["column"]).type
        return "string"

    def with_params(self, values: dict[str, Threshold]) -> Contract:
        """This contract with each parameter's value in force (`values`, else its default) in its expectations'
        kwargs; `{as_of}` stays for the run to set.

        Raises:
            ContractError: `values` names a parameter the contract does not have.
        """
        if unknown := sorted(set(values) - set(self.params)):
            raise ContractError(f"contract '{self.table}': unknown parameters {unknown}; known: {sorted(self.params)}")
        force = {name: values.get(name, p.default) for name, p in self.params.items()}

        def resolved(value: object) -> object:
            return force.get(param_name(value) or "", value)

        expectations = [
            e.model_copy(update={"kwargs": {k: resolved(v) for k, v in e.kwargs.items()}}) for e in self.expectations
        ]
        return self.model_copy(update={"expectations": expectations})

    def _check_sessions(self, names: list[str]) -> None:
        s = self.sessions
        for key in ("by", "time", "date"):
            if getattr(s, key) is not None and getattr(s, key) not in names:
                raise ValueError(f"sessions.{key}: unknown column '{getattr(s, key)}'")
        if len(self.keys) != 1:
            raise ValueError(f"sessions: need exactly one key column (a session is named by its first row's key); "
                             f"keys are {self.keys}")  # fmt: skip
        derived = {c.name: c.type for c in self.derived}
        for name, type_name in SESSION_COLUMNS.items():
            if derived.get(name) != type_name:
                raise ValueError(f"sessions: needs a derived column '{name}' of type {type_name}")

    @property
    def all_columns(self) -> list[Column]:
        return [*self.columns, *self.derived]

    @property
    def data_columns(self) -> list[str]:
        """The stored table's columns without lineage: what validation and readers of the data see."""
        return [c.name for c in self.all_columns if not c.pii]

    @property
    def identifier_columns(self) -> list[str]:
        """The input columns that identify something (keys, `*_id` columns, e-mails and phones): normalised at
        ingest. Names are not: a zero-width joiner is part of how some scripts write a name."""
        return [c.name for c in self.columns if c.type == "string" and c.pii != "name"
                and (c.name in self.keys or c.name.endswith("_id") or c.pii)]  # fmt: skip

    @property
    def pii_columns(self) -> list[Column]:
        return [c for c in self.columns if c.pii]

    def column(self, name: str) -> Column:
        for col in self.all_columns:
            if col.name == name:
                return col
        raise ContractError(f"contract '{self.table}': no column '{name}'")

    def input_schema(self) -> T.StructType:
        """The typed record a source delivers (`columns`), PII included."""
        return T.StructType([c.field() for c in self.columns])

    def table_schema(self) -> T.StructType:
        """The stored table: columns without PII, then derived columns, then (silver) lineage columns."""
        fields = [c.field() for c in self.all_columns if not c.pii]
        if self.layer == "silver":
            fields += [
                T.StructField("_batch_id", T.StringType(), False),
                T.StructField("_file", T.StringType(), True),
                T.StructField("_ingested_at", T.TimestampType(), False),
                T.StructField("_record_hash", T.StringType(), False),
                T.StructField("_warnings", spark_type(RULE_FAILURES), True),
            ]
        return T.StructType(fields)

    def stats_columns(self, restricted: bool = False) -> list[str] | None:
        """The columns Delta may keep statistics of (`delta.dataSkippingStatsColumns`), or None for all of them: a
        restricted table's keys and version column; for a table with `stats: false` columns, every other column of
        a type with statistics but the partition columns."""
        if restricted:
            return [f.name for f in self.restricted_schema().fields if not self.column(f.name).pii]
        hidden = {c.name for c in self.all_columns if not c.stats}
        if not hidden:
            return None
        hidden |= set(self.partition_by)  # Delta refuses partition columns here (the log holds their values anyway)
        return [f.name for f in self.table_schema().fields if f.name not in hidden and _has_stats(f.dataType)]

    def restricted_schema(self) -> T.StructType:
        """The PII-restricted table: keys, the PII columns and the version column."""
        keep = [*self.keys, *[c.name for c in self.pii_columns]]
        if self.order_by and self.order_by not in keep:
            keep.append(self.order_by)
        return T.StructType([self.column(n).field() for n in keep])


def _has_stats(data_type: T.DataType) -> bool:
    """Delta keeps min/max statistics of numbers, strings, dates and timestamps (not of booleans, arrays, maps)."""
    return isinstance(data_type, T.NumericType | T.StringType | T.DateType | T.TimestampType | T.TimestampNTZType)


def load_contract(path: Path) -> Contract:
    """Load and validate one contract file.

    Raises:
        ContractError: the file is not valid YAML or breaks the contract rules; the message names file and key.
    """
    try:
        return validate(Contract, read_yaml(path), str(path))
    except ConfigError as exc:
        raise ContractError(str(exc)) from None


@cache
def _load_all(folder: str) -> dict[str, Contract]:
    contracts: dict[str, Contract] = {}
    for path in sorted(Path(folder).rglob("*.yaml")):
        contract = load_contract(path)
        if contract.table != path.stem:
            raise ContractError(f"{path}: table: '{contract.table}' does not match the file name '{path.stem}'")
        contracts[contract.table] = contract
    return contracts


def contracts(folder: Path | None = None) -> dict[str, Contract]:
    """All contracts under `folder` (default: the project's schemas/), by table name."""
    return _load_all(str(folder or resource_dir("schemas")))


def contract(table: str, folder: Path | None = None) -> Contract:
    """The contract of one table.

    Raises:
        ContractError: no contract has that name.
    """
    found = contracts(folder)
    if table not in found:
        raise ContractError(f"no contract for table '{table}' under schemas/; known: {sorted(found)}")
    return found[table]
