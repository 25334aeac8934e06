from __future__ import annotations

import re
from pathlib import Path

import pytest

from audiencelake.core.config import load_settings
from audiencelake.core.errors import ConfigError


def _conf(tmp_path: Path, text: str) -> Path:
    (tmp_path / "local.yaml").write_text(text)
    return tmp_path


BASE = "lake: {root: lake, landing: lake/landing}\nmlflow: {tracking_uri: 'sqlite:///x.db'}\n"


@pytest.mark.parametrize("env", ["local", "cluster", "databricks"])
def test_shipped_environments_load(env: str) -> None:
    settings = load_settings(env, environ={})
    assert settings.env == env
    assert {"clickstream", "orders", "crm_profiles", "campaign_touches", "social"} <= set(settings.sources)


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    conf = _conf(tmp_path, BASE + "spark:\n  mastr: local\n")
    with pytest.raises(ConfigError) as err:
        load_settings("local", conf_dir=conf, environ={})
    assert err.value.file == str(conf / "local.yaml")
    assert err.value.key == "spark.mastr"
    assert "Extra inputs are not permitted" in err.value.reason


def test_missing_required_key(tmp_path: Path) -> None:
    conf = _conf(tmp_path, "lake: {root: lake}\nmlflow: {tracking_uri: x}\n")
    with pytest.raises(ConfigError, match=r"local.yaml: lake.landing: Field required"):
        load_settings("local", conf_dir=conf, environ={})


def test_bad_yaml_is_reported_with_file(tmp_path: Path) -> None:
    conf = _conf(tmp_path, "lake: [unclosed\n")
    with pytest.raises(ConfigError, match=r"local.yaml: <yaml>: not valid YAML"):
        load_settings("local", conf_dir=conf, environ={})


def test_wrong_type_in_source(tmp_path: Path) -> None:
    conf = _conf(tmp_path, BASE)
    (conf / "sources.yaml").write_text("sources:\n  orders: {path: x, format: xml, table: orders}\n")
    with pytest.raises(ConfigError) as err:
        load_settings("local", conf_dir=conf, environ={})
    assert err.value.file == str(conf / "sources.yaml")
    assert err.value.key == "sources.orders.format"


def test_env_vars_then_flags_override(tmp_path: Path) -> None:
    conf = _conf(tmp_path, BASE)
    environ = {"AUDIENCELAKE__LAKE__ROOT": "/from/env", "AUDIENCELAKE__SPARK__MASTER": "local[3]"}
    settings = load_settings("local", ["spark.master=local[1]"], conf_dir=conf, environ=environ)
    assert settings.lake.root == "/from/env"
    assert settings.spark.master == "local[1]"


def test_an_override_that_is_not_yaml_is_a_string() -> None:
    settings = load_settings("local", ["sources.orders.path={landing}/x/*.csv", "spark.master=local[1]"], environ={})
    assert settings.sources["orders"].path == "{landing}/x/*.csv"  # a YAML flow mapping would not parse
    assert settings.spark.master == "local[1]"


def test_bad_override_shape() -> None:
    with pytest.raises(ConfigError, match="--set: lake.root: expected section.key=value"):
        load_settings("local", ["lake.root"], environ={})


def test_salt_from_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings("local", environ={})
    monkeypatch.setenv("AUDIENCELAKE_PII_SALT", "from-env")
    assert settings.pii_salt() == "from-env"
    monkeypatch.delenv("AUDIENCELAKE_PII_SALT")
    assert settings.pii_salt() == "local-demo-salt-change-me"
    no_salt = load_settings("cluster", environ={})
    with pytest.raises(ConfigError, match="pii.salt"):
        no_salt.pii_salt()


def test_unsafe_names_are_refused(tmp_path: Path) -> None:
    from audiencelake.core.runs import Run

    with pytest.raises(ConfigError, match="--run-id"):
        Run.create(run_id="x' OR '1'='1")
    with pytest.raises(ConfigError, match="--as-of: 2026-13-01: expected a date"):
        Run.create(as_of="2026-13-01")
    conf = _conf(tmp_path, BASE)
    (conf / "sources.yaml").write_text('sources:\n  "bad name\'": {path: x, format: csv, table: orders}\n')
    with pytest.raises(ConfigError, match="sources"):
        load_settings("local", conf_dir=conf, environ={})


def test_empty_reader_option_is_refused(tmp_path: Path) -> None:
    conf = _conf(tmp_path, BASE)
    (conf / "sources.yaml").write_text(
        "sources:\n  orders: {path: x, format: csv, table: orders, options: {nullValue: null}}\n"
    )
    with pytest.raises(ConfigError, match=r"sources.orders.options: no value for \['nullValue'\]"):
        load_settings("local", conf_dir=conf, environ={})


@pytest.mark.parametrize(
    ("columns", "reason"),
    [
        ("{quantity: 'abs(Quantity'}", r"columns.quantity: not a valid SQL expression"),
        ("{quantity: 'frobnicate(Quantity)'}", r"columns.quantity: unknown function 'frobnicate'"),
        ("{qty: 'abs(Quantity)'}", r"columns.qty: not an input column of contract 'orders'"),
        ("{order_id: Invoice}", r"columns.order_id: also the target of a mapping"),
    ],
)
def test_a_computed_column_is_checked_on_load(tmp_path: Path, columns: str, reason: str) -> None:
    err = _refused(tmp_path, f"format: csv, table: orders, mapping: {{OrderNo: order_id}}, columns: {columns}", reason)
    assert (err.file, err.key) == (str(tmp_path / "sources.yaml"), "sources.orders")


