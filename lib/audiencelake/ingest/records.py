"""The ops rows of the batches one ingest processes: each batch's quality results and audit row, written together
once every batch is in silver (one commit to `ops.quality_results` and one to `ops.ingest_audit` per ingest,
instead of one each per batch: on a new lake with five sources, eight commits fewer).

The audit row marks a batch done. Until it is written the batch stays pending, so a run killed before the write
processes it again, replacing what it wrote, as after a stop anywhere else in the batch. Two batches of one silver
table never wait together: a batch's version resolution must not see a later batch's rows that a killed run left
without an audit (it would count its own rows superseded, and its audit row would differ from a clean run's), so
what is recorded is written before a second batch of the same table is processed. On an error (a failed quality
gate, an unreadable file, a lost executor) what is recorded so far is written before the error goes up: the failed
gate's results are the record of why, and the batches done before it stay done. Not after a kill.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from audiencelake.core.contracts import contract
from audiencelake.core.lake import Lake
from audiencelake.quality.results import write_results


@dataclass
class BatchRecords:
    """Quality results and audit rows waiting to be written, with the batches they replace."""

    results: list[dict] = field(default_factory=list)
    audits: list[dict] = field(default_factory=list)
    result_batches: list[tuple[str, str, bool]] = field(default_factory=list)  # (table, batch id, fresh)
    audit_batches: list[tuple[str, str, bool]] = field(default_factory=list)  # (source, batch id, fresh)
    tables: set[str] = field(default_factory=set)  # the silver tables of the batches recorded

    def add_results(self, table: str, batch_id: str, records: list[dict], fresh: bool) -> None:
        """A batch's gate results; `fresh`: no earlier run can have written results of the batch."""
        self.results += records
        self.result_batches.append((table, batch_id, fresh))
        self.tables.add(table)

    def add_audit(self, row: dict, table: str, fresh: bool) -> None:
        """A batch's audit row (the columns of ops.ingest_audit), of a batch of silver `table`."""
        self.audits.append(row)
        self.audit_batches.append((row["source"], row["batch_id"], fresh))
        self.tables.add(table)

    def before_batch(self, lake: Lake, table: str) -> None:
        """Write what is recorded when it holds a batch of `table` (see the module's docstring)."""
        if table in self.tables:
            self.write(lake)

    def write(self, lake: Lake) -> None:
        """Write what is recorded, replacing the rows of the same batches (appending when every batch is fresh),
        then forget it."""
        if self.results:
            keys = " OR ".join(f"(`table` = '{t}' AND batch_id = '{b}')" for t, b, _ in self.result_batches)
            fresh = all(f for _, _, f in self.result_batches)
            write_results(lake, self.results, f"scope = 'batch' AND ({keys})", fresh)
        if self.audits:
            schema = contract("ingest_audit").table_schema()
            df = lake.spark.createDataFrame([tuple(r[f.name] for f in schema.fields) for r in self.audits], schema)
            keys = " OR ".join(f"(source = '{s}' AND batch_id = '{b}')" for s, b, _ in self.audit_batches)
            fresh = all(f for _, _, f in self.audit_batches)
            lake.replace_where(df, lake.ref("ops", "ingest_audit"), keys, fresh=fresh)
        self.results, self.audits, self.result_batches, self.audit_batches, self.tables = [], [], [], [], set()


@contextmanager
def recording(lake: Lake, records: BatchRecords | None = None) -> Iterator[BatchRecords]:
    """`records` when the caller gives them (it writes them), else new ones, written when the block ends or stops
    with an error (an `Exception`); not after a kill (`InjectedFault`, `KeyboardInterrupt`: `BaseException`)."""
    if records is not None:
        yield records
        return
    own = BatchRecords()
    try:
        yield own
    except Exception:
        own.write(lake)
        raise
    own.write(lake)
