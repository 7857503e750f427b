"""Network egress for sandboxes that ask for it: one filtering HTTP proxy per sandbox.

A sandbox has its own network namespace with nothing but ``lo``: no address, interface or route
leads out, and that stays so. A sandbox created with ``networkBlockAll: false`` or a
``networkAllowList`` gets one way out instead: this proxy, listening on a Unix socket in a host
directory that bwrap binds into the sandbox (see ``SANDBOX_NET_DIR``). The agent relays
``127.0.0.1:EGRESS_PORT`` inside the sandbox to that socket and points ``HTTP_PROXY`` and
``HTTPS_PROXY`` at it, so pip, curl and every HTTP library use it unchanged.

The proxy speaks HTTP CONNECT (any TCP stream, in practice TLS) and absolute-form requests
(``GET http://host/path``, plain HTTP). Each destination is resolved here, on the host, and the
connection goes to an address that was checked, never to the name again (a second lookup could
answer differently: DNS rebinding). Addresses allowed:

- with an allow list: those inside one of its networks, and only IP literals (a name would be
  resolved here first, and a query name carries data out whatever the list says). Loopback,
  link-local and the IPv6 transition ranges that embed an IPv4 address (NAT64, 6to4, Teredo, ...)
  only when a listed network lies wholly inside that range (``127.0.0.1/32`` opens the host's
  loopback; ``0.0.0.0/0`` does not); another address of this host only through an entry naming
  exactly it (``/32``), since services bound to every address of the host are firewalled from
  outside, not from here;
- without one: public (globally routable) addresses only, never one of this host's, never one in
  a transition range.

The server's own ports (API, toolbox, previews) on any address of this host are refused always,
allow list or not: sandbox code must never reach the API that manages it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

logger = logging.getLogger("daytonaflow.localserver.egress")

#: Where the sandbox sees the host directory holding its proxy's socket.
SANDBOX_NET_DIR = "/opt/daytonaflow/net"
SOCKET_NAME = "egress.sock"
#: The port inside the sandbox (squid's) that the agent relays to the proxy.
EGRESS_PORT = 3128
#: Networks a create may list: Daytona's example lists two; a list is a policy, not a routing table.
MAX_ALLOW_LIST_ENTRIES = 32
#: Egress connections open at once across every proxy of this process (each holds two descriptors).
MAX_TOTAL_CONNECTIONS = 1024
#: Threads resolving names for every proxy of this process, and how many one proxy may hold: a
#: lookup whose nameserver never answers holds its thread for the resolver's own timeout.
RESOLVER_THREADS = 16
LOOKUPS_PER_SANDBOX = 4
_OPEN_FILES_WANTED = 1 << 16
# How long an over-limit connection's refusal may take before its socket is closed regardless.
_REFUSAL_SECONDS = 2.0

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Ranges an allow list opens only when a listed network lies wholly inside them.
_LOCAL = tuple(ipaddress.ip_network(net) for net in ("127.0.0.0/8", "169.254.0.0/16", "::1/128", "fe80::/10"))
# Ranges whose addresses embed an IPv4 address a relay or translator forwards to (so ``64:ff9b::
# 7f00:1`` may be 127.0.0.1 behind a NAT64), or that are obsolete: never "public".
_TRANSITION = tuple(
    ipaddress.ip_network(net)
    for net in (
        "64:ff9b::/96",  # NAT64, well-known prefix
        "64:ff9b:1::/48",  # NAT64, local use
        "::/96",  # IPv4-compatible
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
        "2002::/16",  # 6to4
        "2001::/32",  # Teredo
        "fec0::/10",  # site-local, deprecated
        "192.88.99.0/24",  # 6to4 relay anycast
    )
)
_GUARDED = _LOCAL + _TRANSITION
_HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-connection", b"proxy-authorization", b"te", b"upgrade"}


class NetworkPolicyError(ValueError):
    """A create's network fields do not describe a policy (the message names the field)."""


