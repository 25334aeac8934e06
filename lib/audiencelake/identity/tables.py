"""The identity tables of one lake and the run updating them: the explicit input of the graph's reads and writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.core.contracts import contract
from audiencelake.core.lake import Lake, TableRef
from audiencelake.core.runs import Run

SOURCES = ("clickstream_events", "crm_profiles")  # the silver tables identity reads
GRAPH_TABLES = ("edges", "nodes", "persons", "changes", "runs", "match_model")  # identity.identity_<name>


@dataclass(frozen=True)
class IdentityTables:
    lake: Lake
    run: Run
    refs: dict[str, TableRef] = field(init=False)
    map_ref: TableRef = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "refs", {n: self.lake.ref("identity", f"identity_{n}") for n in GRAPH_TABLES})
        object.__setattr__(self, "map_ref", self.lake.ref("ops", "identity_map"))

    def table(self, name: str) -> DataFrame:
        """identity.identity_<name> as it is now (created empty when missing)."""
        ref = self.refs[name]
        self.lake.ensure(ref)
        return self.lake.read(ref)

    def silver(self, table: str, after: datetime | None = None) -> DataFrame:
        """A silver table's rows ingested after `after` (all of them without); no rows, in the contract's schema, for
        a table that does not exist (it is not created: a missing source stays missing for the later stages)."""
        ref = self.lake.ref("silver", table)
        if not self.lake.exists(ref):
            return self.lake.spark.createDataFrame([], contract(table).table_schema())
        df = self.lake.read(ref)
        return df.where(F.col("_ingested_at") > F.lit(after)) if after is not None else df

    def previous_map(self) -> DataFrame | None:
        """The current identity map, or None when there is none in this version's shape (then: rebuild)."""
        if not self.lake.exists(self.map_ref):
            return None
        current = self.lake.read(self.map_ref)
        return current if "node" in current.columns else None

    def watermarks(self) -> dict[str, datetime | None]:
        """Each source's high-water mark: the newest `_ingested_at` a run has read."""
        rows = self.table("runs").groupBy("source").agg(F.max("watermark").alias("w")).collect()
        return {r["source"]: r["w"] for r in rows}
