"""Load `conf/tags.yaml` into a `Catalogue` and validate it without Spark: sources against the silver contracts,
expressions with sqlglot, tag references, types and cycles. Every error names the file, the key and the reason."""

from __future__ import annotations

from datetime import date
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from audiencelake.core.contracts import contract
from audiencelake.core.declarative import Override, read_yaml, validate, with_overrides
from audiencelake.core.errors import ConfigError, ContractError
from audiencelake.core.expressions import ExpressionError, Parsed, parse
from audiencelake.core.resources import resource_dir
from audiencelake.tags.channels import READS, ChannelRules, load_channels
from audiencelake.tags.definitions import NAME, NUMERIC_TYPES, Catalogue, Tag, TagSource, dependencies

NEEDS_COLUMN = {"sum", "avg", "min", "max", "count_distinct", "first", "last", "mode", "top"}
_SOURCE_FIELDS = {
    "source",
    "column",
    "filter",
    "window_days",
    "condition",
    "numerator",
    "denominator",
    "inputs",
    "values",
}
UNUSED = {  # fields a tag computed one way must leave unset
    "aggregate": {"expression", "score", "segments"},
    "attribute": _SOURCE_FIELDS - {"source"} | {"half_life_days"},
    "expression": _SOURCE_FIELDS | {"half_life_days"},
    "score or segments": _SOURCE_FIELDS | {"half_life_days", "expression"},
}
PYTHON_TYPES = {"string": str, "int": int, "long": int, "double": (int, float), "boolean": bool}
BUILTIN_PARAMS = {"as_of": date(2000, 1, 1)}  # bound per run; the value here only types the name


