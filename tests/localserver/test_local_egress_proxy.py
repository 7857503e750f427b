"""The egress proxy on its own (no sandbox): its bounds and its teardown, on a Unix socket."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from daytonaflow.localserver.egress import (
    LOOKUPS_PER_SANDBOX,
    ConnectionBudget,
    EgressLimits,
    EgressPolicy,
    EgressProxy,
    is_this_host,
    parse_allow_list,
)

_LOOPBACK = EgressPolicy(parse_allow_list("127.0.0.1/32"))
_WITHIN_SECONDS = 20.0


@contextlib.asynccontextmanager
async def _proxy(
    limits: EgressLimits,
    policy: EgressPolicy = _LOOPBACK,
    **options: Any,
) -> AsyncIterator[EgressProxy]:
    directory = Path(tempfile.mkdtemp(prefix="dfl-egress-"))
    proxy = EgressProxy("test", policy, directory / "egress.sock", frozenset(), limits, **options)
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


@contextlib.asynccontextmanager
async def _closing_listener() -> AsyncIterator[int]:
    """A host loopback server that sends nothing and closes its end once its client has."""

    async def drain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(drain, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
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


async def _refused_then_closed(proxy: EgressProxy) -> bytes:
    """What an over-limit connection receives until the proxy's end closes (it sends nothing)."""
    reader, writer = await asyncio.open_unix_connection(str(proxy.socket_path))
    try:
        return await asyncio.wait_for(reader.read(), _WITHIN_SECONDS)
    finally:
        writer.close()


def test_every_connection_past_the_bound_gets_a_503_and_is_closed_by_the_proxy() -> None:
    """A refused connection must not hold a descriptor: the proxy closes it after its 503."""

    async def scenario() -> None:
        async with _silent_listener() as port, _proxy(EgressLimits(connections=2)) as proxy:
            held = [await _tunnel(proxy, port) for _ in range(2)]
            assert all(status.startswith(b"HTTP/1.1 200") for _, _, status in held)
            for _ in range(3):
                received = await _refused_then_closed(proxy)
                assert received.startswith(b"HTTP/1.1 503"), received
                assert b"2 connections open already" in received
            for _, writer, _ in held:
                writer.close()

    asyncio.run(scenario())


def test_the_connection_budget_is_shared_by_every_proxy() -> None:
    async def scenario() -> None:
        budget = ConnectionBudget(2)
        async with (
            _closing_listener() as port,
            _proxy(EgressLimits(), budget=budget) as first,
            _proxy(EgressLimits(), budget=budget) as second,
        ):
            _, one, status = await _tunnel(first, port)
            assert status.startswith(b"HTTP/1.1 200")
            _, two, status = await _tunnel(second, port)
            assert status.startswith(b"HTTP/1.1 200")
            received = await _refused_then_closed(first)
            assert received.startswith(b"HTTP/1.1 503") and b"2 egress connections" in received
            two.close()
            for _ in range(100):  # the second proxy notices the close and gives its share back
                if second.open_connections == 0:
                    break
                await asyncio.sleep(0.1)
            _, three, status = await _tunnel(first, port)
            assert status.startswith(b"HTTP/1.1 200")
            one.close()
            three.close()

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
        # IPv6 transition ranges embed an IPv4 address (64:ff9b::7f00:1 is 127.0.0.1 via NAT64)
        (None, "64:ff9b::7f00:1", False),
        (None, "64:ff9b:1::808:808", False),
        (None, "::7f00:1", False),
        (None, "::ffff:0:7f00:1", False),
        (None, "2002:7f00:1::1", False),
        (None, "2001:0:4136:e378::1", False),
        (None, "fec0::1", False),
        (None, "192.88.99.1", False),
        (None, "2001:4860::8888", True),
        ("::/0", "64:ff9b::7f00:1", False),
        ("::/0", "2002:7f00:1::1", False),
        ("::/0", "2001:4860::8888", True),
        ("0.0.0.0/0", "192.88.99.1", False),
        ("64:ff9b::/96", "64:ff9b::7f00:1", True),
        ("192.88.99.0/24", "192.88.99.1", True),
        ("::/96", "::1", False),
    ],
)
def test_the_policy_decides_by_address(allow_list: str | None, address: str, allowed: bool) -> None:
    policy = EgressPolicy(parse_allow_list(allow_list) if allow_list else None)
    assert (policy.refusal(ipaddress.ip_address(address)) is None) is allowed


