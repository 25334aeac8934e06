"""Run a contract's expectations on a DataFrame with Great Expectations, count the same rules with Spark
predicates, and decide by the table's policy.

Great Expectations on Spark does not reliably return the failing rows (upstream issues #10701 and #10922), so GE
provides the recorded verdicts and the Spark predicates select the rows. Both counts are kept in
`quality_results`, where a disagreement is visible.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

import great_expectations as gx
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from audiencelake.core.contracts import RULE_FAILURES, Contract, Expectation, spark_type
from audiencelake.core.errors import QualityGateError
from audiencelake.quality.params import resolve_kwargs
from audiencelake.quality.predicates import failing_rows
from audiencelake.quality.suites import build_suite, contract_expectations

UNIQUENESS = ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique")


@dataclass(frozen=True)
class GateResult:
    """The outcome of one validation: recorded rows, and the rows to reject or flag."""

    table: str
    policy: str
    records: list[dict]
    rejects: Column  # every failing rule that sends a row to quarantine (RULE_FAILURES), null when none
    warnings: Column  # every failing rule that only flags a row (RULE_FAILURES), null when none
    failures: Column  # every failing rule, of either kind, in the contract's order (RULE_FAILURES), null when none

    @property
    def blocking(self) -> list[dict]:
        """Failed error-severity results; under the `fail` policy any of them stops the run."""
        return [r for r in self.records if not r["success"] and r["severity"] == "error"]

    def enforce(self) -> None:
        """Raise when the policy is `fail` and an error-severity expectation failed.

        Raises:
            QualityGateError: names the table, each failing expectation, its column, the count and a sample.
        """
        if self.policy != "fail" or not self.blocking:
            return
        lines = [
            f"  {r['expectation']} ({r['expectation_type']}) on column {r['column']}: "
            f"{r['unexpected_count']} unexpected, e.g. {r['unexpected_sample'][:3]}"
            + (f"; error: {r['exception']}" if r["exception"] else "")
            for r in self.blocking
        ]
        raise QualityGateError(f"table '{self.table}' failed its quality gate (policy fail):\n" + "\n".join(lines))


def scope_expectations(c: Contract, scope: str) -> list[Expectation]:
    """The expectations a scope checks: a batch the row-level ones, a whole table all of them."""
    return [e for e in contract_expectations(c) if scope == "table" or e.row_level]


def suite_hash(c: Contract, expectations: list[Expectation], as_of: date) -> str:
    """A hash of the expectations as they are evaluated for `as_of` (kwargs resolved), their severities and the
    table's policy: equal hashes on equal data give equal results."""
    suite = [(e.name, e.expectation, resolve_kwargs(c, e, as_of), e.severity) for e in expectations]
    return hashlib.sha256(json.dumps([c.policy, suite], default=str, sort_keys=True).encode()).hexdigest()[:16]


def recorded(c: Contract, records: list[dict]) -> GateResult:
    """A result made of recorded rows (a whole-table validation carried over), for `enforce`."""
    none = F.lit(None).cast(spark_type(RULE_FAILURES))
    return GateResult(c.table, c.policy, records, none, none, none)


def failure(rule: Column, column: Column, severity: Column) -> Column:
    """One element of RULE_FAILURES."""
    return F.struct(rule.alias("rule"), column.cast("string").alias("column"), severity.alias("severity"))


def _failing(rules: list[tuple[Expectation, Column]]) -> Column:
    """Every rule of `rules` whose predicate holds for the row, in the contract's order; null when none."""
    if not rules:
        return F.lit(None).cast(spark_type(RULE_FAILURES))
    each = [F.when(pred, failure(F.lit(e.name), F.lit(",".join(e.columns) or None), F.lit(e.severity)))
            for e, pred in rules]  # fmt: skip
    failed = F.filter(F.array(*each), lambda f: f.isNotNull())
    return F.when(F.size(failed) > 0, failed).cast(spark_type(RULE_FAILURES))  # the contract's nullability


