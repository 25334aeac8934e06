"""Load and validate `conf/audiences.yaml` without Spark: every field a rule names must be a tag of the catalogue or
a model score, every value must have the field's type, audiences may not refer to each other in a cycle, and every
destination must exist and deliver the audience's channel. Errors name the file, `audiences.<name>.<key>` and the
reason."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from audiencelake.audiences.definitions import (
    CHANNELS,
    OPERATORS,
    All,
    Any_,
    Audience,
    Compare,
    Definitions,
    Destination,
    InAudience,
    Not,
    Rule,
    audiences_of,
)
from audiencelake.audiences.fields import SCORE_FIELDS
from audiencelake.core.declarative import Override, read_yaml_mapping, validate, with_overrides
from audiencelake.core.errors import ConfigError
from audiencelake.core.resources import resource_dir
from audiencelake.tags.definitions import NUMERIC_TYPES
from audiencelake.tags.loader import load_catalogue

COMBINATORS = {"all", "any", "not"}
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # audience and destination names end up in paths and predicates
LEAF_OPERATORS = {*OPERATORS, "between", "in", "is_null"}


class _RuleParser:
    """Turns the YAML of one audience's rule into a `Rule`, checking fields and value types."""

    def __init__(
        self, file: str, field_types: dict[str, str], audiences: set[str], unavailable: dict[str, str]
    ) -> None:
        self.file, self.types, self.audiences, self.unavailable = file, field_types, audiences, unavailable

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(self.file, key, reason)

    def parse(self, spec: object, key: str) -> Rule:
        if not isinstance(spec, dict) or not spec:
            raise self.fail(key, f"expected a mapping (a condition, all, any, not or audience), got {spec!r}")
        if "audience" in spec:
            if len(spec) != 1:
                raise self.fail(key, f"'audience' stands alone; also got {sorted(set(spec) - {'audience'})}")
            if spec["audience"] not in self.audiences:
                raise self.fail(f"{key}.audience", f"unknown audience {spec['audience']!r}")
            return InAudience(str(spec["audience"]))
        combinators = COMBINATORS & set(spec)
        if combinators:
            if len(spec) != 1:
                raise self.fail(key, f"{sorted(combinators)[0]!r} stands alone; also got {sorted(set(spec))}")
            ((op, body),) = spec.items()
            if op == "not":
                return Not(self.parse(body, f"{key}.not"))
            if not isinstance(body, list) or not body:
                raise self.fail(f"{key}.{op}", "expected a non-empty list of rules")
            rules = tuple(self.parse(r, f"{key}.{op}[{i}]") for i, r in enumerate(body))
            return All(rules) if op == "all" else Any_(rules)
        return self.compare(spec, key)

    def compare(self, spec: dict, key: str) -> Compare:
        if "field" not in spec:
            raise self.fail(key, f"a condition needs 'field'; got keys {sorted(spec)}")
        field = spec["field"]
        if field not in self.types:
            raise self.fail(f"{key}.field", f"unknown field {field!r}: not a tag of the catalogue nor a model score")
        if field in self.unavailable:
            raise self.fail(f"{key}.field", f"tag {field!r} is unavailable in this lake: {self.unavailable[field]}")
        ops = [k for k in spec if k != "field"]
        if len(ops) != 1 or ops[0] not in LEAF_OPERATORS:
            raise self.fail(key, f"a condition needs exactly one of {sorted(LEAF_OPERATORS)}; got {ops}")
        op, value = ops[0], spec[ops[0]]
        where = f"{key}.{op}"
        if op == "is_null":
            if not isinstance(value, bool):
                raise self.fail(where, f"expected true or false, got {value!r}")
            return Compare(field, op, value)
        if op in ("between", "in"):
            if not isinstance(value, list) or not value or (op == "between" and len(value) != 2):
                raise self.fail(where, "expected [low, high]" if op == "between" else "expected a non-empty list")
            values = tuple(self.typed(field, v, where) for v in value)
            if op == "between" and values[0] > values[1]:
                raise self.fail(where, f"low {values[0]!r} is above high {values[1]!r}")
            return Compare(field, op, values)
        typed = self.typed(field, value, where)
        if self.types[field] == "boolean" and op not in ("eq", "ne"):
            raise self.fail(where, f"{field} is boolean: compare it with eq or ne")
        return Compare(field, op, typed)

    def typed(self, field: str, value: object, where: str):
        kind = self.types[field]
        if kind in NUMERIC_TYPES:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self.fail(where, f"{field} is {kind}: compare it with a number, not {value!r}")
            return value
        if kind == "boolean":
            if not isinstance(value, bool):
                raise self.fail(where, f"{field} is boolean: compare it with true or false, not {value!r}")
            return value
        if kind == "date":
            if isinstance(value, date):
                return value
            try:
                return date.fromisoformat(str(value))
            except ValueError:
                raise self.fail(where, f"{field} is a date: expected YYYY-MM-DD, not {value!r}") from None
        if kind == "string":
            if not isinstance(value, str):
                raise self.fail(where, f"{field} is a string: compare it with text, not {value!r}")
            return value
        raise self.fail(where, f"{field} is {kind}: rules compare only numbers, text, dates and booleans")


def field_types(tags_file: Path | str | None = None, tag_overrides: tuple[Override, ...] = ()) -> dict[str, str]:
    """Every field a rule may read with its type: the tags of the catalogue, then the model scores."""
    tags = {t.name: t.type for t in load_catalogue(tags_file, tag_overrides).tags}
    return tags | {k: v.type for k, v in SCORE_FIELDS.items()}


