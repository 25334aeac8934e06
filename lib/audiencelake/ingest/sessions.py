"""Sessions, computed once at ingest: `session_id` and `session_start` on the rows of a table with `sessions` in its
contract (silver clickstream), so that profiles read them instead of running a window over months of events.

A batch's rows are sessionised together with the rows silver already holds for the same visitors from `gap`
before the batch's earliest row (or the earliest row it replaces) on. Rows before that point keep what they have:
nothing before them changed. Rows from it on are computed again, so a late event that starts, splits or joins a
session gives the later events their right session, and those whose values change are returned for an update.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from audiencelake.core.contracts import SESSION_COLUMNS, Contract, Sessions
from audiencelake.core.failpoints import reached
from audiencelake.core.lake import Lake, TableRef, check_schema

_NEW, _BEFORE = "_session_new", "_session_before"  # row of the batch; existing row before the recomputed range


@dataclass(frozen=True)
class Sessioned:
    """The batch's rows and the existing rows recomputed with them (`rows`; persist it when both outputs are used).
    `batch()` is the batch with its session columns set, `changed()` the existing rows (key, date column when the
    contract has one, session_id, session_start) whose session the batch changed."""

    rows: DataFrame
    columns: list[str]
    c: Contract
    stable: bool = False  # no existing row was near the batch: nothing existing changes

    def batch(self) -> DataFrame:
        return self.rows.where(F.col(_NEW)).select(*self.columns)

    def changed(self) -> DataFrame:
        s = self.c.sessions
        columns = [self.c.keys[0], *([s.date] if s.date else []), *SESSION_COLUMNS]
        if self.stable:
            return self.rows.limit(0).select(*columns)
        moved = ~F.col("session_id").eqNullSafe(F.col("_old_id")) | ~F.col("session_start").eqNullSafe(
            F.col("_old_start")
        )
        return self.rows.where(~F.col(_NEW) & ~F.col(_BEFORE) & moved).select(*columns)


def _gap(s: Sessions) -> Column:
    return F.expr(f"INTERVAL {s.gap_minutes} MINUTES")


def sessionise(
    batch: DataFrame, existing: DataFrame | None, c: Contract, replaced: DataFrame | None = None
) -> Sessioned:
    """Set `session_id` and `session_start` on `batch` (rows entering silver, with the table's columns) against
    `existing` (silver's rows written by other batches; None for a first batch).

    Only the existing rows from `gap` before the batch's earliest time on can be affected; when there are none (a
    first batch, or one later than everything before it by more than the gap) the batch is sessionised alone and
    nothing existing changes: one window over the batch, nothing to keep for an update.

    Args:
        batch: rows for silver; their session columns are replaced.
        existing: the rows silver holds, pinned to one version; rows sharing a key with `batch` are being replaced.
        c: the contract, with `sessions`.
        replaced: (key, `sessions.by`, `sessions.time`) of the existing rows `batch` replaces, when the caller knows
            them (version resolution does); else they are found by joining `existing` on the key.
    """
    s, key = c.sessions, c.keys[0]
    by, time = F.col(f"`{s.by}`"), F.col(f"`{s.time}`")
    new = batch.drop(*SESSION_COLUMNS)
    fresh = new.withColumn(_NEW, F.lit(True)).withColumn(_BEFORE, F.lit(False))
    fresh = fresh.withColumn("_old_id", F.lit(None).cast("string")).withColumn(
        "_old_start", F.lit(None).cast("boolean")
    )
    context = None
    if existing is not None:
        if replaced is None:
            replaced = existing.join(new.select(key), key, "left_semi")
        replaced = replaced.select(key, s.by, s.time)
        # the bound as microseconds and a date, both computed by Spark in the session's time zone: a Python
        # datetime would be converted through the driver's local time zone (a date off by one near midnight)
        lower = F.min(time) - _gap(s)
        bound = (
            new.select(time)
            .unionByName(replaced.select(time))
            .agg(F.unix_micros(lower).alias("micros"), F.to_date(lower).alias("day"))
            .first()
        )
        if bound["micros"] is not None:
            near = existing.where(time >= F.timestamp_micros(F.lit(bound["micros"])))  # a scalar: the plan stays small
            if s.date:  # and on the partition column, so that older files are skipped
                near = near.where(F.col(f"`{s.date}`") >= F.lit(bound["day"]))
            near = near.join(F.broadcast(replaced.select(key)), key, "left_anti") if replaced.take(1) else near
            if near.take(1):
                context = near
    if context is None:
        both = fresh
        stable = True
    else:
        starts = (
            new.select(s.by, s.time)
            .unionByName(replaced.select(s.by, s.time))
            .groupBy(s.by)
            .agg(F.min(time).alias("_from"))
        )  # each visitor's earliest new or replaced row: everything of theirs from there on is computed again
        context = (
            context.join(starts, s.by)
            .where(time >= F.col("_from") - _gap(s))
            .withColumn(_BEFORE, time < F.col("_from"))
            .drop("_from")
            .withColumnRenamed("session_id", "_old_id")
            .withColumnRenamed("session_start", "_old_start")
            .withColumn(_NEW, F.lit(False))
        )
        both = fresh.unionByName(context.select(*fresh.columns))
        stable = False
    order = Window.partitionBy(by).orderBy(time, F.col(f"`{key}`"))
    previous = F.lag(time).over(order)
    start = F.when(F.col(_BEFORE), F.col("_old_start")).otherwise(previous.isNull() | (time > previous + _gap(s)))
    both = both.withColumn("session_start", start)
    marker = F.when(F.col(_BEFORE), F.col("_old_id")).when(F.col("session_start"), F.col(f"`{key}`").cast("string"))
    running = order.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    both = both.withColumn("session_id", F.last(marker, ignorenulls=True).over(running))
    return Sessioned(both, batch.columns, c, stable)


def update_sessions(lake: Lake, ref: TableRef, c: Contract, changed: DataFrame) -> int:
    """Set the session columns of the `changed` rows (`Sessioned.changed`) in the table; one MERGE, only when
    there are any, reading only the partitions between the earliest and the latest changed date. Returns the rows
    updated."""
    s, key = c.sessions, c.keys[0]
    bounds = changed.agg(F.count("*"), *([F.min(s.date), F.max(s.date)] if s.date else [])).first()
    if not bounds[0]:
        return 0
    condition = f"t.`{key}` = s.`{key}`"
    if s.date:
        dates = f"t.`{s.date}` BETWEEN DATE'{bounds[1]}' AND DATE'{bounds[2]}' AND t.`{s.date}` = s.`{s.date}`"
        condition = f"{dates} AND {condition}"
    (
        lake.delta(ref)
        .alias("t")
        .merge(changed.alias("s"), condition)
        .whenMatchedUpdate(set={"session_id": "s.session_id", "session_start": "s.session_start"})
        .execute()
    )
    reached(str(ref))
    return int(bounds[0])


def add_sessions(lake: Lake, ref: TableRef, c: Contract) -> bool:
    """Give a table written before it had session columns those columns, with every row's session: the table is
    rewritten with them in one commit (a stop leaves it as it was, and the next run does it again). Returns
    whether it did."""
    table = lake.read(ref)
    if "session_id" in table.columns:
        return False
    unset = table.select("*", *[F.lit(None).cast(t).alias(n) for n, t in SESSION_COLUMNS.items()])
    # the other columns the contract has gained since (nullable lineage such as `_warnings`): null in old rows
    added = [f for f in c.table_schema().fields if f.name not in unset.columns]
    unset = unset.select("*", *[F.lit(None).cast(f.dataType).alias(f.name) for f in added])
    lake.overwrite(check_schema(sessionise(unset, None, c).batch(), c.table), ref, c.partition_by)
    return True
