"""The tag catalogue is validated on load, without Spark: errors name the file, the tag and the key."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml

from audiencelake.core.errors import ConfigError
from audiencelake.core.resources import resource_dir
from audiencelake.tags.definitions import dependencies
from audiencelake.tags.loader import load_catalogue

DEFAULT = yaml.safe_load((resource_dir("conf") / "tags.yaml").read_text())
KINDS = {"attribute", "aggregate", "rfm", "preference", "price", "engagement", "lifecycle", "derived"}


def test_default_catalogue_covers_every_kind_with_at_least_40_tags():
    catalogue = load_catalogue()
    assert len(catalogue.tags) >= 40
    assert {t.kind for t in catalogue.tags} == KINDS
    functions = {t.function for t in catalogue.tags if t.function}
    assert functions >= {"count", "sum", "avg", "min", "max", "count_distinct", "first", "last", "share", "ratio", "mode",
                         "top"}  # fmt: skip
    assert all(t.owner and t.description for t in catalogue.tags)


def test_evaluation_order_puts_every_tag_after_what_it_reads():
    catalogue = load_catalogue()
    position = {name: i for i, name in enumerate(catalogue.order)}
    assert position["recency_days"] > position["last_order_date"]
    assert position["rfm_recency_score"] > position["recency_days"]
    assert position["rfm_segment"] > max(position["rfm_recency_score"], position["rfm_frequency_score"])
    assert position["high_value_price_insensitive"] > position["rfm_monetary_score"]


def test_select_keeps_the_dependencies():
    catalogue = load_catalogue().select(["high_value_price_insensitive"])
    assert {t.name for t in catalogue.tags} == {
        "high_value_price_insensitive", "rfm_monetary_score", "spend_365d", "orders_365d",
        "discount_order_share_365d", "discounted_orders_365d",
    }  # fmt: skip


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "tags.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    channels = tmp_path / "channels.yaml"  # the channel rules the clickstream source names, beside the tags file
    if not channels.exists():
        shutil.copy(resource_dir("conf") / "channels.yaml", channels)
    return path


def _tag(data: dict, name: str) -> dict:
    return next(t for t in data["tags"] if t["name"] == name)


def _broken(change) -> dict:
    data = copy.deepcopy(DEFAULT)
    change(data)
    return data


CASES = {
    "channel rules on a table without UTM columns": (
        lambda d: d["sources"]["orders"].update(channels="channels.yaml"),
        "sources.orders.channels",
        "channel rules read 'utm_source', which 'orders' lacks",
    ),
    "a channel the rules never give": (
        lambda d: _tag(d, "channel_mix_90d")["values"].append("television"),
        "tags.channel_mix_90d.values",
        "'television' is no channel of the channel rules",
    ),
    "unknown source": (
        lambda d: _tag(d, "orders_90d").update(source="ordrs"),
        "tags.orders_90d.source",
        "unknown source 'ordrs'",
    ),
    "unknown column": (
        lambda d: _tag(d, "spend_90d").update(column="amount_usd"),
        "tags.spend_90d.column",
        "unknown column 'amount_usd'",
    ),
    "unknown column in a filter": (
        lambda d: _tag(d, "orders_30d").update(filter="line_kind = 'purchase'"),
        "tags.orders_30d.filter",
        "unknown column 'line_kind'",
    ),
    "unknown function": (
        lambda d: _tag(d, "orders_30d").update(function="median"),
        "tags.orders_30d.function",
        "Input should be",
    ),
    "unknown SQL function": (
        lambda d: _tag(d, "engagement_score").update(expression="frobnicate(sessions_30d)"),
        "tags.engagement_score.expression",
        "unknown function 'frobnicate'",
    ),
    "unknown tag": (
        lambda d: _tag(d, "is_buyer").update(expression="last_purchase_date IS NOT NULL"),
        "tags.is_buyer.expression",
        "unknown tag 'last_purchase_date'",
    ),
    "unknown score input": (
        lambda d: _tag(d, "rfm_frequency_score")["score"].update(of="orders_999d"),
        "tags.rfm_frequency_score.score.of",
        "unknown tag 'orders_999d'",
    ),
    "unknown parameter": (
        lambda d: _tag(d, "lifecycle_stage").update(expression="tenure_days < :newbie_days"),
        "tags.lifecycle_stage.expression",
        "unknown parameter ':newbie_days'",
    ),
    "aggregate in an expression": (
        lambda d: _tag(d, "is_buyer").update(expression="max(orders_90d) > 0"),
        "tags.is_buyer.expression",
        "aggregate",
    ),
    "window outside a source": (
        lambda d: _tag(d, "is_buyer").update(expression="lag(orders_90d) OVER (ORDER BY orders_30d) > 0"),
        "tags.is_buyer.expression",
        "window functions",
    ),
    "two mechanisms": (
        lambda d: _tag(d, "orders_90d").update(expression="1"),
        "tags.orders_90d",
        "exactly one of",
    ),
    "unknown table": (
        lambda d: d["sources"]["orders"].update(table="purchases"),
        "sources.orders.table",
        "no silver table 'purchases'",
    ),
    "unknown source column": (
        lambda d: d["sources"]["clickstream"].update(user="visitor_id"),
        "sources.clickstream.user",
        "unknown column 'visitor_id'",
    ),
    "ratio without denominator": (
        lambda d: _tag(d, "refund_rate_365d").pop("denominator"),
        "tags.refund_rate_365d.numerator",
        "required by 'ratio'",
    ),
    "duplicate tag": (
        lambda d: d["tags"].append(dict(_tag(d, "gender"))),
        "tags.gender",
        "defined twice",
    ),
    "bad type": (
        lambda d: _tag(d, "gender").update(type="text"),
        "tags.gender.type",
        "Input should be",
    ),
    "a tag that is not a mapping": (
        lambda d: d["tags"].insert(0, "gender"),
        "tags[0]",
        "expected a mapping",
    ),
    "sources as a list": (
        lambda d: d.update(sources=[d["sources"]["crm"]]),
        "sources",
        "expected a mapping",
    ),
    "reserved name": (
        lambda d: _tag(d, "gender").update(name="as_of"),
        "tags.as_of.name",
        "is a column of gold.user_profile",
    ),
    "clock in an expression": (
        lambda d: _tag(d, "tenure_days").update(expression="datediff(current_date(), signup_date)"),
        "tags.tenure_days.expression",
        "reads the clock, chance or Spark",
    ),
    "chance in a filter": (
        lambda d: _tag(d, "orders_30d").update(filter="rand() < 0.5"),
        "tags.orders_30d.filter",
        "reads the clock, chance or Spark",
    ),
    "score of a string": (
        lambda d: _tag(d, "rfm_frequency_score")["score"].update(of="gender"),
        "tags.rfm_frequency_score.score.of",
        "scores bin numbers",
    ),
    "default of another type": (
        lambda d: _tag(d, "orders_30d").update(default="none"),
        "tags.orders_30d.default",
        "is not a long",
    ),
    "top with the wrong type": (
        lambda d: _tag(d, "top_categories_3").update(type="string"),
        "tags.top_categories_3.type",
        "array<string>",
    ),
    "k outside top": (
        lambda d: _tag(d, "orders_30d").update(k=3),
        "tags.orders_30d.k",
        "only used by function 'top'",
    ),
    "column on share": (
        lambda d: _tag(d, "price_drop_purchase_share_365d").update(column="quantity"),
        "tags.price_drop_purchase_share_365d.column",
        "not used by function 'share'",
    ),
    "no tag reads a source": (
        lambda d: d.update(
            tags=[{"name": "one", "kind": "derived", "type": "int", "expression": "1", "description": "constant"}]
        ),
        "tags",
        "no tag reads a source",
    ),
    "unknown key": (
        lambda d: _tag(d, "gender").update(colour="blue"),
        "tags.gender.colour",
        "Extra inputs are not permitted",
    ),
    "optional tag not read": (
        lambda d: _tag(d, "lifecycle_stage").update(optional=["gender"]),
        "tags.lifecycle_stage.optional",
        "['gender'] are not tags the expression reads",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_catalogue_names_file_tag_and_key(tmp_path, case):
    change, key, reason = CASES[case]
    path = _write(tmp_path, _broken(change))
    with pytest.raises(ConfigError) as err:
        load_catalogue(path)
    assert err.value.file == str(path)
    assert err.value.key == key
    assert reason in err.value.reason


def test_cycle_between_derived_tags_is_reported_with_its_path(tmp_path):
    def cycle(d):
        _tag(d, "is_buyer").update(expression="cart_abandoner_30d")
        _tag(d, "cart_abandoner_30d").update(expression="NOT is_buyer")

    with pytest.raises(ConfigError) as err:
        load_catalogue(_write(tmp_path, _broken(cycle)))
    assert "cycle between derived tags" in err.value.reason
    assert {"is_buyer", "cart_abandoner_30d"} <= set(err.value.reason.split(": ")[1].split(" -> "))
    assert err.value.key in ("tags.is_buyer", "tags.cart_abandoner_30d")


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_catalogue(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tags: [name: x\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_catalogue(bad)


def test_cli_checks_a_catalogue_and_reports_errors_in_one_line(tmp_path, capsys):
    from audiencelake.cli.main import main

    main(["tags", "check"])
    assert f"{len(DEFAULT['tags'])} tags OK" in capsys.readouterr().out
    path = _write(tmp_path, _broken(lambda d: _tag(d, "orders_90d").update(source="ordrs")))
    with pytest.raises(SystemExit) as exit_info:
        main(["tags", "check", "--file", str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}: tags.orders_90d.source: unknown source 'ordrs'")
    assert len(err.splitlines()) == 1


def test_available_drops_the_tags_of_missing_sources_and_what_reads_them():
    """An order log alone: the tags over orders stay; a tag over another source is unavailable, with the table; a
    tag over tags is unavailable when one of them is, with the tag it reads."""
    catalogue = load_catalogue()
    available, why = catalogue.available({"orders"})
    assert why["sessions_30d"] == "source clickstream: silver.clickstream_events does not exist"
    assert why["gender"] == "source crm: silver.crm_profiles does not exist"
    assert why["age_band"] == "reads tag age: silver.crm_profiles does not exist"
    kept = {t.name for t in available.tags}
    assert {"orders_365d", "spend_365d", "recency_days", "rfm_segment"} <= kept
    assert kept.isdisjoint(why) and kept | set(why) == {t.name for t in catalogue.tags}
    assert available.order == [n for n in catalogue.order if n in kept]  # each still after what it reads
    for tag in available.tags:  # nothing kept reads an unavailable tag or source, but as `optional`
        assert {s for s in tag.sources} <= {"orders"}
        assert dependencies(tag, catalogue.parsed) & set(why) <= set(tag.optional or [])
    # the activity tags read the sources there are: days since the last order, lifecycle without 'new' (no CRM)
    assert {"days_since_last_activity", "engagement_score", "lifecycle_stage"} <= kept
    assert available.absent == {"last_seen_date": "date", "last_engaged_date": "date", "sessions_30d": "long",
                                "campaign_clicks_90d": "long", "email_open_rate_90d": "double",
                                "social_actions_90d": "long", "tenure_days": "int"}  # fmt: skip
    assert "lifecycle_stage" in catalogue.available({"crm_profiles"})[1]  # no activity source at all
    assert catalogue.available({s.table for s in catalogue.sources.values()}) == (catalogue, {})


@pytest.mark.parametrize(
    ("rule", "key", "reason"),
    [
        ({"channel": "tv", "when": "utm_channel = 'tv'"}, "rules[0].when", "unknown column 'utm_channel'"),
        ({"channel": "tv", "when": "utm_medium = "}, "rules[0].when", "not a valid SQL expression"),
        ({"channel": "TV ads", "when": "utm_medium = 'tv'"}, "rules.0.channel", "String should match pattern"),
        ({"channel": "tv", "when": "rand() < 0.5"}, "rules[0].when", "re-runs would not agree"),
    ],
)
def test_a_bad_channel_rule_names_the_rules_file_and_the_rule(tmp_path, rule, key, reason):
    rules = yaml.safe_load((resource_dir("conf") / "channels.yaml").read_text())
    rules["rules"].insert(0, rule)
    (tmp_path / "channels.yaml").write_text(yaml.safe_dump(rules))
    with pytest.raises(ConfigError) as err:
        load_catalogue(_write(tmp_path, copy.deepcopy(DEFAULT)))
    assert (err.value.file, err.value.key) == (str(tmp_path / "channels.yaml"), key), err.value
    assert reason in err.value.reason, err.value.reason


def test_channel_rules_give_one_case_expression_in_rule_order():
    """The first rule that holds wins: referrer_host is the referrer's host without www., and the default last."""
    catalogue = load_catalogue()
    text = catalogue.sources["clickstream"].columns["channel"]
    assert text.startswith("CASE WHEN (LOWER(utm_medium) IN ('cpc', 'ppc'") and text.endswith("ELSE 'other' END")
    assert (
        text.index("'paid_search'") < text.index("'social'") < text.index("'organic_search'") < text.index("'direct'")
    )
    assert "TRY_PARSE_URL(REFERRER, 'HOST')" in text.upper() and "referrer_host" not in text
