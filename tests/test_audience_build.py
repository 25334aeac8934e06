"""Building one audience on tiny inline data: consent, suppression (by id or hash) and the frequency cap come before
the rule; nulls fail conditions and their negations; `top` keeps the highest scores; the funnel counts each step."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime

import pytest

from audiencelake.audiences.build import build_one
from audiencelake.audiences.fields import Inputs
from audiencelake.audiences.loader import definitions_from
from audiencelake.audiences.suppression import suppress
from audiencelake.core.errors import AudiencelakeError
from audiencelake.core.lake import Lake, check_schema
from conftest import lake_settings

AS_OF = date(2026, 10, 31)
BASE = "user_id string, lifetime_spend double, city string, preferred_hour int, _consent_email boolean, " \
       "_email_hash string, _phone_hash string, _email_hashes array<string>, _phone_hashes array<string>"  # fmt: skip
PEOPLE = [
    ("u1", 50.0, "Xiamen", 9, False, "h1", None),  # no consent to email
    ("u2", 60.0, "Xiamen", 9, True, "h2new", None),  # suppressed by the email hash of an older, merged record
    ("u3", 70.0, "Xiamen", 9, True, "h3", None),  # two sends in the cap's 7 days
    ("u4", 80.0, "Xiamen", 10, True, "h4", None),  # two sends, but 10 days ago
    ("u5", 5.0, "Xiamen", 9, True, "h5", None),  # spend below the rule's floor
    ("u6", 90.0, None, 9, True, "h6", None),  # city unknown: NOT (city = 'Wuhan') is unknown, so false
    ("u7", 95.0, "Wuhan", 9, True, "h7", None),  # excluded city
    ("u8", 40.0, "Xiamen", 11, True, "h8", None),
    ("u9", 30.0, "Xiamen", 12, True, "h9", None),
    ("u10", 20.0, "Xiamen", 13, True, None, None),  # no email address
    ("u11", 99.0, "Xiamen", 14, True, "h11", None),  # suppressed by user id
]
RAW = {
    "destinations": {"esp": {"format": "csv", "channels": ["email"]}},
    "audiences": {
        "spenders": {
            "description": "test", "channel": "email", "destinations": ["esp"], "holdout_pct": 0,
            "frequency_cap": {"max_touches": 2, "days": 7}, "send_time": True,
            "rule": {"all": [{"field": "lifetime_spend", "gte": 10}, {"not": {"field": "city", "eq": "Wuhan"}}]},
            "top": {"by": "lifetime_spend", "n": 2},
        }
    },
}  # fmt: skip


# every person's CRM email and phone hashes (the merged older record of u2 too)
PEOPLE = [(*p, ["h2", "h2new"] if p[0] == "u2" else [p[5]] if p[5] else [], []) for p in PEOPLE]


def touches(spark):
    rows = [(f"t{i}", user, user, "C1", "email", "send", datetime(*day, 10), "treatment", date(*day))
            for i, (user, day) in enumerate([("u3", (2026, 10, 27)), ("u3", (2026, 10, 30)),
                                             ("u4", (2026, 10, 20)), ("u4", (2026, 10, 21))])]  # fmt: skip
    schema = "touch_id string, customer_id string, user_id string, campaign_id string, channel string, touch_type string, " \
             "touch_ts timestamp, group string, touch_date date"  # fmt: skip
    return spark.createDataFrame(rows, schema)


def suppression(spark):
    rows = [("email_hash:h2", "email_hash", "h2", "complaint", "test", datetime(2026, 10, 1)),
            ("user_id:u11", "user_id", "u11", "unsubscribe", "test", datetime(2026, 10, 1))]  # fmt: skip
    schema = "entry_key string, id_type string, id_value string, reason string, source string, added_at timestamp"
    return spark.createDataFrame(rows, schema)


def test_consent_suppression_and_cap_come_first_then_rule_and_top(spark, tmp_path):
    lake = Lake(spark, lake_settings(tmp_path))
    lake.append(touches(spark), lake.ref("silver", "campaign_touches"))  # the columns the cap reads
    lake.append(check_schema(suppression(spark), "suppression"), lake.ref("ops", "suppression"))
    inputs = Inputs.current(lake)
    definitions = definitions_from(RAW, "test.yaml")
    built = build_one(definitions, "spenders", spark.createDataFrame(PEOPLE, BASE), inputs, "r1", AS_OF)
    assert built.funnel == [
        ("profiled users", 11),
        ("consent to email", 9),  # u1 (no consent) and u10 (no address) out
        ("not suppressed", 7),  # u2 (email hash) and u11 (user id) out
        ("under 2 email touches in 7 days", 6),  # u3 out, u4 stays
        ("lifetime_spend >= 10", 5),  # u5 out
        ("NOT city = 'Wuhan'", 3),  # u6 (null city) and u7 out
        ("top 2 by lifetime_spend", 2),
    ]
    got = {r["user_id"]: r for r in built.members.collect()}
    assert set(got) == {"u4", "u8"}  # the two highest spenders left: 80 and 40
    assert got["u4"]["group"] == "treatment" and got["u4"]["send_hour"] == 10
    assert json.loads(got["u4"]["reasons"]) == {"lifetime_spend": 80.0, "city": "Xiamen"}
    assert (built.treatment, built.holdout) == (2, 0)


def test_suppression_refuses_an_identifier_that_normalises_to_nothing(spark, tmp_path):
    lake = Lake(spark, lake_settings(tmp_path))
    with pytest.raises(AudiencelakeError, match="--email"):
        suppress(lake, "unsubscribe", "test", email="   ")
    with pytest.raises(AudiencelakeError, match="not one of"):
        suppress(lake, "bored", "test", user_id="u1")
    assert suppress(lake, "complaint", "test", user_id="u1", phone="+86 138 0000 0000") == [
        "user_id:u1",
        f"phone_hash:{hashlib.sha256((lake.settings.pii_salt() + '8613800000000').encode()).hexdigest()}",
    ]
    assert lake.read(lake.ref("ops", "suppression")).count() == 2


def test_an_opt_out_channel_reaches_people_without_a_crm_record_but_not_those_who_refused(spark, tmp_path):
    """Opt-out consent: no CRM record (null) reaches, a CRM record that withholds consent does not, and
    suppression still holds."""
    lake = Lake(spark, lake_settings(tmp_path))
    lake.append(check_schema(suppression(spark), "suppression"), lake.ref("ops", "suppression"))
    raw = {"destinations": {"ads": {"format": "parquet", "channels": ["ads"]}}, "opt_out_channels": ["ads"],
           "audiences": {"all": {"description": "test", "channel": "ads", "destinations": ["ads"], "holdout_pct": 0,
                                 "rule": {"field": "lifetime_spend", "gte": 0}}}}  # fmt: skip
    people = [("u1", 1.0, None), ("u2", 1.0, False), ("u3", 1.0, True), ("u11", 1.0, None)]
    base = spark.createDataFrame(
        [(u, s, None, 9, c, None, None, [], []) for u, s, c in people],
        BASE.replace("_consent_email", "_consent_ads"),
    )
    built = build_one(definitions_from(raw, "test.yaml"), "all", base, Inputs.current(lake), "r1", AS_OF)
    assert built.funnel[:3] == [("profiled users", 4), ("consent to ads", 3), ("not suppressed", 2)]
    assert {r["user_id"] for r in built.members.collect()} == {"u1", "u3"}  # u2 refused, u11 suppressed by id