@pytest.mark.parametrize(
    ("allow_list", "address", "allowed"),
    [
        (None, "8.8.8.8", False),
        (None, "2001:4860::8888", False),
        ("0.0.0.0/0", "8.8.8.8", False),
        ("8.0.0.0/8", "8.8.8.8", False),
        ("10.0.0.0/8", "10.1.2.3", False),
        ("8.8.8.8/32", "8.8.8.8", True),
        ("10.1.2.3/32", "10.1.2.3", True),
        ("10.1.2.3/32", "::ffff:10.1.2.3", True),
        ("127.0.0.0/8", "127.0.0.1", True),
    ],
)
def test_an_address_of_this_host_opens_only_to_an_entry_naming_exactly_it(
    allow_list: str | None, address: str, allowed: bool
) -> None:
    """Services bound to 0.0.0.0 on the host are firewalled from outside, not from its sandboxes
    (the addresses stand for this host's own: no connection is made)."""
    policy = EgressPolicy(parse_allow_list(allow_list) if allow_list else None)
    assert (policy.refusal(ipaddress.ip_address(address), own=True) is None) is allowed


def test_the_loopback_address_is_this_hosts() -> None:
    assert is_this_host(ipaddress.ip_address("127.0.0.1"))
    assert is_this_host(ipaddress.ip_address("::ffff:127.0.0.1"))


