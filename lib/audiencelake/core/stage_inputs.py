"""What a stage's last complete run read (`ops.stage_inputs`), so that a run with nothing new keeps its outputs.

A stage describes its inputs (Delta versions of the tables it reads, its definitions, the library's version) as a
JSON-able dict; equal descriptions for the same stage and key mean equal outputs. The record is written after the
stage's last output, so a run stopped part-way leaves the old record (or none) and the next run does the work.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from importlib.resources import files
from importlib.resources.abc import Traversable

from pyspark.sql import functions as F

from audiencelake.core.contracts import contract
from audiencelake.core.lake import Lake, TableRef
from audiencelake.core.runs import Run
from audiencelake.core.sql import sql_literal

_partitioned: set[str] = set()  # tables known to be partitioned by stage, in this process
_partitioning = threading.Lock()


@cache
def library_version() -> str:
    """The package's version and a hash of its code: an editable install or a rebuilt wheel with the same version
    number but other code is another library, whose outputs may differ."""
    try:
        number = version("audiencelake")
    except PackageNotFoundError:  # imported from a source tree or a wheel on --py-files
        number = "unknown"
    code = hashlib.sha256()
    for name, data in sorted(_sources(files("audiencelake"))):  # a folder, or a wheel or zip on --py-files
        code.update(name.encode() + b"\0" + data)
    return f"{number}+{code.hexdigest()[:12]}"


def _sources(folder: Traversable, prefix: str = "") -> list[tuple[str, bytes]]:
    """(path, bytes) of every .py file under `folder`, however the package was imported."""
    out = []
    for item in folder.iterdir():
        if item.is_dir():
            out += _sources(item, f"{prefix}{item.name}/")
        elif item.name.endswith(".py"):
            out.append((prefix + item.name, item.read_bytes()))
    return out


def fingerprint(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _table(lake: Lake) -> TableRef:
    """ops.stage_inputs. It is partitioned by stage, so that stages running at once record without a conflict (an
    unpartitioned table makes two concurrent replaceWhere writes conflict whatever their keys). A table that an
    earlier release created unpartitioned is rewritten partitioned once, its rows kept."""
    ref = lake.ref("ops", "stage_inputs")
    with _partitioning:
        if ref.location not in _partitioned and lake.exists(ref):
            if lake.partition_columns(ref) != ["stage"]:
                lake.overwrite(lake.read(ref).localCheckpoint(), ref, partition_by=["stage"])
            _partitioned.add(ref.location)
    return ref


def unchanged(lake: Lake, stage: str, key: str, inputs: dict) -> dict | None:
    """The counts of the recorded run of `stage` for `key` when it read the same `inputs`, else None.

    A record of the key with other inputs is deleted before the caller builds anew: a build stopped part-way must
    not leave behind a record that a later run, whose inputs equal the old ones again (a definition change undone),
    would trust."""
    ref = _table(lake)
    if not lake.exists(ref):
        return None
    where = (F.col("stage") == stage) & (F.col("key") == key)
    rows = lake.read(ref).where(where).select("fingerprint", "counts").collect()
    if rows and rows[0]["fingerprint"] == fingerprint(inputs):
        return json.loads(rows[0]["counts"])
    if rows:
        lake.delta(ref).delete(where)
    return None


def record(lake: Lake, stage: str, key: str, inputs: dict, counts: dict, run: Run) -> None:
    """Record what the complete run of `stage` for `key` read and reported (replacing the key's earlier record)."""
    row = (stage, key, fingerprint(inputs), json.dumps(inputs, sort_keys=True, default=str),
           json.dumps(counts, sort_keys=True), run.run_id, datetime.now(UTC))  # fmt: skip
    df = lake.spark.createDataFrame([row], contract("stage_inputs").table_schema())
    lake.replace_where(df, _table(lake), f"stage = {sql_literal(stage)} AND key = {sql_literal(key)}")


def kept_or_built(
    lake: Lake, stage: str, key: str, inputs: dict, output: TableRef, build: Callable[[], dict], run: Run
) -> dict:
    """A stage with one output table, kept when nothing changed: the recorded counts with `kept=1` when `inputs` and
    the output's Delta version are as the stage's last complete run for `key` recorded them; else `build()`'s
    counts, recorded with the output's new version (`inputs` are read before building: what it is built from)."""
    if (counts := unchanged(lake, stage, key, {**inputs, "output": lake.version(output)})) is not None:
        return {**counts, "kept": 1}
    counts = build()
    record(lake, stage, key, {**inputs, "output": lake.version(output)}, counts, run)
    return counts


def recorded_run(lake: Lake, stage: str, key: str) -> str | None:
    """The run whose outputs the record of `stage` for `key` describes, or None without a record."""
    ref = _table(lake)
    if not lake.exists(ref):
        return None
    row = lake.read(ref).where((F.col("stage") == stage) & (F.col("key") == key)).select("run_id").first()
    return None if row is None else row["run_id"]
