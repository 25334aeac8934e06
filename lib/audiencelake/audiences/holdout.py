"""Stable holdout groups: a user's group is a function of (audience salt, user_id) alone, so it stays the same across
runs and audience versions, and every engine that can compute SHA-256 agrees on it."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

BUCKETS = 10_000  # holdout shares are resolved to 0.01 percentage points


def bucket(user_id: Column, salt: str) -> Column:
    """int(sha256(salt + ':' + user_id) hex digits 1-15, base 16) mod 10,000: uniform on 0..9,999."""
    digest = F.sha2(F.concat(F.lit(f"{salt}:"), user_id), 256)
    return F.pmod(F.conv(F.substring(digest, 1, 15), 16, 10).cast("long"), F.lit(BUCKETS))


def group(user_id: Column, salt: str, holdout_pct: float) -> Column:
    """'holdout' for the users whose bucket falls below the holdout share, else 'treatment'."""
    threshold = round(holdout_pct * BUCKETS / 100)
    return F.when(bucket(user_id, salt) < threshold, F.lit("holdout")).otherwise(F.lit("treatment"))
