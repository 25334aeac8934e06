"""The global suppression list (ops.suppression): unsubscribes, complaints, do-not-contact and erasure requests.
Entries hold a user id or a salted hash of an email or phone (hashed like silver.crm_profiles), never the raw value."""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import functions as F

from audiencelake.core.errors import AudiencelakeError
from audiencelake.core.lake import Lake, check_schema
from audiencelake.core.pii import normalize_email, normalize_phone, salted_hash, with_salt

REASONS = ("unsubscribe", "complaint", "do_not_contact", "erasure")


def suppress(
    lake: Lake,
    reason: str,
    source: str,
    user_id: str | None = None,
    email: str | None = None,
    phone: str | None = None,
) -> list[str]:
    """Add entries for whichever of user id, email and phone are given; returns their entry keys. An entry that is
    already on the list keeps its first `added_at`.

    Raises:
        AudiencelakeError: the reason is unknown or no identifier is given.
    """
    if reason not in REASONS:
        raise AudiencelakeError(f"suppression reason '{reason}' is not one of {', '.join(REASONS)}")
    if not (user_id or email or phone):
        raise AudiencelakeError("suppression needs a user id, an email or a phone")
    spark, salt = lake.spark, lake.settings.pii_salt()
    raw = spark.createDataFrame([(user_id, email, phone)], "user_id string, email string, phone string")
    hashed = (
        with_salt(raw, salt)
        .select(
            "user_id",
            salted_hash(normalize_email(F.col("email"))).alias("email_hash"),
            salted_hash(normalize_phone(F.col("phone"))).alias("phone_hash"),
        )
        .first()
    )
    for flag, given, kind in (("--email", email, "email_hash"), ("--phone", phone, "phone_hash")):
        if given and not hashed[kind]:
            raise AudiencelakeError(f"suppression {flag} {given!r}: nothing left to hash after normalisation")
    now = datetime.now(UTC)
    entries = [(f"{kind}:{hashed[kind]}", kind, hashed[kind], reason, source, now)
               for kind in ("user_id", "email_hash", "phone_hash") if hashed[kind]]  # fmt: skip
    ref = lake.ref("ops", "suppression")
    lake.ensure(ref)
    df = spark.createDataFrame(entries, lake.read(ref).schema)
    lake.merge_upsert(check_schema(df, "suppression"), ref, ["entry_key"], newer="FALSE")
    return [e[0] for e in entries]
