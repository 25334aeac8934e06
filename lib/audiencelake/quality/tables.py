"""Whole-table validation of the silver tables (all expectations, table-level ones included)."""

from __future__ import annotations

from audiencelake.contracts import contracts
from audiencelake.lake import Lake
from audiencelake.quality.gate import validate
from audiencelake.quality.results import write_results
from audiencelake.runs import Run


def validate_tables(lake: Lake, run: Run) -> dict[str, int]:
    """Validate each existing silver table; record results; enforce `fail` policies after recording all.

    Returns:
        {"tables": validated, "failed_expectations": count of unsuccessful results}.

    Raises:
        QualityGateError: a `fail`-policy table broke an error-severity expectation.
    """
    results = []
    for c in contracts().values():
        ref = lake.ref("silver", c.table)
        if c.layer != "silver" or not lake.exists(ref):
            continue
        columns = [f"`{name}`" for name in c.data_columns]
        result = validate(
            c, lake.read(ref).select(*columns), as_of=run.as_of, run_id=run.run_id, batch_id="*", scope="table",
            sample_size=lake.settings.quality.sample_size,
        )  # fmt: skip
        results.append(result)
    # one commit for the run's whole-table results (they replace the same run's earlier ones)
    write_results(lake, [r for x in results for r in x.records], f"run_id = '{run.run_id}' AND scope = 'table'")
    for result in results:
        result.enforce()
    return {"tables": len(results), "failed_expectations": sum(not r["success"] for x in results for r in x.records)}
