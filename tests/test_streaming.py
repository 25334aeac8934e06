"""Streaming ingest of clickstream and campaign touches: a stream stopped part-way and restarted ingests every landing
file exactly once, and its silver tables equal a batch run over the same files."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from audiencelake.core.contracts import contract
from audiencelake.core.errors import ConfigError
from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from audiencelake.ingest.pipeline import ingest_all
from audiencelake.ingest.stream import start_stream, streaming_sources
from audiencelake.synth import WorldSpec, generate_world
from conftest import lake_settings

pytestmark = pytest.mark.e2e

SOURCES = {"clickstream": "clickstream_events", "campaign_touches": "campaign_touches"}


def land(world: Path, landing: Path, source: str, files: slice) -> list[Path]:
    """Copy a slice of the generated world's files of `source` into the landing folder; returns what landed."""
    landed = []
    for path in sorted((world / "landing" / source).iterdir())[files]:
        (landing / source).mkdir(parents=True, exist_ok=True)
        landed.append(Path(shutil.copy2(path, landing / source / path.name)))
    return landed


def wait_for_a_batch(query, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p["numInputRows"] > 0 for p in query.recentProgress):
            return
        if query.exception() is not None:
            raise query.exception()
        time.sleep(0.2)
    raise AssertionError(f"no micro-batch within {timeout} s: {query.status}")


@pytest.fixture(scope="module")
def streamed(spark, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("stream")
    generate_world(root / "world", WorldSpec(users=80, days=30, seed=3))
    landing = root / "landing"
    settings = lake_settings(root / "a", f"lake.landing={landing}", "stream.max_files_per_trigger=2")
    lake = Lake(spark, settings)
    run = Run.create(run_id="stream-1")
    first = [
        *land(root / "world", landing, "clickstream", slice(0, 3)),
        *land(root / "world", landing, "campaign_touches", slice(0, 1)),
    ]
    query = start_stream(lake, run, trigger="processing_time", interval="1 second")
    wait_for_a_batch(query)
    query.stop()  # part-way: some of the first files are in, others not; the stop may interrupt a micro-batch
    stopped_with = {r["file"] for r in lake.read(lake.ref("ops", "ingest_files")).collect()}
    rest = [
        *land(root / "world", landing, "clickstream", slice(3, None)),
        *land(root / "world", landing, "campaign_touches", slice(1, None)),
    ]
    restarted = start_stream(lake, Run.create(run_id="stream-2"))  # available_now: every file landed, then stop
    restarted.awaitTermination()
    assert restarted.exception() is None
    batch = Lake(spark, lake_settings(root / "b", f"lake.landing={landing}"))
    ingest_all(batch, Run.create(run_id="batch-1"), list(SOURCES))
    return {"stream": lake, "batch": batch, "files": first + rest, "stopped_with": stopped_with, "first": first}


def test_the_stream_stopped_part_way(streamed):
    assert 0 < len(streamed["stopped_with"]) < len(streamed["files"])


def test_every_landing_file_is_ingested_exactly_once(streamed):
    lake: Lake = streamed["stream"]
    ledger = lake.read(lake.ref("ops", "ingest_files")).groupBy("source", "file").count().collect()
    assert {r["file"].removeprefix("file://") for r in ledger} == {str(p) for p in streamed["files"]}
    assert {r["count"] for r in ledger} == {1}
    for source in SOURCES:
        stream_rows = lake.read(lake.ref("bronze", source)).groupBy("_file", "_raw").count()
        batch_rows = streamed["batch"].read(streamed["batch"].ref("bronze", source)).groupBy("_file", "_raw").count()
        assert stream_rows.exceptAll(batch_rows).count() == 0 and batch_rows.exceptAll(stream_rows).count() == 0, source
    audits = lake.read(lake.ref("ops", "ingest_audit")).collect()
    batches = lake.read(lake.ref("ops", "ingest_files")).select("source", "batch_id").distinct().count()
    assert len(audits) == batches > len(SOURCES)  # several micro-batches, each processed into silver once
    for a in audits:
        parts = a["rows_bronze_rejected"] + a["rows_silver_rejected"] + a["rows_duplicate"] + a["rows_superseded"]
        assert a["rows_read"] == parts + a["rows_to_silver"], a


def test_silver_equals_a_batch_run_over_the_same_files(streamed):
    for source, table in SOURCES.items():
        columns = [*contract(table).data_columns, "_file", "_record_hash"]
        stream = streamed["stream"].read(streamed["stream"].ref("silver", table)).select(*columns)
        batch = streamed["batch"].read(streamed["batch"].ref("silver", table)).select(*columns)
        assert stream.count() == batch.count() > 0, table
        assert stream.exceptAll(batch).count() == 0 and batch.exceptAll(stream).count() == 0, table
        keys = ["source", "reason", "rule", "file", "raw"]
        quarantine = [
            lake.read(lake.ref("ops", "quarantine")).where(F.col("source") == source).select(*keys)
            for lake in (streamed["stream"], streamed["batch"])
        ]
        assert quarantine[0].exceptAll(quarantine[1]).count() == 0 == quarantine[1].exceptAll(quarantine[0]).count()


def test_only_json_sources_can_stream(spark, settings):
    with pytest.raises(ConfigError, match="sources.orders.format.*JSON lines"):
        streaming_sources(Lake(spark, settings), ["orders"])
    with pytest.raises(ConfigError, match="stream.sources.*unknown source 'nope'"):
        streaming_sources(Lake(spark, settings), ["nope"])
    with pytest.raises(ConfigError, match="--trigger: continuous: expected one of available_now, processing_time"):
        start_stream(Lake(spark, settings), Run.create(), trigger="continuous")
