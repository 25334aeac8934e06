"""Where tables live and the few ways they are written. Local: path-based Delta tables under `lake.root`;
with `lake.catalog` set (Databricks/Unity Catalog): three-level names `<catalog>.<schema>.<table>`, the schema of
a layer from `lake.schemas` (default: the layer's name)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from delta.tables import DeltaTable
from py4j.protocol import Py4JError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from audiencelake.core.config import Settings
from audiencelake.core.contracts import contract, contracts
from audiencelake.core.errors import ContractError
from audiencelake.core.failpoints import reached

RESTRICTED = "silver_restricted"
WORK = "work"


@dataclass(frozen=True)
class TableRef:
    layer: str
    name: str
    location: str  # a path, or a catalog table name
    by_name: bool

    def __str__(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def sql(self) -> str:
        """The table's name in SQL: its catalog name, or ``delta.`path` ``."""
        return self.location if self.by_name else f"delta.`{self.location}`"


def tables_on_disk(settings: Settings, layer: str) -> set[str] | None:
    """The Delta tables of a layer, found without Spark (folders holding a `_delta_log`), or None when the lake is
    not on this machine's file system (tables in a catalog, or a root such as s3:// or dbfs:/)."""
    root = settings.lake_root
    if settings.lake.catalog or (re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", root) and not root.startswith("file:")):
        return None
    folder = Path(root.removeprefix("file:")) / layer
    return {p.parent.name for p in folder.glob("*/_delta_log")} if folder.is_dir() else set()


class Lake:
    """Table locations and Delta reads/writes for one lake."""

    def __init__(self, spark: SparkSession, settings: Settings) -> None:
        self.spark, self.settings = spark, settings
        self._existing: set[str] = set()  # tables seen to exist: a Delta table is never removed while a run holds it
        self._current: set[str] = set()  # tables seen to hold every column of their contract

    def ref(self, layer: str, name: str) -> TableRef:
        if self.settings.lake.catalog:
            schema = self.settings.lake.schemas.get(layer, layer)
            return TableRef(layer, name, f"{self.settings.lake.catalog}.{schema}.{name}", True)
        return TableRef(layer, name, f"{self.settings.lake_root}/{layer}/{name}", False)

    def table_names(self) -> list[tuple[str, str]]:
        """(layer, name) of every table the lake may hold: bronze per source, each contract's table, the restricted
        twin of each contract with PII columns, and the work tables there are."""
        names = [("bronze", s) for s in self.settings.sources]
        for c in contracts().values():
            if c.layer != "bronze":
                names.append((c.layer, c.table))
            if c.pii_columns:
                names.append((RESTRICTED, f"{c.table}_pii"))
        return names + [(WORK, name) for name in self._work_tables()]

    def _work_tables(self) -> list[str]:
        """The intermediate tables stages keep between runs (such as the profile's aggregates per date)."""
        if self.settings.lake.catalog:
            schema = f"{self.settings.lake.catalog}.{self.settings.lake.schemas.get(WORK, WORK)}"
            if not self.spark.catalog.databaseExists(schema):
                return []
            return sorted(t.name for t in self.spark.catalog.listTables(schema))
        folder = Path(self.settings.lake_root) / WORK
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def exists(self, ref: TableRef) -> bool:
        """Whether the table exists; asked of the catalog or the file system once per table and lake (each question
        costs a Delta log lookup, and a stage asks about the same tables many times)."""
        if ref.location in self._existing:
            return True
        if ref.by_name:
            found = self.spark.catalog.tableExists(ref.location)
        else:
            found = DeltaTable.isDeltaTable(self.spark, ref.location)
        if found:
            self._existing.add(ref.location)
        return found

    def read(self, ref: TableRef) -> DataFrame:
        reader = self.spark.read.format("delta")
        return reader.table(ref.location) if ref.by_name else reader.load(ref.location)

    def read_version(self, ref: TableRef, version: int) -> DataFrame:
        """The table as it was at Delta `version` (time travel)."""
        reader = self.spark.read.format("delta").option("versionAsOf", version)
        return reader.table(ref.location) if ref.by_name else reader.load(ref.location)

    def delta(self, ref: TableRef) -> DeltaTable:
        return (
            DeltaTable.forName(self.spark, ref.location)
            if ref.by_name
            else DeltaTable.forPath(self.spark, ref.location)
        )

    def properties(self, ref: TableRef) -> dict[str, str]:
        """The table's Delta table properties."""
        return self.delta(ref).detail().select("properties").first()[0] or {}

    def version(self, ref: TableRef) -> int | None:
        """The table's current Delta version, or None when it does not exist yet."""
        if not self.exists(ref):
            return None
        if (snapshot := self._snapshot(ref)) is not None:
            return int(snapshot.version())
        return int(self.delta(ref).history(1).select("version").first()[0])

    def partition_columns(self, ref: TableRef) -> list[str]:
        """The partition columns of an existing table."""
        if (snapshot := self._snapshot(ref)) is not None:
            try:
                columns = snapshot.metadata().partitionColumns()
                return [columns.apply(i) for i in range(columns.size())]
            except Py4JError:
                pass
        return list(self.delta(ref).detail().first()["partitionColumns"])

    def _snapshot(self, ref: TableRef):
        """The Delta log's own snapshot of a table by path (brought up to date by listing _delta_log), or None for a
        table by name or another Delta release's internals (then the public API gives the same answers). Milliseconds
        once the log is cached, where `history(1)` or `detail()` run a Spark job of ~0.2 s each time; model
        fingerprints, the profile's inputs and the quality carry-over ask for dozens of versions per run."""
        if ref.by_name:
            return None
        try:
            jvm = self.spark._jvm
            log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(self.spark._jsparkSession, ref.location)
            return log.update(False, jvm.scala.Option.empty(), jvm.scala.Option.empty())
        except Py4JError:
            return None

    def ensure(self, ref: TableRef, table: str | None = None) -> bool:
        """Create the table empty, from its contract's schema, if it does not exist yet (Delta statistics only on
        the columns `Contract.stats_columns` allows). True when it was created now: a caller about to query it
        knows the answer (no rows) without the query."""
        if self.exists(ref):
            return False
        c = contract(table or ref.name)
        schema = c.restricted_schema() if ref.layer == RESTRICTED else c.table_schema()
        builder = DeltaTable.createIfNotExists(self.spark)
        builder = builder.tableName(ref.location) if ref.by_name else builder.location(ref.location)
        stats = c.stats_columns(restricted=ref.layer == RESTRICTED)
        if stats is not None:
            builder = builder.property("delta.dataSkippingStatsColumns", ",".join(stats))
        builder.addColumns(schema).partitionedBy(*(c.partition_by if ref.layer != RESTRICTED else [])).execute()
        return True

    def add_new_columns(self, ref: TableRef, table: str | None = None) -> list[str]:
        """Add to an existing table the nullable columns its contract has gained since the table was created (by an
        earlier release), once per table and lake; returns their names. A new table is created with them.

        Raises:
            ContractError: a column the contract added is not nullable (rows already there would have no value).
        """
        if ref.location in self._current or not self.exists(ref):
            return []
        c = contract(table or ref.name)
        schema = c.restricted_schema() if ref.layer == RESTRICTED else c.table_schema()
        have = set(self.read(ref).columns)
        new = [f for f in schema.fields if f.name not in have]
        for f in new:
            if not f.nullable:
                raise ContractError(f"table {ref}: contract column '{f.name}' is missing and not nullable")
        if new:
            target = ref.location if ref.by_name else f"delta.`{ref.location}`"
            columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in new)
            self.spark.sql(f"ALTER TABLE {target} ADD COLUMNS ({columns})")
        self._current.add(ref.location)
        return [f.name for f in new]

    def _writer(self, df: DataFrame, ref: TableRef, mode: str, **options: str):
        writer = df.write.format("delta").mode(mode)
        for key, value in options.items():
            writer = writer.option(key, value)
        return writer

    def _save(self, writer, ref: TableRef) -> None:
        writer.saveAsTable(ref.location) if ref.by_name else writer.save(ref.location)
        reached(str(ref))

    def replace_where(
        self, df: DataFrame, ref: TableRef, condition: str, merge_schema: bool = False, fresh: bool = False
    ) -> None:
        """Atomically replace the rows matching `condition` with `df` (creating the table from its contract first).

        Re-running with the same `df` and `condition` leaves the same rows: the idempotent write for batch outputs.
        `merge_schema` adds the columns of `df` the table lacks (tables whose contract has `tag_columns`).
        `fresh`: the caller knows no row can match `condition` yet (a batch id this run has just made), so the rows
        are appended: the same table, without replaceWhere's search for rows to replace. A table an earlier release
        created gets the nullable columns its contract has gained first (`add_new_columns`).
        """
        self.ensure(ref)
        self.add_new_columns(ref)
        options = {"mergeSchema": "true"} if merge_schema else {}
        if fresh:
            self._save(self._writer(df, ref, "append", **options), ref)
        else:
            self._save(self._writer(df, ref, "overwrite", replaceWhere=condition, **options), ref)

    def append(self, df: DataFrame, ref: TableRef) -> None:
        self._save(self._writer(df, ref, "append"), ref)

    def overwrite(self, df: DataFrame, ref: TableRef, partition_by: list[str] | None = None) -> None:
        """Replace the whole table (schema included), whatever the session's partition overwrite mode."""
        writer = self._writer(df, ref, "overwrite", overwriteSchema="true", partitionOverwriteMode="static")
        self._save(writer.partitionBy(*(partition_by or [])), ref)

    def merge_upsert(self, df: DataFrame, ref: TableRef, keys: list[str], newer: str | None = None) -> None:
        """MERGE `df` into the table on `keys`: insert new keys; update a matched row when `newer` (a SQL condition
        over `s` and `t`) holds, or always when `newer` is None."""
        cond = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
        (
            self.delta(ref)
            .alias("t")
            .merge(df.alias("s"), cond)
            .whenMatchedUpdateAll(condition=newer)
            .whenNotMatchedInsertAll()
            .execute()
        )
        reached(str(ref))


def check_schema(df: DataFrame, table: str, restricted: bool = False) -> DataFrame:
    """Select the contract's columns in order, failing when one is missing or of another type.

    Raises:
        ContractError: names the table, the column and the types.
    """
    c = contract(table)
    schema = c.restricted_schema() if restricted else c.table_schema()
    have = {f.name: f.dataType for f in df.schema.fields}
    for field in schema.fields:
        if field.name not in have:
            raise ContractError(f"table '{table}': column '{field.name}' is missing; have {sorted(have)}")
        if have[field.name] != field.dataType:
            raise ContractError(
                f"table '{table}': column '{field.name}' is {have[field.name].simpleString()}, "
                f"contract says {field.dataType.simpleString()}"
            )
    return df.select(*[F.col(f"`{f.name}`") for f in schema.fields])
