"""Audience definitions (`conf/audiences.yaml`): the typed models. Loading and validation: `audiences.loader`.

A rule is a tree: `Compare` (a field against a value), `InAudience` (membership of another audience of the same
run), and `All` / `Any` / `Not` over rules. The tree renders itself as text (for manifests and previews);
`audiences.rules` compiles it to a Spark column.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from audiencelake.core.declarative import Strict
from audiencelake.core.sql import sql_literal

Channel = Literal["email", "sms", "push", "ads"]
CHANNELS: tuple[str, ...] = ("email", "sms", "push", "ads")
# the legal basis to contact someone on the audience's channel: consent recorded in the CRM (opt-in), or opt-out
# (everyone may be reached unless a CRM record withholds consent or ops.suppression holds them)
ConsentBasis = Literal["recorded", "opt_out"]
OPERATORS = {"eq": "=", "ne": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
Value = bool | int | float | str | date


@dataclass(frozen=True)
class Compare:
    field: str
    op: str  # one of OPERATORS, or between, in, is_null
    value: Value | tuple[Value, ...]

    def text(self) -> str:
        if self.op == "between":
            low, high = self.value
            return f"{self.field} BETWEEN {sql_literal(low)} AND {sql_literal(high)}"
        if self.op == "in":
            return f"{self.field} IN ({', '.join(sql_literal(v) for v in self.value)})"
        if self.op == "is_null":
            return f"{self.field} IS {'' if self.value else 'NOT '}NULL"
        return f"{self.field} {OPERATORS[self.op]} {sql_literal(self.value)}"


@dataclass(frozen=True)
class InAudience:
    audience: str

    def text(self) -> str:
        return f"IN AUDIENCE {self.audience}"


@dataclass(frozen=True)
class All:
    rules: tuple[Rule, ...]

    def text(self) -> str:
        return " AND ".join(_grouped(r) for r in self.rules)


@dataclass(frozen=True)
class Any_:
    rules: tuple[Rule, ...]

    def text(self) -> str:
        return " OR ".join(_grouped(r) for r in self.rules)


@dataclass(frozen=True)
class Not:
    rule: Rule

    def text(self) -> str:
        return f"NOT {_grouped(self.rule)}"


Rule = Compare | InAudience | All | Any_ | Not


def _grouped(rule: Rule) -> str:
    return f"({rule.text()})" if isinstance(rule, All | Any_) else rule.text()


def fields_of(rule: Rule) -> list[str]:
    """The fields a rule reads, in order of appearance, each once."""
    out: list[str] = []
    if isinstance(rule, Compare):
        out.append(rule.field)
    elif isinstance(rule, All | Any_):
        for r in rule.rules:
            out += [f for f in fields_of(r) if f not in out]
    elif isinstance(rule, Not):
        out = fields_of(rule.rule)
    return out


def audiences_of(rule: Rule) -> set[str]:
    """The other audiences a rule refers to."""
    if isinstance(rule, InAudience):
        return {rule.audience}
    if isinstance(rule, All | Any_):
        return set().union(*(audiences_of(r) for r in rule.rules))
    if isinstance(rule, Not):
        return audiences_of(rule.rule)
    return set()


class Destination(Strict):
    """Where an audience goes: a file format and the channels the destination delivers."""

    format: Literal["csv", "parquet", "customer_match"]
    channels: list[Channel] = Field(min_length=1)
    description: str = ""


class FrequencyCap(Strict):
    """Leave out people who had `max_touches` or more sends/impressions on the channel in the last `days` days."""

    max_touches: int = Field(ge=1)
    days: int = Field(ge=1)


class Top(Strict):
    """Keep the highest `by` scores: the first `n`, or the first `pct` percent (ties broken by user_id)."""

    by: str
    n: int | None = Field(default=None, ge=1)
    pct: float | None = Field(default=None, gt=0, le=100)

    @model_validator(mode="after")
    def _one(self) -> Top:
        if (self.n is None) == (self.pct is None):
            raise ValueError("set exactly one of n and pct")
        return self


class Audience(Strict):
    name: str
    description: str
    channel: Channel
    destinations: list[str] = Field(min_length=1)
    holdout_pct: float = Field(ge=0, lt=100)
    holdout_salt: str | None = None  # default: the audience's name, so the groups survive edits of the rule
    frequency_cap: FrequencyCap | None = None
    send_time: bool = False  # add the profile's preferred_hour as send_hour to the exports
    rule_spec: dict = Field(alias="rule")
    top: Top | None = None
    export_fields: list[str] = Field(default_factory=list)
    reason_fields: list[str] = Field(default_factory=list)  # default: the fields of the rule and of `top`
    cost_per_contact: float | None = Field(default=None, ge=0)
    measure_days: int = Field(default=14, ge=1)
    consent: ConsentBasis = "recorded"  # default: `opt_out` for the channels of the file's opt_out_channels

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, arbitrary_types_allowed=True)

    @property
    def salt(self) -> str:
        return self.holdout_salt or self.name

    def fingerprint(self) -> str:
        """A content hash of this definition alone (its description aside; the consent basis only when opt-out, so
        definitions written before it existed keep their versions)."""
        drop = {"description"} | ({"consent"} if self.consent == "recorded" else set())
        payload = json.dumps(self.model_dump(by_alias=True, exclude=drop), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class Definitions:
    """The loaded file: destinations, audiences (in dependency order) and each audience's parsed rule."""

    file: str
    destinations: dict[str, Destination]
    audiences: dict[str, Audience]
    rules: dict[str, Rule]
    field_types: dict[str, str]

    def version(self, name: str) -> str:
        """The audience's version: a hash of its definition and of the versions of the audiences its rule refers
        to, so it changes whenever anything that decides its members or exports changes."""
        parts = [self.audiences[name].fingerprint()]
        parts += [f"{dep}={self.version(dep)}" for dep in sorted(audiences_of(self.rules[name]))]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]

    def rule_text(self, name: str) -> str:
        return self.rules[name].text()

    def reasons(self, name: str) -> list[str]:
        """The fields recorded with each member: `reason_fields`, else the rule's and top's; plus export fields."""
        audience = self.audiences[name]
        out = list(audience.reason_fields) or fields_of(self.rules[name])
        for extra in [*([audience.top.by] if audience.top else []), *audience.export_fields]:
            if extra not in out:
                out.append(extra)
        return out
