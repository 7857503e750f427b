"""Kept-alive connections survive a 500 and concurrent create+delete: no request is reset under a client."""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from daytonaflow.components import DaytonaClient
from daytonaflow.localserver import LocalServer

pytestmark = pytest.mark.sandbox
CONCURRENT = 20
#: httpx keeps an idle connection this long before it stops reusing it.
CLIENT_KEEPALIVE_EXPIRY_SECONDS = 5.0


@pytest.fixture
def failing_listing(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in a handler: listing sandboxes raises an unexpected exception."""
    assert server.state is not None

    def broken(labels: Any = None) -> Any:
        raise RuntimeError("a handler bug")

    monkeypatch.setattr(server.state.manager, "list", broken)


def test_the_connection_that_carried_a_500_carries_the_next_request(
    server: LocalServer, failing_listing: None
) -> None:
    url = urlsplit(server.api_url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    headers = {"Authorization": f"Bearer {server.api_key}"}
    try:
        for _ in range(3):
            connection.request("GET", f"{url.path}/sandbox", headers=headers)
            failed = connection.getresponse()
            body = json.loads(failed.read())
            assert (failed.status, body["message"]) == (500, "internal error: RuntimeError: a handler bug")
            first_socket = connection.sock
            # On the same socket: a server that closed it after the 500 resets this request.
            connection.request("GET", f"{url.path}/config", headers=headers)
            config = connection.getresponse()
            assert config.status == 200
            json.loads(config.read())
            assert connection.sock is first_socket
    finally:
        connection.close()


def test_a_connection_idle_as_long_as_a_client_keeps_it_is_still_open(server: LocalServer) -> None:
    url = urlsplit(server.api_url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    headers = {"Authorization": f"Bearer {server.api_key}"}
    try:
        connection.request("GET", f"{url.path}/config", headers=headers)
        connection.getresponse().read()
        first_socket = connection.sock
        # A server closing it first races the client's reuse: the client's request is reset.
        time.sleep(CLIENT_KEEPALIVE_EXPIRY_SECONDS + 1)
        connection.request("GET", f"{url.path}/config", headers=headers)
        assert connection.getresponse().status == 200
        assert connection.sock is first_socket
    finally:
        connection.close()


async def _create_and_delete(client: DaytonaClient) -> None:
    sandbox = await client.create_sandbox({})
    await client.delete_sandbox(sandbox.id, force=True)


def test_concurrent_creates_and_deletes_all_succeed_and_leave_no_sandbox(server: LocalServer) -> None:
    async def main() -> list[BaseException | None]:
        client = DaytonaClient(server.api_url, server.api_key)
        try:
            return await asyncio.gather(
                *(_create_and_delete(client) for _ in range(CONCURRENT)), return_exceptions=True
            )
        finally:
            await client.aclose()

    outcomes = asyncio.run(main())
    assert [o for o in outcomes if o is not None] == []
    assert server.state is not None
    assert server.state.manager.list() == []
