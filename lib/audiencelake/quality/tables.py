"""Whole-table validation of the silver tables (all expectations, table-level ones included)."""

from __future__ import annotations

import logging

from pyspark.sql import functions as F

from audiencelake.core.contracts import contracts
from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from audiencelake.quality.gate import GateResult, recorded, scope_expectations, suite_hash, validate
from audiencelake.quality.results import write_results

log = logging.getLogger(__name__)


def validate_tables(lake: Lake, run: Run) -> dict[str, int]:
    """Validate each existing silver table; record results; enforce `fail` policies after recording all.

    A table whose Delta version and evaluated suite (`suite_hash`) equal those of an earlier run's validation is not
    validated again: that run's results are recorded for this run, with their original time.

    Returns:
        {"tables": validated or carried over, "carried_over": tables not validated again,
        "failed_expectations": count of unsuccessful results}.

    Raises:
        QualityGateError: a `fail`-policy table broke an error-severity expectation.
    """
    tables = []
    for table, c in contracts().items():
        ref = lake.ref("silver", table)
        if c.layer == "silver" and lake.exists(ref):
            c = lake.settings.contract(table)  # the business thresholds in force
            tables.append((c, ref, lake.version(ref), suite_hash(c, scope_expectations(c, "table"), run.as_of)))
    earlier = _earlier_results(lake, {(c.table, version, digest) for c, _, version, digest in tables})
    results: list[GateResult] = []
    carried = 0
    for c, ref, version, digest in tables:
        if (c.table, version, digest) in earlier:
            records = [{**r, "run_id": run.run_id} for r in earlier[c.table, version, digest]]
            log.info("silver.%s: unchanged since its validation at version %d; results carried over", c.table, version)
            results.append(recorded(c, records))
            carried += 1
            continue
        columns = [f"`{name}`" for name in c.data_columns]
        result = validate(
            c, lake.read_version(ref, version).select(*columns), as_of=run.as_of, run_id=run.run_id, batch_id="*",
            scope="table", sample_size=lake.settings.quality.sample_size, table_version=version,
        )  # fmt: skip
        results.append(result)
    # one commit for the run's whole-table results (they replace the same run's earlier ones)
    write_results(lake, [r for x in results for r in x.records], f"run_id = '{run.run_id}' AND scope = 'table'")
    for result in results:
        result.enforce()
    failed = sum(not r["success"] for x in results for r in x.records)
    return {"tables": len(results), "carried_over": carried, "failed_expectations": failed}


def _earlier_results(lake: Lake, wanted: set[tuple[str, int, str]]) -> dict[tuple[str, int, str], list[dict]]:
    """The latest earlier run's whole-table results per (table, version, suite hash) in `wanted`."""
    ref = lake.ref("ops", "quality_results")
    if not wanted or not lake.exists(ref):
        return {}
    results = lake.read(ref)
    if "suite_hash" not in results.columns:  # a lake from before results carried their version and suite
        return {}
    rows = results.where(
        (F.col("scope") == "table")
        & F.col("table").isin(sorted({t for t, _, _ in wanted}))
        & F.col("suite_hash").isin(sorted({h for _, _, h in wanted}))
    ).collect()
    runs: dict[tuple[str, int, str], dict[str, list[dict]]] = {}
    for r in rows:
        key = (r["table"], r["table_version"], r["suite_hash"])
        if key in wanted:
            runs.setdefault(key, {}).setdefault(r["run_id"], []).append(r.asDict())
    return {key: max(by_run.values(), key=lambda records: records[0]["validated_at"]) for key, by_run in runs.items()}
