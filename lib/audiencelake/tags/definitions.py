"""Tag definitions (`conf/tags.yaml`): the typed models (loading and validation: `tags.loader`).

A tag is computed one of four ways, chosen by the field it sets:
- `function`: an aggregate over a source's rows in a window ending at the as-of date (count, sum, ..., `top`);
- `expression` with a `source`: a per-user value read from a one-row-per-user source (the CRM profile);
- `expression` without a source: an expression over other tags and `:params` (derived, lifecycle, ...);
- `score` (quantile bins over another tag, against the population) or `segments` (first matching rule).
`kind` is the marketer's category of the tag (attribute, aggregate, rfm, ...); it labels, it does not compute.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from audiencelake.core.declarative import Strict
from audiencelake.core.errors import ConfigError
from audiencelake.core.expressions import Parsed, parse
from audiencelake.tags.channels import ChannelRules

NAME = re.compile(r"[a-z][a-z0-9_]*")
Kind = Literal["attribute", "aggregate", "rfm", "preference", "price", "engagement", "lifecycle", "derived"]
ValueType = Literal["string", "int", "long", "double", "boolean", "date", "array<string>"]
Function = Literal[
    "count", "sum", "avg", "min", "max", "count_distinct", "first", "last", "share", "ratio", "mode", "top"
]
NUMERIC_TYPES = {"int", "long", "double"}
RESERVED = {"user_id", "as_of"}  # columns of gold.user_profile besides the tags


class TagSource(Strict):
    """A silver table as tags see it: who the rows belong to, when they happened, and extra per-row columns."""

    table: str
    user: str
    time: str | None = None  # event time; None for a one-row-per-user table (tags then use `expression`)
    date: str | None = None  # the table's date partition column, filtered alongside `time` to prune files
    where: str | None = None  # rows a profile as of `:as_of` may see, for tables without `time`
    latest_by: str | None = None  # for tables without `time`: the column that picks a user's current row
    columns: dict[str, str] = Field(default_factory=dict)  # name -> expression; window functions allowed
    # how much history (days) before the earliest tag window the `columns` see, so that a row's value does not
    # depend on which tags are in the catalogue; None: all history up to the as-of date
    lookback_days: int | None = Field(None, ge=0)
    # channel rules (a file, relative to the tags file): adds the computed column `channel`, where each row's visit
    # came from by its UTM parameters and referrer (tags.channels)
    channels: str | None = None


class Input(Strict):
    """One source's contribution to a weighted `top` preference."""

    source: str
    filter: str | None = None
    weight: str = "1"


class Score(Strict):
    of: str
    bins: int = Field(5, ge=2, le=10)
    higher_is_better: bool = True
    among: str | None = None  # which users set the cut points (an expression over tags); all by default


class Rule(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_ +-]+$")
    when: str


class Tag(Strict):
    name: str
    description: str
    kind: Kind
    type: ValueType
    owner: str | None = None
    source: str | None = None
    function: Function | None = None
    column: str | None = None
    filter: str | None = None
    window_days: int | None = Field(None, gt=0)
    condition: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    inputs: list[Input] | None = None
    values: list[str] | None = None
    half_life_days: float | None = Field(None, gt=0)
    k: int | None = Field(None, ge=1)  # `top` only; 1 by default
    expression: str | None = None
    score: Score | None = None
    segments: list[Rule] | None = None
    default: str | int | float | bool | None = None
    # tags the expression reads that may be unavailable (their source missing): read as null then, so the tag is
    # computed from the others (`greatest` of the dates there are); unavailable only when every tag it reads is
    optional: list[str] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.fullmatch(value):
            raise ValueError(f"'{value}' is not a tag name (lower case letters, digits and _, from a letter)")
        if value in RESERVED:
            raise ValueError(f"'{value}' is a column of gold.user_profile; choose another tag name")
        return value

    @property
    def mechanism(self) -> str:
        if self.function:
            return "aggregate"
        if self.score:
            return "score"
        if self.segments:
            return "segments"
        return "attribute" if self.source else "expression"

    @property
    def sources(self) -> list[str]:
        if self.function == "top":
            return [i.source for i in self.inputs or []]
        return [self.source] if self.source else []


