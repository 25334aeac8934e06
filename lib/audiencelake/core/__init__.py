"""The platform every package stands on, using no domain package: settings (`config`), the Spark session, the lake
(`lake`, `lake_lock`), runs, errors, fault injection (`failpoints`), step timings (`progress`), the project's files
(`resources`), PII normalisation and hashing (`pii`), SQL literals (`sql`), the declarative files' loader
(`declarative`) and the expectation types (`expectations`)."""