class _Loader:
    def __init__(self, file: str, raw: dict) -> None:
        self.file, self.raw = file, raw
        self.parsed: dict[str, Parsed] = {}
        self.channels: ChannelRules | None = None  # of the source that sets `channels`

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(self.file, key, reason)

    def expression(self, key: str, text: str, names: set[str], what: str, params: set[str], windows: bool = False):
        try:
            parsed = parse(text, windows=windows)
        except ExpressionError as exc:
            raise self.fail(key, str(exc)) from None
        if unknown := sorted(parsed.names - names):
            raise self.fail(key, f"unknown {what} {unknown[0]!r} in {text!r}; known: {sorted(names)}")
        if unknown := sorted(parsed.params - params):
            raise self.fail(key, f"unknown parameter ':{unknown[0]}' in {text!r}; params: {sorted(params)}")
        self.parsed[text] = parsed

    def model(self, cls, data, key: str):
        return validate(cls, data, self.file, key)

    def load(self) -> Catalogue:
        raw = self.raw
        if not isinstance(raw, dict):
            raise self.fail("<root>", "expected a mapping with params, sources, defaults and tags")
        if extra := sorted(set(raw) - {"params", "sources", "defaults", "tags"}):
            raise self.fail(extra[0], "unknown key; expected params, sources, defaults, tags")
        for key, kind in (("params", dict), ("sources", dict), ("defaults", dict), ("tags", list)):
            if not isinstance(raw.get(key) or kind(), kind):
                raise self.fail(key, f"expected a {'mapping' if kind is dict else 'list'}")
        params = dict(raw.get("params") or {})
        for name in params:
            if not NAME.fullmatch(str(name)) or name in BUILTIN_PARAMS:
                raise self.fail(f"params.{name}", "not a parameter name (or a built-in one: as_of)")
        param_names = set(params) | set(BUILTIN_PARAMS)
        sources = {}
        for name, body in (raw.get("sources") or {}).items():
            if not isinstance(body, dict):
                raise self.fail(f"sources.{name}", "expected a mapping (table, user, time, ...)")
            sources[name] = self.source(name, body, param_names)
        defaults = raw.get("defaults") or {}
        if extra := sorted(set(defaults) - {"owner"}):
            raise self.fail(f"defaults.{extra[0]}", "unknown key; defaults may set: owner")
        tags: list[Tag] = []
        seen: set[str] = set()
        for i, body in enumerate(raw.get("tags") or []):
            if not isinstance(body, dict):
                raise self.fail(f"tags[{i}]", "expected a mapping (name, kind, type, ...)")
            name = body.get("name")
            key = f"tags.{name}" if isinstance(name, str) else f"tags[{i}]"
            tag = self.model(Tag, {"owner": defaults.get("owner"), **body}, key)
            if tag.name in seen:
                raise self.fail(key, "defined twice")
            if not tag.owner:
                raise self.fail(f"{key}.owner", "missing (set it on the tag or in defaults.owner)")
            seen.add(tag.name)
            tags.append(tag)
        if not tags:
            raise self.fail("tags", "no tags defined")
        for tag in tags:
            self.check_tag(tag, sources, seen, param_names)
        by_name = {t.name: t for t in tags}
        for tag in tags:
            self.check_types(tag, by_name)
        if not any(t.sources for t in tags):
            raise self.fail("tags", "no tag reads a source: a profile needs at least one")
        order = self.order(tags)
        return Catalogue(file=self.file, params=params, sources=sources, tags=tags, order=order, parsed=self.parsed,
                         channel_rules=self.channels)  # fmt: skip

    def source(self, name: str, body: dict, params: set[str]) -> TagSource:
        key = f"sources.{name}"
        src = self.model(TagSource, body, key)
        try:
            c = contract(src.table)
        except ContractError:
            raise self.fail(f"{key}.table", f"no silver table '{src.table}' (see schemas/silver/)") from None
        if c.layer != "silver":
            raise self.fail(f"{key}.table", f"'{src.table}' is a {c.layer} table; tags read silver tables")
        columns = set(c.data_columns)
        for field in ("user", "time", "date"):
            value = getattr(src, field)
            if value is not None and value not in columns:
                raise self.fail(f"{key}.{field}", f"unknown column '{value}' in table '{src.table}'")
        for field in ("latest_by", "where") if src.time else ("date",):
            if getattr(src, field) is not None:
                raise self.fail(f"{key}.{field}", f"not used by a source {'with' if src.time else 'without'} `time`")
        if src.time is None and src.latest_by not in columns:
            raise self.fail(f"{key}.latest_by", f"a source without `time` needs a column of '{src.table}' here")
        if src.where:
            self.expression(f"{key}.where", src.where, columns, "column", params)
        if src.channels:
            src = self.with_channels(src, key, columns)
        for col, text in src.columns.items():
            if col in columns:
                raise self.fail(f"{key}.columns.{col}", f"'{col}' is already a column of '{src.table}'")
            self.expression(f"{key}.columns.{col}", text, columns, "column", params, windows=True)
            columns = columns | {col}
        return src

    def with_channels(self, src: TagSource, key: str, columns: set[str]) -> TagSource:
        """The source with the computed column `channel` from its channel rules (a file next to the tags file)."""
        if missing := [c for c in READS if c not in columns]:
            raise self.fail(f"{key}.channels", f"channel rules read {missing[0]!r}, which '{src.table}' lacks")
        if "channel" in src.columns:
            raise self.fail(f"{key}.columns.channel", "set by the source's channel rules (`channels`)")
        self.channels = load_channels(Path(self.file).parent / src.channels)
        return src.model_copy(update={"columns": {"channel": self.channels.expression(), **src.columns}})

    def source_columns(self, sources: dict[str, TagSource], name: str, key: str) -> set[str]:
        if name not in sources:
            raise self.fail(key, f"unknown source '{name}'; sources: {sorted(sources)}")
        return set(contract(sources[name].table).data_columns) | set(sources[name].columns)

    def check_tag(self, tag: Tag, sources: dict[str, TagSource], tag_names: set[str], params: set[str]) -> None:
        key = f"tags.{tag.name}"
        chosen = [f for f in ("function", "expression", "score", "segments") if getattr(tag, f)]
        if len(chosen) != 1:
            raise self.fail(key, f"set exactly one of function, expression, score, segments (has {chosen or 'none'})")
        unused = UNUSED.get(tag.mechanism, UNUSED["score or segments"])
        for field in sorted(unused):
            if getattr(tag, field) is not None:
                raise self.fail(f"{key}.{field}", f"not used by a {tag.mechanism} tag")
        if tag.optional and tag.mechanism != "expression":
            raise self.fail(f"{key}.optional", f"only an expression tag reads tags optionally, not a {tag.mechanism}")
        if tag.mechanism == "aggregate":
            self.check_aggregate(tag, sources, params)
        elif tag.mechanism == "attribute":
            columns = self.source_columns(sources, tag.source, f"{key}.source")
            if sources[tag.source].time is not None:
                raise self.fail(f"{key}.source", f"'{tag.source}' has events; use a function (e.g. last)")
            self.expression(f"{key}.expression", tag.expression, columns, "column", params)
        elif tag.mechanism == "expression":
            self.expression(f"{key}.expression", tag.expression, tag_names - {tag.name}, "tag", params)
            if stray := sorted(set(tag.optional or []) - self.parsed[tag.expression].names):
                raise self.fail(f"{key}.optional", f"{stray} are not tags the expression reads")
        elif tag.mechanism == "score":
            if tag.score.of not in tag_names - {tag.name}:
                raise self.fail(f"{key}.score.of", f"unknown tag '{tag.score.of}'")
            if tag.score.among:
                self.expression(f"{key}.score.among", tag.score.among, tag_names, "tag", params)
        else:
            for i, rule in enumerate(tag.segments):
                self.expression(f"{key}.segments[{i}].when", rule.when, tag_names - {tag.name}, "tag", params)

    def check_aggregate(self, tag: Tag, sources: dict[str, TagSource], params: set[str]) -> None:
        key, fn = f"tags.{tag.name}", tag.function
        if fn == "top":
            if not tag.inputs or not tag.values or not tag.column:
                raise self.fail(key, "function 'top' needs inputs, values and column")
            if tag.source or tag.filter:
                raise self.fail(key, "function 'top' takes source and filter per input")
            for i, inp in enumerate(tag.inputs):
                ikey = f"{key}.inputs[{i}]"
                columns = self.source_columns(sources, inp.source, f"{ikey}.source")
                if sources[inp.source].time is None:
                    raise self.fail(f"{ikey}.source", f"'{inp.source}' has no time column")
                for field in ("filter", "weight"):
                    if getattr(inp, field) is not None:
                        self.expression(f"{ikey}.{field}", getattr(inp, field), columns, "column", params)
                self.expression(f"{key}.column", tag.column, columns, "column", params)
            if tag.column == "channel" and self.channels and (stray := set(tag.values) - set(self.channels.channels)):
                raise self.fail(f"{key}.values", f"{sorted(stray)[0]!r} is no channel of the channel rules; "
                                                 f"they give {self.channels.channels}")  # fmt: skip
            return
        for field in ("inputs", "values", "half_life_days", "k"):
            if getattr(tag, field) is not None:
                raise self.fail(f"{key}.{field}", "only used by function 'top'")
        if fn == "share" and tag.column:
            raise self.fail(f"{key}.column", "not used by function 'share' (it counts rows meeting `condition`)")
        if not tag.source:
            raise self.fail(f"{key}.source", f"function '{fn}' needs a source")
        columns = self.source_columns(sources, tag.source, f"{key}.source")
        if sources[tag.source].time is None:
            raise self.fail(f"{key}.source", f"'{tag.source}' has no time column; use an expression tag")
        if fn in NEEDS_COLUMN and not tag.column:
            raise self.fail(f"{key}.column", f"function '{fn}' needs a column")
        if (fn == "share") != bool(tag.condition):
            raise self.fail(f"{key}.condition", "required by function 'share', and only used by it")
        if (fn == "ratio") != bool(tag.numerator and tag.denominator):
            raise self.fail(f"{key}.numerator", "numerator and denominator: required by 'ratio', only used by it")
        for field in ("column", "filter", "condition", "numerator", "denominator"):
            if getattr(tag, field) is not None:
                self.expression(f"{key}.{field}", getattr(tag, field), columns, "column", params)

    def check_types(self, tag: Tag, by_name: dict[str, Tag]) -> None:
        key = f"tags.{tag.name}"
        if tag.score and by_name[tag.score.of].type not in NUMERIC_TYPES:
            raise self.fail(f"{key}.score.of", f"'{tag.score.of}' is {by_name[tag.score.of].type}; scores bin numbers")
        if tag.score and tag.type not in NUMERIC_TYPES:
            raise self.fail(f"{key}.type", "a score is a number (int, long or double)")
        if tag.segments and tag.type != "string":
            raise self.fail(f"{key}.type", "segments give a string")
        if tag.function == "top" and tag.type != ("string" if (tag.k or 1) == 1 else "array<string>"):
            raise self.fail(f"{key}.type", "'top' gives a string when k is 1, else array<string>")
        if tag.default is not None:
            want = PYTHON_TYPES.get(tag.type)
            wrong = (
                want is None
                or not isinstance(tag.default, want)
                or (isinstance(tag.default, bool) and tag.type != "boolean")
            )
            if wrong:
                raise self.fail(f"{key}.default", f"{tag.default!r} is not a {tag.type}")

    def order(self, tags: list[Tag]) -> list[str]:
        graph = {t.name: dependencies(t, self.parsed) for t in tags}
        try:
            return list(TopologicalSorter(graph).static_order())
        except CycleError as exc:
            cycle = exc.args[1]
            raise self.fail(f"tags.{cycle[0]}", f"cycle between derived tags: {' -> '.join(cycle)}") from None


def load_catalogue(path: Path | str | None = None, overrides: tuple[Override, ...] = ()) -> Catalogue:
    """Load and validate a tag catalogue (default: the project's `conf/tags.yaml`, with `overrides` of its keys).

    Raises:
        ConfigError: names the file, the tag (`tags.<name>.<key>`) or section, and the reason.
    """
    path = Path(path) if path else resource_dir("conf") / "tags.yaml"
    return _Loader(str(path), with_overrides(read_yaml(path), overrides, str(path))).load()
