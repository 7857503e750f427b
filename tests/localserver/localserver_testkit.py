"""Shared helpers of the local server tests: limits, a state directory, a small API client."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from daytonaflow.localserver import LocalServer, SandboxLimits
from daytonaflow.localserver.disk import TreeRemovalError, remove_tree

MIB = 1 << 20
T = TypeVar("T")

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


@contextlib.contextmanager
def started(state_dir: Path, **options: Any) -> Iterator[LocalServer]:
    """A real LocalServer on ``state_dir`` (test limits, a fast monitor unless told), stopped
    afterwards; its state is kept, for another to start on."""
    options.setdefault("limits", TEST_LIMITS)
    options.setdefault("monitor_interval", 0.2)
    with LocalServer(state_dir=state_dir, **options) as server:
        yield server


@contextlib.contextmanager
def served(*, leftovers_fail: bool = False, **options: Any) -> Iterator[LocalServer]:
    """A server :func:`started` on a state directory of its own, removed afterwards, however deep
    the trees its sandboxes left (with ``leftovers_fail``, a tree that cannot be removed, such as
    a mount left behind, is an error)."""
    root = make_state_root()
    try:
        with started(root / "state", **options) as server:
            yield server
    finally:
        try:
            remove_tree(root)
        except TreeRemovalError:
            if leftovers_fail:
                raise


def host_home(server: LocalServer, sandbox_id: str) -> Path:
    """Where a sandbox's /home/daytona lives on the host (its layout depends on the disk mode)."""
    assert server.state is not None
    manager = server.state.manager
    return manager.home(manager.get(sandbox_id))


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


@contextlib.contextmanager
def client(server: LocalServer, timeout: float = 60) -> Iterator[Api]:
    """An :class:`Api` on ``server``, with its API key."""
    with httpx.Client(headers={"Authorization": f"Bearer {server.api_key}"}, timeout=timeout) as http:
        yield Api(server, http)


LOOP_AVAILABLE = bool(os.geteuid() == 0 and Path("/dev/loop-control").exists() and shutil.which("mkfs.ext4"))
#: The two disk modes, for the tests whose storage (homes, volumes) depends on them: each home and
#: volume its own loop-mounted filesystem (root with loop devices), or the server counting usage.
DISK_MODES = [
    pytest.param("loop", marks=pytest.mark.skipif(not LOOP_AVAILABLE, reason="needs root and loop devices")),
    "accounting",
]


def each_disk_mode(**options: Any) -> Any:
    """A module fixture ``mode_server``: a server made by :func:`served` with ``options`` in each
    of :data:`DISK_MODES` (the module's tests run once per mode); a tree it leaves that cannot be
    removed fails the module."""

    @pytest.fixture(scope="module", params=DISK_MODES, name="mode_server")
    def mode_server(request: pytest.FixtureRequest) -> Iterator[LocalServer]:
        with served(disk_mode=request.param, leftovers_fail=True, **options) as server:
            yield server

    return mode_server


def wait_for(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """``check()``'s first answer that is not ``None``, polled until ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.2)
