"""Fixtures of the CLI's Temporal tests, on the shared harness (tests/temporal/temporal_testkit.py):
a real Temporal dev server for the session, a task queue per test, real ``daytonaflow worker``
processes.

Without the ``temporal`` CLI or ``temporalio`` the tests that need them skip with the reason; with
``DAYTONAFLOW_REQUIRE_TEMPORAL=1`` (CI sets it) they fail instead, as the harness's own tests do.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "temporal"))

# The harness's folder is on the path only from here on.
from temporal_testkit import (
    DevServer,
    DevServerStartError,
    TemporalUnavailableError,
    WorkerProcess,
    find_temporal_cli,
    unavailable,
)

StartWorker = Callable[..., WorkerProcess]


@pytest.fixture(scope="session")
def temporalio_installed() -> None:
    """The Temporal SDK (the temporal extra): skip or fail with the reason when it is missing."""
    if importlib.util.find_spec("temporalio") is None:
        unavailable("temporalio is not installed (pip install 'daytonaflow[temporal]')")


@pytest.fixture(scope="session")
def temporal_server(temporalio_installed: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A dev server's address, ``127.0.0.1:PORT``, for the session."""
    try:
        server = DevServer(find_temporal_cli(), log_dir=tmp_path_factory.mktemp("temporal-dev-server"))
    except TemporalUnavailableError as error:
        unavailable(str(error))
    try:
        server.start()
    except DevServerStartError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield server.address
    finally:
        server.stop()


@pytest.fixture
def task_queue() -> str:
    """A task queue of the test's own, so that tests never share workers."""
    return f"daytonaflow-cli-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def start_worker(temporal_server: str, tmp_path: Path) -> Iterator[StartWorker]:
    """Starts real ``daytonaflow worker`` processes on the dev server; stops them after the test."""
    started: list[WorkerProcess] = []

    def start(task_queue: str, env: dict[str, str]) -> WorkerProcess:
        log_path = tmp_path / f"worker-{len(started) + 1}.log"
        worker = WorkerProcess(temporal_server, task_queue, env=env, log_path=log_path)
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        if worker.is_running():
            worker.stop()
