"""PII normalisation and salted hashing, as Spark column expressions.

The salt reaches a query as a column broadcast from a one-row frame (`with_salt`), never as a literal: Spark prints
literals in every query plan (the UI's SQL tab, event logs, `explain`), which would hand the salt to anyone who can
read them. A one-row frame's plan names its column only.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

SALT = "_pii_salt"


def normalize_email(col: Column) -> Column:
    return F.nullif(F.lower(F.trim(col)), F.lit(""))


def normalize_phone(col: Column) -> Column:
    """Digits only, international form without `+`: `0086 138-1234-5678` and `13812345678` -> `8613812345678`.

    A number written without `+` or `00` that has 11 digits starting with 1 is taken as a Chinese mobile number
    (country code 86); `+1 415 555 0123` stays `14155550123`.
    """
    digits = F.regexp_replace(F.regexp_replace(col, r"[^0-9]", ""), r"^00", "")
    international = F.trim(col).startswith("+") | F.trim(col).startswith("00")
    local_mobile = ~international & (F.length(digits) == 11) & digits.startswith("1")
    return F.nullif(F.when(local_mobile, F.concat(F.lit("86"), digits)).otherwise(digits), F.lit(""))


NORMALIZERS = {"email": normalize_email, "phone": normalize_phone}


def with_salt(df: DataFrame, salt: str) -> DataFrame:
    """`df` with the salt in column `_pii_salt` (drop it once the hashes are made)."""
    return df.crossJoin(F.broadcast(df.sparkSession.createDataFrame([(salt,)], f"{SALT} string")))


def salted_hash(col: Column) -> Column:
    """Hex SHA-256 of salt || value over a frame `with_salt`; null stays null."""
    return F.when(col.isNotNull(), F.sha2(F.concat(F.col(SALT), col), 256))
