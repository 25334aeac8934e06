"""conf/audiences.yaml is validated without Spark: every mistake names the file, the audience and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from audiencelake.audiences.build import skipped_audiences
from audiencelake.audiences.loader import load_audiences
from audiencelake.core.errors import ConfigError
from audiencelake.core.resources import resource_dir

SHIPPED = yaml.safe_load((resource_dir("conf") / "audiences.yaml").read_text())


def test_the_shipped_audiences_load_in_dependency_order():
    definitions = load_audiences()
    names = list(definitions.audiences)
    assert set(names) == {"winback_high_value", "cross_sell", "price_sensitive_promo", "dormant_reactivation",
                          "new_customer_nurture"}  # fmt: skip
    assert names.index("winback_high_value") < names.index("cross_sell")
    assert definitions.rule_text("cross_sell") == (
        "recommendation_count >= 3 AND lifecycle_stage IN ('active', 'new') AND NOT IN AUDIENCE winback_high_value"
    )
    assert definitions.reasons("price_sensitive_promo")[-1] == "propensity_sms"  # the top score is recorded too
    assert "top_recommendation" in definitions.reasons("cross_sell")  # export fields travel with the members


def write(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load(yaml.safe_dump(SHIPPED))
    change(raw)
    path = tmp_path / "audiences.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def rule(raw, name):
    return raw["audiences"][name]["rule"]["all"]


CASES = [
    (lambda r: rule(r, "winback_high_value")[0].update(field="churn_band"),
     "audiences.winback_high_value.rule.all[0].field", "unknown field 'churn_band'"),
    (lambda r: rule(r, "winback_high_value")[2].update(gt="lots"),
     "audiences.winback_high_value.rule.all[2].gt", "clv_expected_value is double: compare it with a number"),
    (lambda r: rule(r, "dormant_reactivation")[0].update({"in": [1, 2]}),
     "audiences.dormant_reactivation.rule.all[0].in", "lifecycle_stage is a string"),
    (lambda r: rule(r, "winback_high_value")[1].update(eq="yes"),
     "audiences.winback_high_value.rule.all[1].eq", "is_buyer is boolean"),
    (lambda r: rule(r, "dormant_reactivation")[1].update(between=[10, 1]),
     "audiences.dormant_reactivation.rule.all[1].between", "low 10 is above high 1"),
    (lambda r: rule(r, "winback_high_value").append({"not": {"audience": "cross_sell"}}),
     "audiences.", "cycle: "),
    (lambda r: rule(r, "cross_sell").append({"audience": "vip"}),
     "audiences.cross_sell.rule.all[3].audience", "unknown audience 'vip'"),
    (lambda r: r["audiences"]["cross_sell"].update(destinations=["carrier_pigeon"]),
     "audiences.cross_sell.destinations[0]", "unknown destination 'carrier_pigeon'"),
    (lambda r: r["audiences"]["cross_sell"].update(destinations=["email_platform"]),
     "audiences.cross_sell.destinations[0]", "email_platform delivers ['email'], not push"),
    (lambda r: r["audiences"]["price_sensitive_promo"]["top"].update(by="lifecycle_stage"),
     "audiences.price_sensitive_promo.top.by", "lifecycle_stage is string, not a number"),
    (lambda r: r["audiences"]["price_sensitive_promo"]["top"].update(pct=10),
     "audiences.price_sensitive_promo.top", "set exactly one of n and pct"),
    (lambda r: r["audiences"]["cross_sell"].update(holdout_pct=120),
     "audiences.cross_sell.holdout_pct", "less than 100"),
    (lambda r: r["audiences"]["cross_sell"].update(chanel="push"),
     "audiences.cross_sell.chanel", "Extra inputs are not permitted"),
    (lambda r: r["audiences"]["cross_sell"].update(export_fields=["email"]),
     "audiences.cross_sell.export_fields[0]", "unknown field 'email'"),
    (lambda r: rule(r, "cross_sell").append({"field": "age", "gte": 18, "lte": 65}),
     "audiences.cross_sell.rule.all[3]", "exactly one of"),
    (lambda r: r.update(opt_out_channels=["ads", "fax"]), "opt_out_channels[1]", "unknown channel 'fax'"),
    (lambda r: r.update(opt_out_channels="ads"), "opt_out_channels", "expected a list of channels"),
    (lambda r: r["audiences"]["cross_sell"].update(consent="assumed"), "audiences.cross_sell.consent", "opt_out"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "key", "reason"), CASES)
def test_a_bad_definition_names_the_file_the_key_and_the_reason(tmp_path, change, key, reason):
    path = write(tmp_path, change)
    with pytest.raises(ConfigError) as err:
        load_audiences(path)
    assert err.value.file == str(path)
    assert err.value.key.startswith(key), err.value.key
    assert reason in err.value.reason, err.value.reason


def test_a_missing_or_broken_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_audiences(tmp_path / "none.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("audiences: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_audiences(broken)


def test_the_version_changes_with_the_rules_it_depends_on_not_with_the_description(tmp_path):
    shipped = load_audiences()
    before = {name: shipped.version(name) for name in shipped.audiences}
    reworded = load_audiences(write(tmp_path, lambda r: r["audiences"]["cross_sell"].update(description="x")))
    assert reworded.version("cross_sell") == before["cross_sell"]
    stricter = load_audiences(write(tmp_path, lambda r: rule(r, "cross_sell")[0].update(gte=5)))
    assert stricter.version("cross_sell") != before["cross_sell"]
    assert stricter.version("winback_high_value") == before["winback_high_value"]
    # cross-sell leaves out win-back members: a new win-back rule is a new cross-sell too
    winback = load_audiences(write(tmp_path, lambda r: rule(r, "winback_high_value")[2].update(gt=50)))
    assert winback.version("cross_sell") != before["cross_sell"]
    assert winback.version("price_sensitive_promo") == before["price_sensitive_promo"]


def test_opt_out_channels_set_the_consent_basis_of_their_audiences_and_only_their_versions(tmp_path):
    """An audience on an opt-out channel is built without recorded consent, so its version changes (a run records
    its basis); the others keep theirs, and without a CRM only the opt-out audiences on channels that need no address
    can be built, each other one with its reason."""
    shipped = load_audiences()
    opted = load_audiences(write(tmp_path, lambda r: r.update(opt_out_channels=["ads", "email"])))
    assert {n: a.consent for n, a in opted.audiences.items() if a.consent == "opt_out"} == {
        "dormant_reactivation": "opt_out", "winback_high_value": "opt_out", "new_customer_nurture": "opt_out"
    }  # fmt: skip
    assert opted.version("dormant_reactivation") != shipped.version("dormant_reactivation")
    assert opted.version("price_sensitive_promo") == shipped.version("price_sensitive_promo")
    own = load_audiences(write(tmp_path, lambda r: r["audiences"]["cross_sell"].update(consent="opt_out")))
    assert own.audiences["cross_sell"].consent == "opt_out"  # an audience may set its basis itself

    skipped = skipped_audiences(opted, list(opted.audiences), {}, has_crm=False)
    assert "dormant_reactivation" not in skipped
    assert skipped["winback_high_value"] == "email needs an address from silver.crm_profiles, which this lake lacks"
    assert skipped["price_sensitive_promo"].startswith("consent to sms is recorded in silver.crm_profiles, which")
    assert skipped["new_customer_nurture"] == skipped["winback_high_value"]
    assert skipped_audiences(shipped, list(shipped.audiences), {}, has_crm=True) == {}
