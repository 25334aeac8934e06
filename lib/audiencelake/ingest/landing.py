"""List landing files through Hadoop's FileSystem, so local disks, HDFS, S3 and DBFS work alike."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F


@dataclass(frozen=True)
class LandingFile:
    path: str  # canonical URI form, as Spark reports it in _metadata.file_path (percent-encoded): the ledger key
    size: int
    modified_at: datetime
    read_path: str  # the path as the file system spells it, for reading


def canonical_path(path: str) -> str:
    """One spelling per file: `file:/x`, `file:///x` and `/x` all become `file:///x`."""
    if path.startswith("/"):
        return "file://" + path
    return re.sub(r"^file:/+", "file:///", path)


def canonical_path_col(col: Column) -> Column:
    """`canonical_path` as a Spark expression."""
    return F.regexp_replace(col, r"^file:/+", "file:///")


def list_files(spark: SparkSession, pattern: str) -> list[LandingFile]:
    """The files matching a glob, sorted by path (empty when nothing matches)."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(pattern)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    statuses = fs.globStatus(path) or []
    files = [
        LandingFile(
            canonical_path(s.getPath().toUri().toString()),
            int(s.getLen()),
            datetime.fromtimestamp(s.getModificationTime() / 1000, UTC),
            s.getPath().toString(),
        )
        for s in statuses
        if s.isFile()
    ]
    return sorted(files, key=lambda f: f.path)
