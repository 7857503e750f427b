"""Fixtures of the Temporal tests: one real dev server and one real ``daytonaflow serve`` per session,
a task queue per test (so tests never share workers), real worker processes or an in-process worker.

Without the ``temporal`` CLI or ``temporalio`` the tests skip with the reason; with
``DAYTONAFLOW_REQUIRE_TEMPORAL=1`` (CI sets it) they fail instead, so a missing extra can never turn
the suite into a silent pass. A failing test's report carries the dev server's and its workers' logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_process import ServedProcess, ServeStartError, serve_process
from temporal_testkit import (
    DevServer,
    DevServerStartError,
    Rig,
    TemporalUnavailableError,
    WorkerPool,
    find_temporal_cli,
    unavailable,
)

_session_server: DevServer | None = None


@pytest.fixture(scope="session")
def temporal_cli() -> Path:
    """The ``temporal`` CLI that runs the dev server (skip or fail with the reason when missing)."""
    if importlib.util.find_spec("temporalio") is None:
        unavailable("temporalio is not installed (pip install 'daytonaflow[temporal]')")
    try:
        return find_temporal_cli()
    except TemporalUnavailableError as error:
        unavailable(str(error))


@pytest.fixture(scope="session")
def temporal_dev_server(temporal_cli: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    global _session_server
    server = DevServer(temporal_cli, log_dir=tmp_path_factory.mktemp("temporal-dev-server"))
    try:
        server.start()
    except DevServerStartError as error:
        pytest.fail(str(error), pytrace=False)
    _session_server = server
    try:
        yield server
    finally:
        _session_server = None
        server.stop()


@pytest.fixture(scope="session")
def temporal_server(temporal_dev_server: DevServer) -> str:
    """The session's dev server address, ``127.0.0.1:PORT``."""
    return temporal_dev_server.address


@pytest.fixture(scope="session")
def local_backend() -> Iterator[ServedProcess]:
    """One real ``daytonaflow serve`` for the session: every worker of every test shares it, as several
    workers of one deployment must share one backend. Tests using it are ``sandbox`` tests."""
    try:
        with serve_process(prefix="daytonaflow-temporal-") as served:
            yield served
    except ServeStartError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
def task_queue() -> str:
    return f"daytonaflow-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def workers(
    temporal_server: str, task_queue: str, local_backend: ServedProcess, tmp_path: Path
) -> Iterator[WorkerPool]:
    """Real worker processes against the session's dev server and ``daytonaflow serve``."""
    log_dir = tmp_path / "worker-logs"
    log_dir.mkdir()
    pool = WorkerPool(temporal_server, task_queue, local_backend.env(), log_dir)
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture
async def temporal_client(temporal_server: str) -> Any:
    from temporalio.client import Client

    return await Client.connect(temporal_server)


@pytest.fixture
async def in_process_worker(temporal_client: Any, temporal_settings: Any) -> AsyncIterator[Any]:
    """A worker inside the test's event loop (no backend: for canvases without sandboxes); yields the
    ``TemporalSettings`` a test submits runs with."""
    from daytonaflow.temporal import build_worker

    settings = temporal_settings
    worker = build_worker(temporal_client, settings)
    task = asyncio.create_task(worker.run())
    try:
        yield settings
    finally:
        await worker.shutdown()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
def temporal_settings(temporal_server: str, task_queue: str) -> Any:
    """Where the test's runs go: the session's dev server, the test's own task queue."""
    from daytonaflow.temporal import TemporalSettings

    return TemporalSettings(address=temporal_server, task_queue=task_queue)


@pytest.fixture
async def temporal_runs(temporal_client: Any, temporal_settings: Any) -> Any:
    """The client side of the engine (submit, watch, cancel, read runs) on the test's task queue."""
    from daytonaflow.temporal import TemporalRuns

    return TemporalRuns(temporal_client, temporal_settings)


@pytest.fixture
async def integration(local_backend: ServedProcess) -> AsyncIterator[Any]:
    """A client of the session's ``daytonaflow serve``, as the CLI builds it (the embedded engine's
    integration, and the tests' view of which sandboxes exist)."""
    from daytonaflow.components import DaytonaIntegration

    integration = DaytonaIntegration(local_backend.api_url, local_backend.api_key)
    yield integration
    await integration.aclose()


@pytest.fixture
def label() -> str:
    """The value of the test's sandbox label (see temporal_testkit.labelled)."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
def rig(workers: WorkerPool, temporal_runs: Any, temporal_client: Any, integration: Any, label: str) -> Rig:
    return Rig(workers, temporal_runs, temporal_client, integration, label)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for title, text in _logs_of(item):
        report.sections.append((title, text))


def _logs_of(item: pytest.Item) -> Iterator[tuple[str, str]]:
    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    pool = funcargs.get("workers")
    if isinstance(pool, WorkerPool):
        for number, worker in enumerate(pool.workers, start=1):
            yield f"daytonaflow worker {number} log ({worker.log_path})", worker.log()
    backend = funcargs.get("local_backend")
    if isinstance(backend, ServedProcess):
        yield "daytonaflow serve log", backend.log_text()[-20_000:]
    if _session_server is not None:
        yield f"temporal dev server log ({_session_server.log_path})", _session_server.log()
