"""The `quality_results` Delta table: every expectation result of every run."""

from __future__ import annotations

from audiencelake.core.contracts import contract
from audiencelake.core.lake import Lake, check_schema


def write_results(lake: Lake, records: list[dict], replace: str, fresh: bool = False) -> None:
    """Write result rows, replacing earlier rows that match `replace` (a re-run of the same batch or run); `fresh`:
    none can (see `Lake.replace_where`)."""
    if not records:
        return
    schema = contract("quality_results").table_schema()
    df = lake.spark.createDataFrame([tuple(r[f.name] for f in schema.fields) for r in records], schema)
    # mergeSchema: a lake from before `table_version` and `suite_hash` gets the columns
    lake.replace_where(check_schema(df, "quality_results"), lake.ref("ops", "quality_results"), replace, True, fresh)