class Catalogue(Strict):
    """The validated tag catalogue: sources, parameters and tags (in file order; `order` is evaluation order)."""

    file: str
    params: dict[str, str | int | float | bool]
    sources: dict[str, TagSource]
    tags: list[Tag]
    order: list[str]
    parsed: dict[str, Parsed] = Field(default_factory=dict, exclude=True)
    # unavailable tags that available ones read as `optional` (name -> type): null columns when evaluating
    absent: dict[str, str] = Field(default_factory=dict)
    channel_rules: ChannelRules | None = Field(None, exclude=True)  # of the source that sets `channels`

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    def tag(self, name: str) -> Tag:
        return next(t for t in self.tags if t.name == name)

    def expr(self, text: str, windows: bool = False) -> Parsed:
        """The parsed form of an expression of this catalogue (parsed once, at load)."""
        return self.parsed.get(text) or parse(text, windows=windows)

    def select(self, names: list[str]) -> Catalogue:
        """The catalogue restricted to `names` and every tag they depend on (same order).

        Raises:
            ConfigError: a name is not a tag.
        """
        known = {t.name for t in self.tags}
        for name in names:
            if name not in known:
                raise ConfigError(self.file, f"tags.{name}", "no such tag")
        keep, todo = set(), list(names)
        while todo:
            name = todo.pop()
            if name not in keep:
                keep.add(name)
                todo += sorted(dependencies(self.tag(name), self.parsed))
        return self.model_copy(
            update={"tags": [t for t in self.tags if t.name in keep], "order": [n for n in self.order if n in keep]}
        )

    def available(self, tables: set[str]) -> tuple[Catalogue, dict[str, str]]:
        """The catalogue restricted to the tags that can be computed when only the silver `tables` exist, and why
        each other tag cannot: its source's table is missing, or it reads a tag that is unavailable."""
        missing = {name: src.table for name, src in self.sources.items() if src.table not in tables}
        root: dict[str, str] = {}  # tag -> the missing table behind it
        why: dict[str, str] = {}
        for tag in self.evaluation_order():
            reads = dependencies(tag, self.parsed)
            gone_reads = sorted(d for d in reads if d in why)
            required = [d for d in gone_reads if d not in (tag.optional or [])]
            if gone := [s for s in tag.sources if s in missing]:
                root[tag.name] = f"silver.{missing[gone[0]]} does not exist"
                why[tag.name] = f"source {gone[0]}: {root[tag.name]}"
            elif needs := required or (gone_reads if reads and len(gone_reads) == len(reads) else []):
                root[tag.name] = root[needs[0]]
                why[tag.name] = f"reads tag {needs[0]}: {root[tag.name]}"
        if not why:
            return self, {}
        tags, order = [t for t in self.tags if t.name not in why], [n for n in self.order if n not in why]
        absent = {n: self.tag(n).type for t in tags for n in (t.optional or []) if n in why}
        return self.model_copy(update={"tags": tags, "order": order, "absent": absent}), {
            t.name: why[t.name] for t in self.tags if t.name in why
        }

    def evaluation_order(self) -> list[Tag]:
        """Tags so that each comes after the tags it reads."""
        return [self.tag(n) for n in self.order]


def dependencies(tag: Tag, parsed: dict[str, Parsed]) -> set[str]:
    """Tags `tag` reads."""
    if tag.mechanism == "expression":
        return parsed[tag.expression].names
    if tag.mechanism == "score":
        return {tag.score.of} | (parsed[tag.score.among].names if tag.score.among else set())
    if tag.mechanism == "segments":
        return set().union(*(parsed[r.when].names for r in tag.segments))
    return set()
