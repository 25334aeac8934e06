from __future__ import annotations

import hashlib

import pytest
from pyspark.sql import functions as F

from audiencelake.ingest.pii import normalize_email, normalize_phone, salted_hash


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
    rows = df.select(salted_hash(normalize_email(F.col("e")), "s1").alias("h")).collect()
    assert rows[0]["h"] == hashlib.sha256(b"s1ann@example.com").hexdigest()
    assert rows[1]["h"] is None
