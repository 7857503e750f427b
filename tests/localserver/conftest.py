"""One real LocalServer per test module, real sandboxes, real HTTP."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from daytonaflow.localserver import IsolationUnavailableError, LocalServer, SandboxLimits

MIB = 1 << 20

TEST_LIMITS = SandboxLimits(
    memory_bytes=256 * MIB,
    pids=128,
    cpu_cores=1.0,
    cpu_seconds=120,
    disk_bytes=64 * MIB,
    tmp_bytes=32 * MIB,
    open_files=1024,
    upload_bytes=16 * MIB,
)


def make_state_root() -> Path:
    """A directory the unprivileged sandbox uid can traverse (pytest's tmp_path cannot be)."""
    root = Path(tempfile.mkdtemp(prefix="daytonaflow-test-"))
    root.chmod(0o711)
    return root


@dataclass
class Api:
    """A small client: API calls under ``/api``, toolbox calls under ``/toolbox/{id}``."""

    server: LocalServer
    http: httpx.Client

    def create(self, **body: Any) -> dict[str, Any]:
        response = self.http.post(f"{self.server.api_url}/sandbox", json=body)
        assert response.status_code == 200, response.text
        sandbox: dict[str, Any] = response.json()
        return sandbox

    def delete(self, sandbox_id: str) -> httpx.Response:
        return self.http.delete(f"{self.server.api_url}/sandbox/{sandbox_id}")

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, f"{self.server.api_url}{path}", **kwargs)

    def toolbox(self, method: str, sandbox_id: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, f"{self.server.toolbox_url}/{sandbox_id}{path}", **kwargs)

    def run(self, sandbox_id: str, command: str, **body: Any) -> dict[str, Any]:
        response = self.toolbox("POST", sandbox_id, "/process/execute", json={"command": command, **body})
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def preview(self, host: str, path: str = "/", **kwargs: Any) -> httpx.Response:
        """GET through the preview proxy; *.localhost is dialled as 127.0.0.1 with its Host header."""
        headers = {"Host": host, **kwargs.pop("headers", {})}
        return httpx.get(f"http://127.0.0.1:{self.server.proxy_port}{path}", headers=headers, **kwargs)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    root = make_state_root()
    instance = LocalServer(state_dir=root / "state", limits=TEST_LIMITS, monitor_interval=0.2)
    try:
        instance.start()
    except IsolationUnavailableError as error:
        pytest.skip(f"bubblewrap sandboxes unavailable here: {error}")
    try:
        yield instance
    finally:
        instance.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def api(server: LocalServer) -> Iterator[Api]:
    with httpx.Client(headers={"Authorization": f"Bearer {server.api_key}"}, timeout=60) as http:
        yield Api(server, http)


@pytest.fixture
def sandbox(api: Api) -> Iterator[dict[str, Any]]:
    created = api.create()
    yield created
    api.delete(created["id"])


@pytest.fixture(scope="module")
def neighbour(api: Api) -> Iterator[dict[str, Any]]:
    """A sandbox that lives through the whole module: attacks on others must leave it intact."""
    created = api.create(name="neighbour", labels={"role": "neighbour"})
    api.run(created["id"], "echo neighbour-secret > /home/daytona/marker.txt")
    yield created
    api.delete(created["id"])
