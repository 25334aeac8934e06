from __future__ import annotations

import hashlib

import pytest
from pyspark.sql import functions as F

from audiencelake.core.pii import SALT, normalize_email, normalize_phone, salted_hash, with_salt


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+86 138 1234 5678", "8613812345678"),
        ("13812345678", "8613812345678"),
        ("0086-138-1234-5678", "8613812345678"),
        ("(138) 1234-5678", "8613812345678"),
        ("+44 20 7946 0958", "442079460958"),
        ("+1 415 555 0123", "14155550123"),
        ("", None),
        (None, None),
    ],
)
def test_phone_normalisation(spark, raw: str | None, expected: str | None) -> None:
    df = spark.createDataFrame([(raw,)], "p string")
    assert df.select(normalize_phone(F.col("p"))).first()[0] == expected


def test_email_normalisation_and_hash(spark) -> None:
    df = spark.createDataFrame([(" Ann@Example.COM ",), (None,)], "e string")
    rows = with_salt(df, "s1").select(salted_hash(normalize_email(F.col("e"))).alias("h")).collect()
    assert rows[0]["h"] == hashlib.sha256(b"s1ann@example.com").hexdigest()
    assert rows[1]["h"] is None


def test_the_salt_is_in_no_query_plan(spark) -> None:
    """Plans are shown in the Spark UI and written to event logs: the salt must not be a literal in them."""
    df = spark.createDataFrame([("ann@example.com",)], "e string")
    hashed = with_salt(df, "pepper-7Q").select(salted_hash(F.col("e")).alias("h"))
    plans = hashed._jdf.queryExecution().toString()  # parsed, analysed, optimised and physical
    assert SALT in plans and "pepper-7Q" not in plans
    assert hashed.first()["h"] == hashlib.sha256(b"pepper-7Qann@example.com").hexdigest()
    literal = df.select(F.sha2(F.concat(F.lit("pepper-7Q"), F.col("e")), 256))  # what a literal would show
    assert "pepper-7Q" in literal._jdf.queryExecution().toString()
