"""Fixtures for the runner tests: a run database in a temp dir, fake components, an engine."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from run_fakes import FAKE_COMPONENTS, FakeBackend
from run_support import running_local_server
from sandbox_dirs import traversable_temp_dir

from daytonaflow.components import DaytonaIntegration
from daytonaflow.runner import Engine, RunStore, RunUpdate


@pytest.fixture
def backend(tmp_path: Path) -> FakeBackend:
    return FakeBackend(tmp_path / "backend")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    with RunStore(tmp_path / "runs.db") as run_store:
        yield run_store


@pytest.fixture
def updates() -> list[RunUpdate]:
    return []


@pytest.fixture
async def engine(store: RunStore, backend: FakeBackend, updates: list[RunUpdate]) -> AsyncIterator[Engine]:
    engine = Engine(store, registry=FAKE_COMPONENTS, integration=backend, observers=[updates.append])
    yield engine
    await engine.aclose()


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    """The embedded local server, one per test module (end-to-end tests only)."""
    with (
        traversable_temp_dir("daytonaflow-runner-e2e-") as root,
        running_local_server(root / "state") as instance,
    ):
        yield instance


class _Handler(BaseHTTPRequestHandler):
    """Answers `answer to PATH`; `/error` with a 500, `/hang` after the test ends."""

    release = threading.Event()

    def do_GET(self) -> None:
        if self.path == "/hang":
            self.release.wait(30)
        status = 500 if self.path == "/error" else 200
        body = f"answer to {self.path}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
async def integration(server: Any) -> AsyncIterator[DaytonaIntegration]:
    """A client of the module's embedded server, as the CLI builds it."""
    integration = DaytonaIntegration(server.api_url, server.api_key)
    yield integration
    await integration.aclose()


@pytest.fixture
async def real_engine(store: RunStore, integration: Any, updates: list[RunUpdate]) -> AsyncIterator[Engine]:
    """An engine driving real sandboxes of the module's embedded server."""
    engine = Engine(store, integration=integration, observers=[updates.append])
    yield engine
    await engine.aclose()


@pytest.fixture
def hangs_released() -> threading.Event:
    """Set it to let the ``web`` server's ``/hang`` requests answer."""
    return _Handler.release


@pytest.fixture
def web() -> Iterator[str]:
    """A loopback HTTP server for canvases with http nodes."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    _Handler.release.set()
    server.shutdown()
    _Handler.release.clear()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The run database the CLI uses, in the test's temp dir."""
    path = tmp_path / "runs.db"
    monkeypatch.setenv("DAYTONAFLOW_DB", str(path))
    return path