@dataclass(frozen=True)
class EgressPolicy:
    """Which destinations a sandbox may reach; ``allowed`` ``None``: any public address."""

    allowed: tuple[_IPNetwork, ...] | None

    @classmethod
    def of(cls, block_all: bool, allow_list: str | None) -> EgressPolicy | None:
        """The policy a sandbox's fields ask for, ``None`` for no egress at all.

        ``networkBlockAll: true`` wins over a list, as on Daytona. Unlike Daytona, a sandbox that
        names neither has no egress: the local default stays a sandbox that cannot reach out.
        """
        if block_all:
            return None
        if allow_list is not None:
            return cls(parse_allow_list(allow_list))
        return cls(None)

    def refusal(self, address: _IPAddress, *, own: bool = False) -> str | None:
        """Why ``address`` may not be reached, ``None`` when it may; ``own``: it is an address of
        this host (see :func:`is_this_host`)."""
        address = _unmapped(address)
        if address.is_unspecified or address.is_multicast:
            return "not a unicast address"
        guards = [g for g in _GUARDED if g.version == address.version and address in g]
        if own and not address.is_loopback:
            guards.append(ipaddress.ip_network(address))  # opened by an entry naming exactly it
        if self.allowed is None:
            if not address.is_global:
                return "not a public address (no networkAllowList names it)"
            if any(g in _TRANSITION for g in guards):
                return "in an IPv6 transition or site-local range (no networkAllowList names it)"
            if own:
                return "an address of this host (no networkAllowList entry names it)"
            return None
        for network in self.allowed:
            if address.version != network.version or address not in network:
                continue
            if all(network.subnet_of(g) for g in guards):  # type: ignore[arg-type]
                return None
        if own:
            return "an address of this host, opened only by a networkAllowList entry naming exactly it"
        return "not in the sandbox's networkAllowList"


def parse_allow_list(raw: str) -> tuple[_IPNetwork, ...]:
    """Daytona's comma-separated CIDR list (host bits allowed, as in its own example)."""
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if not items:
        raise NetworkPolicyError("networkAllowList must name at least one CIDR network")
    if len(items) > MAX_ALLOW_LIST_ENTRIES:
        raise NetworkPolicyError(f"networkAllowList may name at most {MAX_ALLOW_LIST_ENTRIES} networks")
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise NetworkPolicyError(f"networkAllowList entry {item!r} is not a CIDR network") from None
    return tuple(networks)


@dataclass(frozen=True)
class EgressLimits:
    """Bounds of one sandbox's proxy: open connections at once, and how long each may be silent."""

    connections: int = 64
    idle_seconds: float = 120.0
    head_seconds: float = 30.0
    connect_seconds: float = 15.0
    head_bytes: int = 16 << 10