def load_audiences(
    path: Path | str | None = None,
    tags_file: Path | str | None = None,
    unavailable: dict[str, str] | None = None,
    overrides: tuple[Override, ...] = (),
    tag_overrides: tuple[Override, ...] = (),
) -> Definitions:
    """Load and validate the audience definitions (default `conf/audiences.yaml`); with `unavailable` (tag -> why,
    `Catalogue.available`), a rule on one of those tags is refused too.

    Raises:
        ConfigError: names the file, the key (`audiences.<name>.<key>` or `destinations.<name>.<key>`) and the reason.
    """
    path = Path(path) if path else resource_dir("conf") / "audiences.yaml"
    raw = with_overrides(read_yaml_mapping(path), overrides, str(path))
    return definitions_from(raw, str(path), tags_file, unavailable, tag_overrides)


def definitions_from(
    raw: object,
    file: str,
    tags_file: Path | str | None = None,
    unavailable: dict[str, str] | None = None,
    tag_overrides: tuple[Override, ...] = (),
) -> Definitions:
    """Validate parsed audience definitions (`file` names their origin in errors).

    Raises:
        ConfigError: as `load_audiences`.
    """
    if not isinstance(raw, dict):
        raise ConfigError(file, "<root>", f"expected a mapping, got {type(raw).__name__}")
    if unknown := sorted(set(raw) - {"destinations", "audiences", "opt_out_channels"}):
        raise ConfigError(file, unknown[0], "unknown section; expected destinations, audiences and opt_out_channels")
    for section in ("destinations", "audiences"):
        if not isinstance(raw.get(section), dict) or not raw[section]:
            raise ConfigError(file, section, "expected a non-empty mapping")
    opt_out = _opt_out_channels(file, raw.get("opt_out_channels", []))
    destinations = {}
    for name, spec in raw["destinations"].items():
        if not NAME.fullmatch(str(name)):
            raise ConfigError(
                file, f"destinations.{name}", "use letters, digits and underscores, starting with a letter"
            )
        destinations[name] = validate(Destination, spec, file, f"destinations.{name}")
    audiences = {}
    for name, spec in raw["audiences"].items():
        if not isinstance(spec, dict):
            raise ConfigError(file, f"audiences.{name}", "expected a mapping")
        if not NAME.fullmatch(str(name)):
            raise ConfigError(file, f"audiences.{name}", "use letters, digits and underscores, starting with a letter")
        basis = {"consent": "opt_out"} if spec.get("channel") in opt_out else {}
        audiences[name] = validate(Audience, {**basis, **spec, "name": name}, file, f"audiences.{name}")
    types = field_types(tags_file, tag_overrides)
    parser = _RuleParser(file, types, set(audiences), unavailable or {})
    rules = {name: parser.parse(a.rule_spec, f"audiences.{name}.rule") for name, a in audiences.items()}
    for name, audience in audiences.items():
        _check_audience(file, name, audience, destinations, types)
    order = _dependency_order(file, {name: audiences_of(rule) for name, rule in rules.items()})
    ordered = {name: audiences[name] for name in order}
    return Definitions(file, destinations, ordered, {n: rules[n] for n in order}, types)


def _opt_out_channels(file: str, value: object) -> set[str]:
    """The channels whose audiences default to opt-out consent.

    Raises:
        ConfigError: not a list of known channels.
    """
    if not isinstance(value, list):
        raise ConfigError(file, "opt_out_channels", f"expected a list of channels, got {value!r}")
    for i, channel in enumerate(value):
        if channel not in CHANNELS:
            raise ConfigError(file, f"opt_out_channels[{i}]", f"unknown channel {channel!r}; have {list(CHANNELS)}")
    return set(value)


def _dependency_order(file: str, graph: dict[str, set[str]]) -> list[str]:
    """Audiences after those they refer to, otherwise in file order.

    Raises:
        ConfigError: audiences refer to each other in a cycle.
    """
    order: list[str] = []

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = " -> ".join([*path[path.index(name) :], name])
            raise ConfigError(file, f"audiences.{name}.rule", f"audiences refer to each other in a cycle: {cycle}")
        if name not in order:
            for dep in sorted(graph[name]):
                visit(dep, [*path, name])
            order.append(name)

    for name in graph:
        visit(name, [])
    return order


def _check_audience(
    file: str, name: str, audience: Audience, destinations: dict[str, Destination], types: dict[str, str]
) -> None:
    key = f"audiences.{name}"
    for i, dest in enumerate(audience.destinations):
        if dest not in destinations:
            raise ConfigError(
                file, f"{key}.destinations[{i}]", f"unknown destination {dest!r}; have {sorted(destinations)}"
            )
        if audience.channel not in destinations[dest].channels:
            raise ConfigError(
                file,
                f"{key}.destinations[{i}]",
                f"{dest} delivers {destinations[dest].channels}, not {audience.channel}",
            )
    if audience.top is not None:
        if audience.top.by not in types:
            raise ConfigError(file, f"{key}.top.by", f"unknown field {audience.top.by!r}")
        if types[audience.top.by] not in NUMERIC_TYPES:
            raise ConfigError(file, f"{key}.top.by", f"{audience.top.by} is {types[audience.top.by]}, not a number")
    for list_key in ("export_fields", "reason_fields"):
        for i, field in enumerate(getattr(audience, list_key)):
            if field not in types:
                raise ConfigError(file, f"{key}.{list_key}[{i}]", f"unknown field {field!r}")
