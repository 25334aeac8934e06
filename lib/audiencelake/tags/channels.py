"""Channel rules (`conf/channels.yaml`): where a visit came from, as one Spark SQL expression over the UTM parameters
and the referrer. Loaded and validated without Spark; the tag catalogue adds the expression to a source that sets
`channels:` (a computed column, so the rules stay data and every reader classifies the same way)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from sqlglot import exp

from audiencelake.core.declarative import Strict, read_yaml_mapping, validate
from audiencelake.core.errors import ConfigError
from audiencelake.core.expressions import ExpressionError, parse
from audiencelake.core.sql import sql_literal

READS = ("utm_source", "utm_medium", "utm_campaign", "referrer")  # the columns a source must have
# the referrer's host, lower case, without a leading "www." (try_parse_url: null for text that is not a URL)
REFERRER_HOST = "regexp_replace(lower(try_parse_url(referrer, 'HOST')), '^www[.]', '')"
CHANNEL_NAME = r"^[a-z][a-z0-9_]*$"


class ChannelRule(Strict):
    channel: str = Field(pattern=CHANNEL_NAME)
    when: str


class Journeys(Strict):
    """What a conversion's journey holds (gold.journeys)."""

    window_days: int = Field(90, ge=1)  # conversions of the last window_days up to the run date are attributed
    lookback_days: int = Field(30, ge=1)  # touchpoints up to this many days before a conversion
    # campaign touches that are touchpoints, and the channel of each campaign channel
    touch_types: list[str] = Field(default_factory=lambda: ["send", "open", "click", "impression", "ad_click"])
    touch_channels: dict[str, str] = Field(
        default_factory=lambda: {"email": "email", "sms": "sms_push", "push": "sms_push", "ads": "display"}
    )


class AttributionModels(Strict):
    """Parameters of the rules-based models."""

    half_life_days: float = Field(7.0, gt=0)  # time decay: a touchpoint's weight halves every half_life_days
    position_weights: tuple[float, float, float] = (0.4, 0.2, 0.4)  # first, the middle ones together, last

    @model_validator(mode="after")
    def _sum(self) -> AttributionModels:
        if abs(sum(self.position_weights) - 1) > 1e-9 or min(self.position_weights) < 0:
            raise ValueError(f"position_weights must be >= 0 and sum to 1, not {list(self.position_weights)}")
        return self


class ChannelRules(Strict):
    """The rules in file order (the first that holds wins) and the channel of a visit none matches; the journeys
    and the attribution models over them."""

    default: str = Field(pattern=CHANNEL_NAME)
    rules: list[ChannelRule] = Field(min_length=1)
    journeys: Journeys = Field(default_factory=Journeys)
    attribution: AttributionModels = Field(default_factory=AttributionModels)

    @property
    def channels(self) -> list[str]:
        """Every channel a visit can get, in rule order, the default last."""
        names = [r.channel for r in self.rules]
        return list(dict.fromkeys([*names, self.default]))

    def expression(self) -> str:
        """Spark SQL: the channel of a row with the READS columns (`referrer_host` expanded in place)."""
        cases = " ".join(f"WHEN {_expanded(r.when)} THEN {sql_literal(r.channel)}" for r in self.rules)
        return f"CASE {cases} ELSE {sql_literal(self.default)} END"


def _expanded(text: str) -> str:
    host = parse(REFERRER_HOST).tree

    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and node.name == "referrer_host":
            return host.copy()
        return node

    return f"({parse(text).tree.copy().transform(swap).sql(dialect='spark')})"


def load_channels(path: Path | str) -> ChannelRules:
    """Load and validate channel rules.

    Raises:
        ConfigError: names the file, the key (`rules[i].when`, ...) and the reason.
    """
    file = str(path)
    rules = validate(ChannelRules, read_yaml_mapping(Path(path)), file)
    allowed = {*READS, "referrer_host"}
    for i, rule in enumerate(rules.rules):
        try:
            parsed = parse(rule.when)
        except ExpressionError as exc:
            raise ConfigError(file, f"rules[{i}].when", str(exc)) from None
        if unknown := sorted(parsed.names - allowed):
            reason = f"unknown column {unknown[0]!r}; a rule reads {sorted(allowed)}"
            raise ConfigError(file, f"rules[{i}].when", reason)
        if parsed.params:
            raise ConfigError(file, f"rules[{i}].when", f"a rule takes no parameters (:{sorted(parsed.params)[0]})")
    for name, channel in rules.journeys.touch_channels.items():
        if channel not in rules.channels:
            raise ConfigError(file, f"journeys.touch_channels.{name}", f"{channel!r} is no channel of the rules")
    return rules
