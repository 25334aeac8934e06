"""A Spark standalone cluster on loopback, started from the installed PySpark: one master and N workers as child
processes, stopped by the process ids started here. `submit` runs `spark-submit` against it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyspark

SPARK_HOME = Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StandaloneCluster:
    def __init__(self, root: Path, workers: int = 2, cores: int = 1, memory: str = "2g") -> None:
        self.root, self.workers, self.cores, self.memory = root, workers, cores, memory
        self.port, self.ui_port = free_port(), free_port()
        self.processes: list[subprocess.Popen] = []
        self.env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1",
                    "PYSPARK_PYTHON": sys.executable, "SPARK_LOG_DIR": str(root / "logs")}  # fmt: skip

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def _daemon(self, name: str, *args: str) -> None:
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 - the child holds it open
        cmd = [str(SPARK_HOME / "bin" / "spark-class"), *args]
        self.processes.append(subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.root))

    def state(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=2) as response:
            return json.load(response)

    def start(self, timeout: float = 90.0) -> StandaloneCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        self._daemon("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                     "--port", str(self.port), "--webui-port", str(self.ui_port))  # fmt: skip
        for i in range(self.workers):
            work = self.root / f"worker-{i}"
            work.mkdir(exist_ok=True)
            self._daemon(f"worker-{i}", "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                         "--cores", str(self.cores), "--memory", self.memory, "--webui-port", str(free_port()),
                         "--work-dir", str(work), self.url)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for p in self.processes:
                if p.poll() is not None:
                    raise RuntimeError(f"a cluster process exited with {p.returncode}; see {self.root}/*.log")
            try:
                alive = [w for w in self.state().get("workers", []) if w["state"] == "ALIVE"]
                if len(alive) == self.workers:
                    return self
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"cluster not up within {timeout} s; see {self.root}/*.log")

    def stop(self) -> None:
        for p in reversed(self.processes):
            p.terminate()
        for p in self.processes:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def submit(self, script: Path, *args: str, conf: dict[str, str], jars: list[str], py_files: list[str],
               env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:  # fmt: skip
        """`spark-submit --master <this cluster>`; raises with the output's tail when it fails."""
        cmd = [str(SPARK_HOME / "bin" / "spark-submit"), "--master", self.url, "--jars", ",".join(jars),
               "--py-files", ",".join(py_files)]  # fmt: skip
        for key, value in conf.items():
            cmd += ["--conf", f"{key}={value}"]
        done = subprocess.run(
            [*cmd, str(script), *args], env={**self.env, **env}, cwd=self.root, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
            raise AssertionError(f"spark-submit {script.name} {' '.join(args)} exited {done.returncode}:\n{tail}")
        return done
