"""Fixtures of the CLI's Temporal tests: a real Temporal dev server, a task queue per test, real
``daytonaflow worker`` processes.

PROVISIONAL: replaced by the shared harness (tests/temporal/temporal_testkit.py) once it is on main.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cli = (
        os.environ.get("DAYTONAFLOW_TEMPORAL_CLI")
        or shutil.which("temporal")
        or str(Path(sys.executable).parent / "temporal")
    )
    port = _free_port()
    log = tmp_path_factory.mktemp("temporal") / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                cli,
                "server",
                "start-dev",
                "--headless",
                "--ip",
                "127.0.0.1",
                "--port",
                str(port),
                "--http-port",
                str(_free_port()),
                "--metrics-port",
                str(_free_port()),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    time.sleep(1)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture
def task_queue() -> str:
    return f"daytonaflow-test-{uuid.uuid4().hex[:12]}"


class Worker:
    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 90) -> Worker:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "worker ready:" in self.log():
                return self
            if self.process.poll() is not None:
                raise AssertionError(self.log())
            time.sleep(0.1)
        raise AssertionError(self.log())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(60)


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[object]:
    started: list[Worker] = []

    def start(argv: list[str], env: dict[str, str] | None = None) -> Worker:
        environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        cli = str(Path(sys.executable).parent / "daytonaflow")
        worker = Worker([cli, *argv], environment, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