class ConnectionBudget:
    """Connections open at once across proxies (each on its own server's loop, so a lock)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._used = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._used >= self.capacity:
                return False
            self._used += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self._used -= 1


_PROCESS_BUDGET = ConnectionBudget(MAX_TOTAL_CONNECTIONS)
_RESOLVER = ThreadPoolExecutor(RESOLVER_THREADS, thread_name_prefix="daytonaflow-egress-dns")


def raise_open_file_limit() -> None:
    """Lift this process's soft RLIMIT_NOFILE towards its hard limit (the usual soft 1024 is less
    than a full egress budget needs, two descriptors a connection); at most to
    ``_OPEN_FILES_WANTED``, as programs the server starts inherit it and some walk every
    descriptor up to it. A limit that cannot be raised stays as it is."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = _OPEN_FILES_WANTED if hard == resource.RLIM_INFINITY else min(hard, _OPEN_FILES_WANTED)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _system_resolver(host: str, port: int) -> list[str]:
    """The addresses of ``host`` as the host's resolver answers (blocking: run on ``_RESOLVER``)."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class EgressProxy:
    """The proxy of one sandbox, on ``socket_path``; :meth:`close` ends it and every connection."""

    sandbox_id: str
    policy: EgressPolicy
    socket_path: Path
    protected_ports: frozenset[int]
    limits: EgressLimits = field(default_factory=EgressLimits)
    #: Blocking: a name's addresses. Run on a small executor of its own, never the loop's default
    #: one, which previews and clones share.
    resolver: Callable[[str, int], Sequence[str]] = _system_resolver
    budget: ConnectionBudget = field(default_factory=lambda: _PROCESS_BUDGET)
    _server: asyncio.Server | None = None
    _connections: set[asyncio.Task[None]] = field(default_factory=set)
    _lookups: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(LOOKUPS_PER_SANDBOX))

    async def open(self, owner_uid: int) -> None:
        """Listen; the socket belongs to ``owner_uid`` (the sandbox's host uid) and nobody else."""
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        self._server = await asyncio.start_unix_server(
            self._accept, path=str(self.socket_path), limit=self.limits.head_bytes
        )
        os.chmod(self.socket_path, 0o600)
        if os.geteuid() == 0 and owner_uid != 0:
            os.chown(self.socket_path, owner_uid, -1)
        elif owner_uid != os.geteuid():
            # A server that is not root cannot hand the socket over; its directory is the sandbox's.
            os.chmod(self.socket_path, 0o666)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None:
            writer.close()
            return
        if len(self._connections) >= self.limits.connections:
            await _refuse_and_close(
                writer, f"the sandbox has {self.limits.connections} connections open already"
            )
            return
        if not self.budget.take():
            await _refuse_and_close(writer, f"the server has {self.budget.capacity} egress connections open")
            return
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # the sandbox's client went away or sent garbage: nothing to answer
        except asyncio.CancelledError:
            pass  # ended by close(); the task ends here (3.11's start_server logs a cancelled one)
        finally:
            self._connections.discard(task)
            self.budget.give_back()
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.limits.head_seconds)
        except asyncio.LimitOverrunError:
            await _answer(writer, 431, "request head too large")
            return
        except TimeoutError:
            await _answer(writer, 408, "no request head in time")
            return
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            await _answer(writer, 400, "not an HTTP/1 proxy request")
            return
        method, target = parts[0].decode("latin-1"), parts[1].decode("latin-1")
        try:
            host, port, origin_target = _destination(method, target)
            address = await self._checked_address(host, port)
            upstream_reader, upstream_writer = await self._dial(address, port)
        except _Refused as refused:
            # Host and port only: the path, query and headers may carry the sandbox's secrets.
            logger.info("egress of sandbox %s refused: %s", self.sandbox_id, refused.reason)
            await _answer(writer, refused.status, refused.reason)
            return
        try:
            if origin_target is None:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                upstream_writer.write(_forwarded_head(method, origin_target, lines[1:]))
            await _splice(reader, writer, upstream_reader, upstream_writer, self.limits.idle_seconds)
        finally:
            upstream_writer.close()

    async def _checked_address(self, host: str, port: int) -> _IPAddress:
        """The first address of ``host`` the policy allows (resolved once, here)."""
        where = f"{host}:{port}"
        try:
            candidates: list[_IPAddress] = [ipaddress.ip_address(host)]
        except ValueError:
            # Names resolve on the host, with or without an allow list (a package index is a name
            # behind a CDN); the address reached is the one checked. Their queries leave the host.
            candidates = await self._resolve(host, port)
        refusals = []
        for address in candidates:
            own = is_this_host(address)
            reason = self.policy.refusal(address, own=own)
            if reason is None and port in self.protected_ports and own:
                reason = "a port of the daytonaflow server itself"
            if reason is None:
                return address
            refusals.append(f"{address}: {reason}")
        raise _Refused(403, f"{where} refused by the sandbox's network policy ({'; '.join(refusals)})")

    async def _resolve(self, host: str, port: int) -> list[_IPAddress]:
        try:
            found = await asyncio.wait_for(self._lookup(host, port), self.limits.connect_seconds)
            return list(dict.fromkeys(ipaddress.ip_address(address.split("%")[0]) for address in found))
        except (OSError, TimeoutError, UnicodeError, ValueError):
            raise _Refused(502, f"{host} does not resolve") from None

    async def _lookup(self, host: str, port: int) -> Sequence[str]:
        """One lookup on the resolver threads, holding one of this proxy's lookup slots until the
        thread is done with it: a timed-out wait frees neither, so a sandbox never holds more
        than its share of the threads."""
        await self._lookups.acquire()
        try:
            running = asyncio.get_running_loop().run_in_executor(_RESOLVER, self.resolver, host, port)
        except BaseException:
            self._lookups.release()
            raise
        running.add_done_callback(self._lookup_done)
        return await asyncio.shield(running)

    def _lookup_done(self, finished: asyncio.Future[Sequence[str]]) -> None:
        self._lookups.release()
        if not finished.cancelled():
            finished.exception()  # retrieved: a lookup nobody waits for any more is not an error

    async def _dial(
        self, address: _IPAddress, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await asyncio.wait_for(
                asyncio.open_connection(str(address), port), self.limits.connect_seconds
            )
        except (OSError, TimeoutError) as error:
            raise _Refused(502, f"{address}:{port} cannot be reached: {type(error).__name__}") from None


def _destination(method: str, target: str) -> tuple[str, int, str | None]:
    """Host, port and the origin-form target (``None`` for a CONNECT tunnel) of a proxy request."""
    if method == "CONNECT":
        host, sep, digits = target.rpartition(":")
        if not sep or not digits.isdigit() or not host:
            raise _Refused(400, "CONNECT needs host:port")
        return host.strip("[]"), _port(int(digits)), None
    parts = urlsplit(target)
    if parts.scheme != "http" or not parts.hostname:
        raise _Refused(400, "only absolute http:// requests and CONNECT are proxied")
    try:
        port = parts.port or 80
    except ValueError:
        raise _Refused(400, "bad port") from None
    path = parts.path or "/"
    return parts.hostname, _port(port), path + (f"?{parts.query}" if parts.query else "")


def _port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise _Refused(400, f"port {port} is out of range")
    return port


def _forwarded_head(method: str, target: str, header_lines: Iterable[bytes]) -> bytes:
    """The request as the origin server expects it: origin-form, no proxy headers, one request
    per connection (the proxy relays bytes, so a second request could go to another host)."""
    kept = [line for line in header_lines if line.split(b":", 1)[0].strip().lower() not in _HOP_BY_HOP]
    first = f"{method} {target} HTTP/1.1".encode("latin-1")
    return b"\r\n".join([first, *kept, b"Connection: close"]) + b"\r\n\r\n"


def _unmapped(address: _IPAddress) -> _IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_this_host(address: _IPAddress) -> bool:
    """Whether ``address`` is one of this host's own: binding to it succeeds only then."""
    address = _unmapped(address)
    if address.is_loopback or address.is_unspecified:
        return True
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((str(address), 0))
        except OSError:
            return False
    return True


async def _refuse_and_close(writer: asyncio.StreamWriter, reason: str) -> None:
    """A 503, then the socket closed: a refused connection must not hold a descriptor."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_answer(writer, 503, reason), _REFUSAL_SECONDS)
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), _REFUSAL_SECONDS)


async def _answer(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    body = (reason + "\n").encode()
    head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: text/plain\r\n"
    head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    with contextlib.suppress(OSError):
        writer.write(head.encode() + body)
        await writer.drain()


_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


async def _splice(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream_writer: asyncio.StreamWriter,
    idle_seconds: float,
) -> None:
    """Copy both ways until the upstream has ended (the client may have ended its side before),
    or until neither side moved a byte for ``idle_seconds``. A client keeping its end open after
    the answer (keep-alive) does not hold the connection: the upstream closed it."""
    last = [time.monotonic()]

    async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await source.read(65536):
                last[0] = time.monotonic()
                sink.write(data)
                await sink.drain()
            if sink.can_write_eof():
                sink.write_eof()

    pumps = [
        asyncio.create_task(pump(client_reader, upstream_writer)),
        asyncio.create_task(pump(upstream_reader, client_writer)),
    ]
    try:
        while not pumps[1].done():
            await asyncio.wait(pumps, timeout=min(idle_seconds, 5.0))
            if time.monotonic() - last[0] > idle_seconds:
                break
    finally:
        for task in pumps:
            task.cancel()
        for task in pumps:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