def _ge_results(c: Contract, df: DataFrame, expectations: list[Expectation], as_of: date) -> dict:
    """GE's result per expectation name: verdicts and counts (`BASIC` without failing values, which
    `_failing_values` takes from the failing rules only)."""
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    name = f"{c.table}_{uuid.uuid4().hex[:8]}"
    batch = (
        context.data_sources.add_spark(name=name)
        .add_dataframe_asset(name=c.table)
        .add_batch_definition_whole_dataframe("batch")
        .get_batch(batch_parameters={"dataframe": df})
    )
    validation = batch.validate(
        build_suite(c, expectations, as_of),
        result_format={"result_format": "BASIC", "partial_unexpected_count": 0},
    )
    return {r.expectation_config.meta["name"]: r for r in validation.results}


def _failing_values(df: DataFrame, exp: Expectation, predicate: Column | None, size: int) -> list:
    """Up to `size` values of a failing rule: of its failing rows (a tuple where it reads several columns), or the
    duplicated keys of a uniqueness rule; none for other table-level rules (a row count selects no values)."""
    columns = [F.col(f"`{n}`") for n in exp.columns]
    if size <= 0 or not columns:
        return []
    if predicate is not None:
        rows = df.where(predicate).select(*columns).limit(size).collect()
    elif exp.expectation in UNIQUENESS:
        rows = df.groupBy(*columns).count().where(F.col("count") > 1).select(*columns).limit(size).collect()
    else:
        return []
    return [r[0] if len(r) == 1 else tuple(r) for r in rows]


def validate(
    c: Contract,
    df: DataFrame,
    *,
    as_of: date,
    run_id: str,
    batch_id: str,
    scope: str,
    sample_size: int = 10,
    table_version: int | None = None,
) -> GateResult:
    """Validate `df` against contract `c`.

    Args:
        c: the table's contract.
        df: rows to validate, with the table's (non-PII) columns.
        as_of: the run date that `{as_of}` in expectation bounds stands for.
        run_id: run id to record.
        batch_id: ingest batch, or `*` for a whole table.
        scope: `batch` (row-level rules, before a merge) or `table` (all rules, on a whole table).
        sample_size: failing values kept per expectation.
        table_version: the Delta version `df` was read at (a whole table), recorded with the results.
    """
    expectations = scope_expectations(c, scope)
    row_level = [e for e in expectations if e.row_level]
    predicates = {e.name: failing_rows(c, e, as_of) for e in row_level}
    # GE counts; the failing values come from the failing rules only (most rules fail no row, and GE would run a
    # query for each rule's values whatever its count)
    ge = _ge_results(c, df, expectations, as_of)
    counts = df.agg(*[F.sum(p.cast("long")).alias(n) for n, p in predicates.items()]).first() if predicates else {}
    failed = [e for e in expectations if (counts[e.name] if e.name in predicates else not ge[e.name].success)]
    samples = {e.name: _failing_values(df, e, predicates.get(e.name), sample_size) for e in failed}
    now = datetime.now(UTC)
    records = []
    for exp in expectations:
        r = ge[exp.name]
        result = r.result or {}
        raised = bool(r.exception_info.get("raised_exception")) if r.exception_info else False
        sample = samples.get(exp.name, [])
        records.append({
            "run_id": run_id, "table": c.table, "scope": scope, "batch_id": batch_id, "expectation": exp.name,
            "expectation_type": exp.expectation, "column": ",".join(exp.columns) or None, "severity": exp.severity,
            "policy": c.policy, "success": bool(r.success), "element_count": result.get("element_count"),
            "unexpected_count": result.get("unexpected_count"),
            "predicate_count": int(counts[exp.name] or 0) if exp.name in predicates else None,
            "unexpected_sample": [str(v) for v in sample[:sample_size]],
            "exception": r.exception_info.get("exception_message") if raised else None, "validated_at": now,
            "table_version": table_version, "suite_hash": suite_hash(c, expectations, as_of),
        })  # fmt: skip
    quarantining = c.policy == "quarantine"
    reject = [(e, predicates[e.name]) for e in row_level if quarantining and e.severity == "error"]
    flag = [(e, predicates[e.name]) for e in row_level if not (quarantining and e.severity == "error")]
    every = [(e, predicates[e.name]) for e in row_level]
    return GateResult(c.table, c.policy, records, _failing(reject), _failing(flag), _failing(every))