def test_a_name_is_resolved_once_and_the_checked_address_dialled() -> None:
    """DNS rebinding: a name that first answers an allowed address and then a refused one must
    not reach the refused one; the proxy connects to the address it checked. (The public address
    is never dialled: the dial is redirected to a loopback listener, recording what it was given.)"""

    async def scenario() -> None:
        answers = iter([["8.8.8.8"]])
        lookups: list[str] = []

        def rebinding(host: str, port: int) -> Sequence[str]:
            lookups.append(host)
            return next(answers, ["127.0.0.1"])  # the first lookup allowed, every later one not

        dialled: list[str] = []
        async with (
            _silent_listener() as listening,
            _proxy(EgressLimits(), EgressPolicy(None), resolver=rebinding) as proxy,
        ):

            async def dial(address: Any, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
                dialled.append(f"{address}:{port}")
                return await asyncio.open_connection("127.0.0.1", listening)

            proxy._dial = dial  # type: ignore[method-assign]
            reader, writer = await asyncio.open_unix_connection(str(proxy.socket_path))
            writer.write(b"CONNECT rebind.test:443 HTTP/1.1\r\n\r\n")
            status = await asyncio.wait_for(reader.readline(), _WITHIN_SECONDS)
            assert status.startswith(b"HTTP/1.1 200"), status
            writer.close()
        assert lookups == ["rebind.test"]
        assert dialled == ["8.8.8.8:443"]

    asyncio.run(scenario())


def test_a_name_with_an_allow_list_opens_only_where_it_resolves_inside_the_list() -> None:
    """Names are resolved on the host once; what is dialled is the checked address."""

    async def scenario() -> None:
        addresses = {"inside.test": ["127.0.0.1"], "outside.test": ["127.0.0.2"]}

        def resolver(host: str, port: int) -> Sequence[str]:
            return addresses[host]

        policy = EgressPolicy.of(False, "127.0.0.1/32")
        assert policy is not None
        async with (
            _silent_listener() as port,
            _proxy(EgressLimits(), resolver=resolver, policy=policy) as proxy,
        ):
            answers = []
            for name in ("inside.test", "outside.test"):
                reader, writer = await asyncio.open_unix_connection(str(proxy.socket_path))
                writer.write(f"CONNECT {name}:{port} HTTP/1.1\r\n\r\n".encode())
                answers.append(await asyncio.wait_for(reader.readline(), _WITHIN_SECONDS))
                writer.close()
            assert answers[0].startswith(b"HTTP/1.1 200"), answers
            assert answers[1].startswith(b"HTTP/1.1 403"), answers

    asyncio.run(scenario())


class _StuckResolver:
    """A resolver whose nameserver never answers, until released; counts lookups in progress."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.waiting = 0
        self._lock = threading.Lock()

    def __call__(self, host: str, port: int) -> Sequence[str]:
        with self._lock:
            self.waiting += 1
        self.release.wait(120)
        raise OSError("no answer")


async def _stuck_lookups(
    proxy: EgressProxy, resolver: _StuckResolver, count: int, until: int = LOOKUPS_PER_SANDBOX
) -> list[asyncio.StreamWriter]:
    """``count`` CONNECTs to names on ``proxy``, once ``until`` lookups are stuck in ``resolver``."""
    writers = []
    for index in range(count):
        _, writer = await asyncio.open_unix_connection(str(proxy.socket_path))
        writer.write(f"CONNECT n{index}.stuck.test:443 HTTP/1.1\r\n\r\n".encode())
        writers.append(writer)
    for _ in range(200):
        if resolver.waiting >= until:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # time for any lookup past the per-sandbox bound to start too
    return writers


def _public_proxy(resolver: Callable[[str, int], Sequence[str]]) -> Any:
    return _proxy(EgressLimits(connect_seconds=60), EgressPolicy(None), resolver=resolver)


def test_stuck_lookups_of_sandboxes_leave_the_loops_default_executor_free() -> None:
    """Previews and clones run on the loop's default executor (6 threads on 2 cores): the
    lookups of three sandboxes whose nameserver never answers must not take it."""

    async def scenario() -> None:
        stuck = _StuckResolver()
        try:
            async with (
                _public_proxy(stuck) as one,
                _public_proxy(stuck) as two,
                _public_proxy(stuck) as three,
            ):
                writers = []
                for held, proxy in enumerate((one, two, three), start=1):
                    writers += await _stuck_lookups(proxy, stuck, 20, until=held * LOOKUPS_PER_SANDBOX)
                loop = asyncio.get_running_loop()
                free = await asyncio.wait_for(loop.run_in_executor(None, lambda: "free"), _WITHIN_SECONDS)
                assert free == "free"
                for writer in writers:
                    writer.close()
        finally:
            stuck.release.set()

    asyncio.run(scenario())


def test_stuck_lookups_of_one_sandbox_do_not_hold_another_sandboxs_lookups() -> None:
    async def scenario() -> None:
        stuck = _StuckResolver()
        try:
            async with (
                _public_proxy(stuck) as hostile,
                _public_proxy(lambda host, port: ["8.8.8.8"]) as other,
            ):
                writers = await _stuck_lookups(hostile, stuck, 40)
                assert stuck.waiting == LOOKUPS_PER_SANDBOX
                dialled: list[str] = []

                async def dial(address: Any, port: int) -> Any:
                    dialled.append(str(address))  # never dialled for real: recorded and refused
                    raise OSError("not dialled in tests")

                other._dial = dial  # type: ignore[method-assign]
                reader, writer = await asyncio.open_unix_connection(str(other.socket_path))
                writer.write(b"CONNECT elsewhere.test:443 HTTP/1.1\r\n\r\n")
                await asyncio.wait_for(reader.read(), _WITHIN_SECONDS)
                writer.close()
                assert dialled == ["8.8.8.8"]
                for stuck_writer in writers:
                    stuck_writer.close()
        finally:
            stuck.release.set()

    asyncio.run(scenario())


def test_the_server_lifts_a_low_soft_open_file_limit_towards_the_hard_one() -> None:
    """In a child process (the limit is process-wide) started with a soft limit of 256."""
    import resource
    import subprocess
    import sys

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.skip(f"the hard limit ({hard}) leaves nothing to raise")
    probe = (
        "import resource; from daytonaflow.localserver.egress import raise_open_file_limit; "
        "raise_open_file_limit(); print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    child = subprocess.run(
        [sys.executable, "-c", probe],
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    expected = 1 << 16 if hard == resource.RLIM_INFINITY else min(hard, 1 << 16)
    assert int(child.stdout) == expected
