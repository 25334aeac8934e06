"""Export folder mechanics: Spark's part files renamed to deterministic names, checksummed and counted, and a
complete staging folder moved into place in one rename."""

from __future__ import annotations

import csv
import hashlib
import logging
import math
import os
import shutil
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.core.errors import AudiencelakeError

log = logging.getLogger("audiencelake.audiences")
EXTENSIONS = {"csv": "csv", "parquet": "parquet", "customer_match": "csv"}
MANIFEST = "manifest.json"
STAGING = ".staging"


def write_files(df: DataFrame, key: str, fmt: str, rows: int, rows_per_file: int, folder: Path) -> list[dict]:
    """Write `df` as data files into `folder`: hash-partitioned and sorted by `key`, named part-00000.<ext>, ..."""
    parts = max(1, math.ceil(rows / rows_per_file))
    spark_out = folder / "_spark"
    layout = df.repartition(parts, F.col(key)).sortWithinPartitions(key, *[c for c in df.columns if c != key])
    writer = layout.write.mode("overwrite").option("maxRecordsPerFile", rows_per_file)
    if fmt == "parquet":
        writer.option("compression", "snappy").parquet(str(spark_out))
    else:
        writer.option("header", True).option("emptyValue", "").csv(str(spark_out))
    ext = EXTENSIONS[fmt]
    produced = sorted(p for p in spark_out.iterdir() if p.name.startswith("part-") and p.suffix.endswith(ext))
    files = []
    for i, path in enumerate(produced):
        target = folder / f"part-{i:05d}.{ext}"
        path.rename(target)
        files.append({"name": target.name, "bytes": target.stat().st_size, "sha256": file_sha256(target)})
    shutil.rmtree(spark_out)
    return files


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def count_rows(files: list[dict], folder: Path, fmt: str) -> None:
    for f in files:
        path = folder / f["name"]
        if fmt == "parquet":
            import pyarrow.parquet as pq

            f["rows"] = pq.ParquetFile(path).metadata.num_rows
        else:
            with path.open(newline="") as fh:
                f["rows"] = max(0, sum(1 for _ in csv.reader(fh)) - 1)  # less the header


def publish(staging: Path, final: Path) -> None:
    """Move the complete staging folder to `final` in one rename. An identical export already there is kept; a
    different one is never replaced (a destination may have taken it already).

    Raises:
        AudiencelakeError: `final` holds another export of the same run.
    """
    if final.exists():
        if _same(staging, final):
            return
        raise AudiencelakeError(
            f"{final} already holds a different export of this run (see its manifest.json); export under a new run id"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    os.rename(staging, final)


def _same(a: Path, b: Path) -> bool:
    """Same file names and the same manifest (which holds every data file's SHA-256)."""
    names = sorted(p.name for p in a.iterdir())
    if names != sorted(p.name for p in b.iterdir()):
        return False
    return all((a / n).read_bytes() == (b / n).read_bytes() for n in names if n == MANIFEST)


def clear_staging(root: Path) -> None:
    """Remove the staging folders a stopped export left under the exports `root` (call it holding the lake lock:
    then no other export is writing)."""
    staging = root / STAGING
    leftovers = list(staging.iterdir()) if staging.exists() else []
    if leftovers:
        log.warning("removing %d unfinished exports left in %s by a run that stopped", len(leftovers), staging)
        shutil.rmtree(staging)
