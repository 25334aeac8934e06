"""One writer per lake (issue 10, concurrency): the lock file, its take-over of dead holders, and two real
`audiencelake ingest` processes started at once on one lake."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from audiencelake.cli.main import main
from audiencelake.core.lake_lock import LOCK_FILE, LakeBusyError, lake_lock, lock_path, unlock
from conftest import TEST_OVERRIDES, lake_settings


def _holder(path: Path, pid: int, host: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"command": "run", "run_id": "r-1", "pid": pid, "host": host or socket.gethostname(), "since": "x"}
    path.write_text(json.dumps(record))


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_the_lock_is_taken_released_and_reentrant(tmp_path: Path) -> None:
    settings = lake_settings(tmp_path)
    path = lock_path(settings)
    assert path == tmp_path / "lake" / LOCK_FILE
    with lake_lock(settings, "run", "r-1"):
        record = json.loads(path.read_text())
        assert (record["command"], record["run_id"], record["pid"]) == ("run", "r-1", os.getpid())
        with lake_lock(settings, "ingest", "r-1"):  # a stage inside the run: same process, no deadlock
            assert path.exists()
        assert path.exists()
    assert not path.exists()


def test_a_live_holder_blocks_and_is_named(tmp_path: Path) -> None:
    settings = lake_settings(tmp_path)
    path = lock_path(settings)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other:
        try:
            _holder(path, other.pid)
            with pytest.raises(LakeBusyError) as err, lake_lock(settings, "ingest"):
                pass
            assert f"lake lock {path} is held (command run, run_id r-1, pid {other.pid}" in str(err.value)
            with pytest.raises(LakeBusyError, match="still runs"):
                unlock(settings)
            assert path.exists(), "the live holder's lock was removed"
        finally:
            other.kill()
    _holder(path, 1, host="another-host")  # cannot be checked from here: reported, never taken over
    with pytest.raises(LakeBusyError, match="host another-host"), lake_lock(settings, "ingest"):
        pass
    assert unlock(settings)["host"] == "another-host" and not path.exists()
    assert unlock(settings) is None


def test_a_dead_holders_lock_is_taken_over(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = lake_settings(tmp_path)
    path = lock_path(settings)
    dead = _dead_pid()
    _holder(path, dead)
    with lake_lock(settings, "ingest", "r-2"):
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert f"pid {dead}" in caplog.text and "taking it over" in caplog.text
    assert not path.exists()


def test_a_locked_lake_stops_a_stage_command_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "lake" / LOCK_FILE
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other:
        try:
            _holder(path, other.pid)
            with pytest.raises(SystemExit) as exit_info:
                main(["ingest", "--set", f"lake.root={tmp_path / 'lake'}", "--set", f"lake.landing={tmp_path}"])
        finally:
            other.kill()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"error: lake lock {path} is held") and "unlock" in err


def _cli(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "audiencelake"), *args]


@pytest.mark.e2e
def test_two_runs_started_at_once_one_runs_one_is_refused(spark, tmp_path: Path) -> None:
    from audiencelake.core.lake import Lake
    from audiencelake.synth import WorldSpec, generate_world
    from audiencelake.synth.world import DEFAULT_END

    generate_world(tmp_path, WorldSpec(users=40, days=14, seed=11))
    sets = [
        *TEST_OVERRIDES,
        f"lake.root={tmp_path / 'lake'}",
        f"lake.landing={tmp_path / 'landing'}",
        f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
        # two sources are enough to race on (the others' files are left unread: a fresh JVM per source is slow)
        *[f"sources.{s}.path={tmp_path}/elsewhere/*" for s in ("clickstream", "campaign_touches", "social")],
    ]
    args = ["ingest", "--as-of", DEFAULT_END.isoformat(), *[a for s in sets for a in ("--set", s)]]
    small = ["--set", "spark.master=local[1]", "--set", "spark.conf.spark.driver.memory=1g"]
    command = _cli(*args, *small)
    logs = [open(tmp_path / f"run{i}.log", "w+") for i in range(2)]  # noqa: SIM115
    procs = [subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT) for log in logs]
    codes = [p.wait(timeout=600) for p in procs]
    outputs = [(log.seek(0), log.read())[1] for log in logs]
    assert sorted(codes) == [0, 2], outputs
    loser = outputs[codes.index(2)]
    assert "error: lake lock" in loser and "is held (command ingest" in loser, loser
    assert "Traceback" not in loser
    assert not (tmp_path / "lake" / LOCK_FILE).exists(), "the finished run left its lock"

    lake = Lake(spark, lake_settings(tmp_path))
    tables = {t: sorted(map(tuple, lake.read(lake.ref("silver", t)).collect())) for t in ("orders", "crm_profiles")}
    assert all(tables.values()), "the winning run ingested nothing"
    main(args)  # the following run (in this process's Spark session): the lock is free, the run succeeds
    for t, rows in tables.items():
        assert sorted(map(tuple, lake.read(lake.ref("silver", t)).collect())) == rows, t


def test_the_demo_empties_its_lake_but_keeps_its_lock(tmp_path: Path) -> None:
    from audiencelake.cli.main import _empty_lake

    (tmp_path / "silver" / "orders").mkdir(parents=True)
    (tmp_path / "silver" / "orders" / "part-0.parquet").write_bytes(b"x")
    (tmp_path / "mlflow.db").write_bytes(b"x")
    _holder(tmp_path / LOCK_FILE, os.getpid())
    _empty_lake(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [LOCK_FILE]
