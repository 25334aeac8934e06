"""Landing files -> bronze (raw + lineage) -> silver (typed, deduplicated, PII hashed) behind the quality gate."""
