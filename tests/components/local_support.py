"""The components end to end on a real embedded LocalServer (real HTTP, real sandboxes): the server,
a plain HTTP client to inspect it (independent of the components under test), and the fixtures the
end-to-end modules share. A module takes them by importing them (they override, for that module,
the respx-backed ``integration`` of conftest.py)::

    from local_support import Server, integration, run_to_end, sandbox, server

    __all__ = ["integration", "sandbox", "server"]  # fixtures
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from comp_support import FakeContext
from sandbox_dirs import traversable_temp_dir

from daytonaflow.component import Component
from daytonaflow.components import DaytonaIntegration
from daytonaflow.localserver import LocalServer


@dataclass
class Server:
    """The running server and a plain HTTP client to inspect it (independent of the components)."""

    instance: LocalServer
    http: httpx.Client

    @property
    def api(self) -> str:
        return self.instance.api_url

    def sandbox(self, sandbox_id: str) -> httpx.Response:
        return self.http.get(f"{self.api}/sandbox/{sandbox_id}")

    def create(self) -> str:
        response = self.http.post(f"{self.api}/sandbox", json={})
        assert response.status_code == 200, response.text
        sandbox_id: str = response.json()["id"]
        return sandbox_id

    def delete(self, sandbox_id: str, *, force: bool = False) -> None:
        self.http.delete(f"{self.api}/sandbox/{sandbox_id}", params={"force": "true"} if force else None)

    def run(self, sandbox_id: str, command: str) -> dict[str, Any]:
        """``command`` in the sandbox, through the toolbox's execute endpoint: its answer."""
        response = self.http.post(
            f"{self.instance.toolbox_url}/{sandbox_id}/process/execute", json={"command": command}
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def output(self, sandbox_id: str, command: str) -> str:
        """``command`` in the sandbox; its output, stripped (it must succeed)."""
        answer = self.run(sandbox_id, command)
        assert answer["exitCode"] == 0, answer
        return str(answer["result"]).strip()

    def preview(self, url: str, **headers: str) -> httpx.Response:
        """GET a preview URL: ``*.localhost`` is dialled as 127.0.0.1 with the URL's Host header."""
        parsed = httpx.URL(url)
        return httpx.get(
            f"http://127.0.0.1:{parsed.port}{parsed.raw_path.decode()}",
            headers={"Host": parsed.netloc.decode(), **headers},
        )

    def volume(self, volume_id: str) -> httpx.Response:
        return self.http.get(f"{self.api}/volumes/{volume_id}")

    def volume_by_name(self, name: str) -> httpx.Response:
        return self.http.get(f"{self.api}/volumes/by-name/{name}")

    def delete_volume(self, volume_id: str) -> None:
        self.http.delete(f"{self.api}/volumes/{volume_id}")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """One server per module that imports this fixture, on a state directory of its own."""
    with traversable_temp_dir("daytonaflow-comp-e2e-") as root:
        instance = LocalServer(state_dir=root / "state")
        instance.start()
        try:
            with httpx.Client(headers={"Authorization": f"Bearer {instance.api_key}"}, timeout=60) as http:
                yield Server(instance, http)
        finally:
            instance.stop()


@pytest.fixture
async def integration(server: Server) -> AsyncIterator[DaytonaIntegration]:
    """The real connection (overrides the respx-backed one that ``make_ctx`` would use)."""
    connection = DaytonaIntegration(server.instance.api_url, server.instance.api_key)
    yield connection
    await connection.aclose()


@pytest.fixture
def sandbox(server: Server) -> Iterator[str]:
    """A started sandbox made through the API directly, deleted after the test."""
    sandbox_id = server.create()
    yield sandbox_id
    server.delete(sandbox_id)


async def run_to_end(component: Component, ctx: FakeContext, max_checks: int = 1000) -> None:
    """Execute, then run every scheduled check after its real delay (no fake clock: the sandbox is real)."""
    await component.execute(ctx)
    for _ in range(max_checks):
        if ctx.pending is None:
            return
        delay, ctx.pending = ctx.pending, None
        await asyncio.sleep(delay)
        await component.check(ctx)
    raise AssertionError("the component never finished")
