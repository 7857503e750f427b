"""The egress proxy on its own (no sandbox): its bounds and its teardown, on a Unix socket."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from daytonaflow.localserver.egress import EgressLimits, EgressPolicy, EgressProxy, parse_allow_list

_LOOPBACK = EgressPolicy(parse_allow_list("127.0.0.1/32"))
_WITHIN_SECONDS = 20.0


@contextlib.asynccontextmanager
async def _proxy(limits: EgressLimits) -> AsyncIterator[EgressProxy]:
    directory = Path(tempfile.mkdtemp(prefix="dfl-egress-"))
    proxy = EgressProxy("test", _LOOPBACK, directory / "egress.sock", frozenset(), limits)
    await proxy.open(owner_uid=-1)
    try:
        yield proxy
    finally:
        await proxy.close()
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.asynccontextmanager
async def _silent_listener() -> AsyncIterator[int]:
    """A host loopback server that accepts and never sends a byte."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()


async def _tunnel(proxy: EgressProxy, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_unix_connection(str(proxy.socket_path))
    writer.write(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    status = await asyncio.wait_for(reader.readline(), _WITHIN_SECONDS)
    return reader, writer, status


def test_connections_past_the_bound_get_a_503() -> None:
    async def scenario() -> None:
        async with _silent_listener() as port, _proxy(EgressLimits(connections=1)) as proxy:
            _, first, status = await _tunnel(proxy, port)
            assert status.startswith(b"HTTP/1.1 200")
            _, second, refused = await _tunnel(proxy, port)
            assert refused.startswith(b"HTTP/1.1 503")
            first.close()
            second.close()

    asyncio.run(scenario())


def test_an_idle_tunnel_is_closed() -> None:
    async def scenario() -> None:
        async with _silent_listener() as port, _proxy(EgressLimits(idle_seconds=0.5)) as proxy:
            reader, writer, status = await _tunnel(proxy, port)
            assert status.startswith(b"HTTP/1.1 200")
            assert await asyncio.wait_for(reader.readline(), _WITHIN_SECONDS) == b"\r\n"
            assert await asyncio.wait_for(reader.read(), _WITHIN_SECONDS) == b""
            writer.close()

    asyncio.run(scenario())


def test_close_ends_open_tunnels_and_removes_the_socket() -> None:
    async def scenario() -> None:
        async with _silent_listener() as port, _proxy(EgressLimits()) as proxy:
            reader, writer, status = await _tunnel(proxy, port)
            assert status.startswith(b"HTTP/1.1 200")
            await proxy.close()
            assert not proxy.socket_path.exists()
            assert proxy.open_connections == 0
            assert await asyncio.wait_for(reader.readline(), _WITHIN_SECONDS) == b"\r\n"
            assert await asyncio.wait_for(reader.read(), _WITHIN_SECONDS) == b""
            writer.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("allow_list", "address", "allowed"),
    [
        (None, "8.8.8.8", True),
        (None, "127.0.0.1", False),
        (None, "169.254.169.254", False),
        (None, "10.1.2.3", False),
        (None, "::ffff:127.0.0.1", False),
        ("0.0.0.0/0", "127.0.0.1", False),
        ("0.0.0.0/0", "169.254.169.254", False),
        ("127.0.0.1/32", "127.0.0.1", True),
        ("127.0.0.1/32", "::ffff:127.0.0.1", True),
        ("127.0.0.1/32", "127.0.0.2", False),
        ("169.254.169.254/32", "169.254.169.254", True),
        ("192.168.1.0/16", "192.168.7.7", True),
        ("10.0.0.0/8", "0.0.0.0", False),
    ],
)
def test_the_policy_decides_by_address(allow_list: str | None, address: str, allowed: bool) -> None:
    import ipaddress

    policy = EgressPolicy(parse_allow_list(allow_list) if allow_list else None)
    assert (policy.refusal(ipaddress.ip_address(address)) is None) is allowed


def test_a_name_is_resolved_once_and_the_checked_address_dialled() -> None:
    """DNS rebinding: a name that first answers an allowed address and then a refused one must
    not reach the refused one; the proxy connects to the address it checked."""

    async def scenario() -> None:
        reached: list[str] = []

        def listener(tag: str) -> Any:
            async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                reached.append(tag)
                writer.close()

            return accept

        allowed = await asyncio.start_server(listener("allowed"), "127.0.0.1", 0)
        port = allowed.sockets[0].getsockname()[1]
        try:
            refused = await asyncio.start_server(listener("refused"), "127.0.0.2", port)
        except OSError:
            allowed.close()
            pytest.skip("127.0.0.2 is not usable on this host")
        loop = asyncio.get_running_loop()
        real = loop.getaddrinfo
        answers = iter(["127.0.0.1"])

        async def rebinding(host: Any, *args: Any, **kwargs: Any) -> Any:
            if host == "rebind.test":
                host = next(answers, "127.0.0.2")  # the first lookup allowed, every later one not
            return await real(host, *args, **kwargs)

        loop.getaddrinfo = rebinding  # type: ignore[method-assign]
        try:
            async with _proxy(EgressLimits()) as proxy:
                reader, writer = await asyncio.open_unix_connection(str(proxy.socket_path))
                writer.write(f"CONNECT rebind.test:{port} HTTP/1.1\r\n\r\n".encode())
                status = await asyncio.wait_for(reader.readline(), _WITHIN_SECONDS)
                assert status.startswith(b"HTTP/1.1 200"), status
                await asyncio.wait_for(reader.read(), _WITHIN_SECONDS)
                writer.close()
        finally:
            loop.getaddrinfo = real  # type: ignore[method-assign]
            allowed.close()
            refused.close()
        assert reached == ["allowed"]

    asyncio.run(scenario())
