"""The settings of landing sources (`conf/sources.yaml`: where files are, their shape, how their columns become a
contract's) and of the contracts' business thresholds (`quality.params`, a source's `params`), each checked against
the contracts on load."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from audiencelake.core.contracts import Contract, Threshold, contract
from audiencelake.core.declarative import Strict
from audiencelake.core.errors import ContractError
from audiencelake.core.expressions import ExpressionError, parse


def _string_map(value: Any) -> Any:
    """YAML scalars -> strings, as Spark settings and reader options want them (`true`, not `True`)."""
    if not isinstance(value, dict):
        return value
    if empty := [str(k) for k, v in value.items() if v is None]:
        raise ValueError(f"no value for {empty}; quote it ('') for an empty string")
    return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}


StringMap = Annotated[dict[str, str], BeforeValidator(_string_map)]


class QualitySettings(Strict):
    sample_size: int = Field(default=10, ge=0, le=1000)
    params: dict[str, dict[str, Threshold]] = Field(
        default_factory=dict, description="table -> contract parameter -> value, for this environment"
    )

    @model_validator(mode="after")
    def _params_known(self) -> QualitySettings:
        for table, values in self.params.items():
            try:
                check_params(contract(table), values, f"params.{table}")
            except ContractError as exc:
                raise ValueError(f"params.{table}: {exc}") from None
        return self


def check_params(c: Contract, values: dict[str, Threshold], where: str) -> None:
    """Raise ValueError when `values` names a parameter `c` does not have, or gives one a value its column's type
    cannot compare with (null: no bound)."""
    if unknown := sorted(set(values) - set(c.params)):
        raise ValueError(f"{where}: {unknown} are not parameters of contract '{c.table}'; known: {sorted(c.params)}")
    for name, value in values.items():
        kind = c.param_type(name)
        try:
            if value is None:
                continue
            if kind in ("date", "timestamp"):
                if not isinstance(value, date):
                    date.fromisoformat(str(value))
            elif kind in ("int", "long") and (isinstance(value, bool) or int(value) != value):
                raise ValueError
            elif kind == "double" or kind.startswith("decimal"):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError
        except (TypeError, ValueError):
            raise ValueError(f"{where}.{name}: {value!r} is not a bound of type {kind}") from None


class SourceSettings(Strict):
    """One landing source: where its files are, how to read them, and how their columns map onto the contract."""

    path: str
    format: Literal["json", "csv", "parquet", "text"]
    table: str
    options: StringMap = Field(default_factory=dict)
    names: list[str] | None = Field(
        default=None, description="the columns of a file without a header (csv, text), in order"
    )
    separator: str | None = Field(default=None, description="text: a regular expression between fields, e.g. \\s+")
    widths: list[Annotated[int, Field(gt=0)]] | None = Field(
        default=None, description="text: the width of each fixed-width column, in characters"
    )
    mapping: dict[str, str] = Field(default_factory=dict, description="file column -> contract column")
    columns: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="contract column -> Spark SQL over the file's columns (a window function too), or a constant",
    )
    timestamp_formats: dict[str, str] = Field(default_factory=dict, description="contract column -> Spark pattern")
    time_zone: str = "UTC"
    params: dict[str, Threshold] = Field(
        default_factory=dict, description="contract parameter -> value for this source's rows (over quality.params)"
    )

    @model_validator(mode="after")
    def _shape(self) -> SourceSettings:
        """A text source declares its column names and exactly one of a separator or column widths."""
        if self.names is not None and len(set(self.names)) != len(self.names):
            raise ValueError(f"names: {sorted({n for n in self.names if self.names.count(n) > 1})} repeat")
        if self.format == "text":
            if not self.names:
                raise ValueError("names: a text source declares its column names")
            if (self.separator is None) == (self.widths is None):
                raise ValueError("a text source gives either `separator` (a regular expression) or `widths`")
            if self.widths is not None and len(self.widths) != len(self.names):
                raise ValueError(f"widths: {len(self.widths)} widths for {len(self.names)} names")
            if self.separator is not None:
                try:
                    re.compile(self.separator)
                except re.error as exc:
                    raise ValueError(f"separator: not a regular expression ({exc}): {self.separator!r}") from None
        elif self.separator is not None or self.widths is not None:
            raise ValueError(f"separator and widths are for format text, not {self.format}")
        elif self.names is not None and self.format != "csv":
            raise ValueError(f"names: for csv and text files without a header, not {self.format}")
        return self

    @model_validator(mode="after")
    def _columns_parse(self) -> SourceSettings:
        """Each computed column parses as one expression, is a column of the table's contract (when it has one)
        and is not also the target of a rename; each parameter is one the contract has."""
        renamed = set(self.mapping.values())
        try:
            c = contract(self.table)
        except ContractError:
            c = None  # an unknown table is reported where the source is used
        known = None if c is None else {col.name for col in c.columns}
        if c is not None:
            check_params(c, self.params, "params")
        for name, value in self.columns.items():
            if known is not None and name not in known:
                raise ValueError(
                    f"columns.{name}: not an input column of contract '{self.table}'; known: {sorted(known)}"
                )
            if name in renamed:
                raise ValueError(f"columns.{name}: also the target of a mapping; give it one way")
            if isinstance(value, str):
                try:
                    parse(value, windows=True)
                except ExpressionError as exc:
                    raise ValueError(f"columns.{name}: {exc}") from None
        return self