def _refused(tmp_path: Path, source: str, reason: str) -> ConfigError:
    """The error loading settings whose only source, `orders`, is `{path: x, <source>}`; it must match `reason`."""
    conf = _conf(tmp_path, BASE)
    (conf / "sources.yaml").write_text(f"sources:\n  orders: {{path: x, {source}}}\n")
    with pytest.raises(ConfigError, match=reason) as err:
        load_settings("local", conf_dir=conf, environ={})
    return err.value


def test_business_thresholds_are_settings_per_environment_then_source(tmp_path: Path) -> None:
    from datetime import date

    from audiencelake.report.dictionary import table_doc

    conf = _conf(tmp_path, BASE + "quality: {params: {orders: {max_quantity: 5000, max_unit_price: 999}}}\n")
    (conf / "sources.yaml").write_text(
        "sources:\n  shop: {path: x, format: csv, table: orders, params: {max_quantity: 100000}}\n"
    )
    settings = load_settings("local", ["sources.shop.params.earliest_order_date=1997-01-01"], conf_dir=conf, environ={})
    bounds = {
        e.name: (e.kwargs.get("min_value"), e.kwargs.get("max_value")) for e in settings.contract("orders").expectations
    }
    assert bounds["quantity_plausible"] == (1, 100000)  # the source's value over the environment's
    assert bounds["price_not_negative"] == (0, 999)
    assert bounds["order_not_in_future"] == (date(1997, 1, 1), "{as_of}")  # the run sets as_of
    assert "| max_quantity | 1000 | 100000 |" in table_doc(settings.contract("orders"), settings)
    default = {
        e.name: e.kwargs.get("max_value") for e in load_settings("local", environ={}).contract("orders").expectations
    }
    assert default["quantity_plausible"] == 1000

    (conf / "sources.yaml").write_text(
        "sources:\n  shop: {path: x, format: csv, table: orders, params: {max_qty: 1}}\n"
    )
    with pytest.raises(ConfigError, match=r"params: \['max_qty'\] are not parameters of contract 'orders'") as err:
        load_settings("local", conf_dir=conf, environ={})
    assert (err.value.file, err.value.key) == (str(conf / "sources.yaml"), "sources.shop")
    with pytest.raises(ConfigError, match=r"quality: params.crm_profiles: \['max_quantity'\] are not") as err:
        load_settings("local", ["quality.params.crm_profiles.max_quantity=3"], conf_dir=conf, environ={})


@pytest.mark.parametrize(
    ("shape", "reason"),
    [
        ("format: text, separator: ' '", r"names: a text source declares its column names"),
        ("format: text, names: [a, b]", r"either `separator` \(a regular expression\) or `widths`"),
        ("format: text, names: [a, b], widths: [3]", r"widths: 1 widths for 2 names"),
        ("format: text, names: [a, b], separator: '(['", r"separator: not a regular expression"),
        ("format: csv, names: [a, a]", r"names: \['a'\] repeat"),
        ("format: json, widths: [1]", r"separator and widths are for format text, not json"),
    ],
)
def test_a_file_shape_is_checked_on_load(tmp_path: Path, shape: str, reason: str) -> None:
    _refused(tmp_path, f"table: orders, {shape}", reason)


def test_set_reaches_the_domain_files_and_errors_name_the_file(tmp_path: Path) -> None:
    """`--set models.recommendations.history_days=240` is conf/models.yaml's key (it was refused as an unknown key
    of conf/local.yaml); a key of the environment's own section of that name stays the environment's."""
    from audiencelake.audiences.loader import load_audiences
    from audiencelake.core.resources import resource_dir
    from audiencelake.identity.config import load_identity_config
    from audiencelake.models.config import load_models_config
    from audiencelake.tags.loader import load_catalogue

    sets = ["models.recommendations.history_days=240", "models.config=conf/models.yaml",
            "tags.params.active_within_days=45", "audiences.audiences.cross_sell.holdout_pct=20",
            "identity.matching.threshold=0.9", "identity.rebuild=true"]  # fmt: skip
    settings = load_settings("local", sets, environ={"AUDIENCELAKE__MODELS__CHURN__FOLDS": "4"})
    assert settings.models.config == "conf/models.yaml" and settings.identity.rebuild is True
    models = load_models_config(None, None, settings.overrides("models"), settings.overrides("tags"))
    assert (models.recommendations.history_days, models.churn.folds) == (240, 4)
    assert load_catalogue(None, settings.overrides("tags")).params["active_within_days"] == 45
    audiences = load_audiences(None, None, None, settings.overrides("audiences"), settings.overrides("tags"))
    assert audiences.audiences["cross_sell"].holdout_pct == 20
    assert load_identity_config(None, settings.overrides("identity")).matching.threshold == 0.9
    assert load_models_config().recommendations.history_days != 240  # the file itself is unchanged

    bad = load_settings("local", ["models.recommendations.history_dayz=240"], environ={})
    with pytest.raises(ConfigError) as err:
        load_models_config(None, None, bad.overrides("models"))
    assert err.value.file == str(resource_dir("conf") / "models.yaml")
    assert err.value.key == "recommendations.history_dayz"


@pytest.mark.parametrize(
    ("value", "reason"),
    [("earliest_order_date: 1997", "params.earliest_order_date: 1997 is not a bound of type date"),
     ("max_quantity: lots", "params.max_quantity: 'lots' is not a bound of type int"),
     ("max_unit_price: 'x'", "params.max_unit_price: 'x' is not a bound of type decimal(12,2)")],
)  # fmt: skip
def test_a_threshold_of_the_wrong_type_is_refused_on_load(tmp_path: Path, value: str, reason: str) -> None:
    _refused(tmp_path, f"format: csv, table: orders, params: {{{value}}}", re.escape(reason))
