"""``LocalServer``: the API, toolbox and preview proxy in a background thread with its own loop."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount

from daytonaflow.localserver._cgroups import Cgroups
from daytonaflow.localserver._limits import (
    FILE_TABLE_PRESSURE,
    FILE_TABLE_SHARE,
    SandboxLimits,
    cap_open_files,
    host_file_max,
)
from daytonaflow.localserver._ptys import PrivatePtys
from daytonaflow.localserver._uids import (
    DEFAULT_SANDBOX_UIDS,
    DEFAULT_UID_CLAIMS,
    SandboxUids,
    check_uid_range,
)
from daytonaflow.localserver.api import ServerState, api_routes
from daytonaflow.localserver.disk import (
    DiskMode,
    default_free_floor,
    filesystem_space,
    resolve_disk_mode,
    volumes_for_existing_homes,
)
from daytonaflow.localserver.egress import raise_open_file_limit
from daytonaflow.localserver.errors import IsolationUnavailableError, LocalServerError
from daytonaflow.localserver.gitclone import install_askpass
from daytonaflow.localserver.http_common import EXCEPTION_HANDLERS, BearerAuth, ContainErrors
from daytonaflow.localserver.isolation import (
    IsolationReport,
    build_report,
    find_bwrap,
    find_node,
    find_python,
    probe_bwrap,
)
from daytonaflow.localserver.proxy import PreviewProxy, ProxyLimits, ProxyTimeouts
from daytonaflow.localserver.sandboxes import SandboxManager
from daytonaflow.localserver.tokens import PreviewSigner
from daytonaflow.localserver.toolbox import toolbox_routes
from daytonaflow.localserver.volumes import DEFAULT_VOLUME_BYTES

logger = logging.getLogger("daytonaflow.localserver")

_START_TIMEOUT_SECONDS = 30.0
_KEEP_ALIVE_SECONDS = 75
_TICK_SECONDS = 0.1
_DRAIN_POLL_SECONDS = 0.005


def default_state_dir() -> Path:
    """``$XDG_DATA_HOME/daytonaflow/local``, else ``~/.local/share/...``; root uses /var/lib."""
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg:
        return Path(xdg) / "daytonaflow" / "local"
    if os.geteuid() == 0:
        # /root is private to root, and the unprivileged sandboxes must traverse to their homes.
        return Path("/var/lib/daytonaflow/local")
    return Path.home() / ".local" / "share" / "daytonaflow" / "local"


#: Where a running server says how to reach it (mode 600: it holds the API key).
ENDPOINT_FILE = "endpoint.json"


@dataclass(frozen=True)
class RunningServer:
    """A server of another process that holds a state directory, as its endpoint file says."""

    api_url: str
    api_key: str
    pid: int


def running_server(state_dir: Path | None = None, *, wait: float = 10.0) -> RunningServer | None:
    """The server that holds ``state_dir`` now, or None when none does.

    One server per state directory: a second command (``daytonaflow run`` while ``daytonaflow ui``
    is open) shares the running one instead of failing on its lock. A server still starting (the
    lock held, no endpoint yet) is waited for up to ``wait`` seconds.
    """
    directory = Path(state_dir) if state_dir else default_state_dir()
    ends_at = time.monotonic() + wait
    while True:
        held, endpoint = _held_endpoint(directory)
        if not held or endpoint is not None or time.monotonic() >= ends_at:
            return endpoint
        time.sleep(0.02)


def _held_endpoint(directory: Path) -> tuple[bool, RunningServer | None]:
    try:
        descriptor = os.open(directory / "server.lock", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False, None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        pass  # held: a server runs there
    else:
        return False, None
    finally:
        os.close(descriptor)
    try:
        endpoint = json.loads((directory / ENDPOINT_FILE).read_text(encoding="utf-8"))
        return True, RunningServer(str(endpoint["apiUrl"]), str(endpoint["apiKey"]), int(endpoint["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return True, None  # still starting, or not ours to read


def _check_traversable(path: Path, uid: int) -> None:
    """bwrap runs as ``uid`` and resolves bind sources by path: every ancestor must let it pass."""
    if uid == os.geteuid():
        return
    for directory in [path, *path.parents]:
        info = directory.stat()
        if info.st_uid != uid and not info.st_mode & 0o001:
            raise IsolationUnavailableError(
                f"state directory {path} is not reachable by the sandbox user (uid {uid}): "
                f"{directory} lacks o+x; choose another --state-dir or run `chmod o+x {directory}`"
            )


class LocalServer:
    """An embedded Daytona-compatible server whose sandboxes are bubblewrap namespaces."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        state_dir: Path | None = None,
        *,
        proxy_port: int = 0,
        limits: SandboxLimits | None = None,
        monitor_interval: float = 1.0,
        keep_spare: bool = True,
        sandbox_uids: range | None = DEFAULT_SANDBOX_UIDS,
        private_ptys: bool = True,
        disk_mode: DiskMode = "auto",
        proxy_timeouts: ProxyTimeouts | None = None,
        proxy_limits: ProxyLimits | None = None,
        disk_free_floor: int | None = None,
        uid_claims: Path | None = DEFAULT_UID_CLAIMS,
        volume_bytes: int = DEFAULT_VOLUME_BYTES,
    ) -> None:
        """``sandbox_uids``: host uids handed out one per sandbox when running as root (``None``: all
        sandboxes share ``nobody``, as they must when not root; ``UnsafeSandboxUidsError`` for a
        range with root, ``nobody`` or uids from 2^31). ``uid_claims``: the directory where root
        servers claim those uids host-wide (``None``: this server's own bookkeeping only).
        ``private_ptys``: give each sandbox a devpts instance with its own limit when running as
        root. ``disk_free_floor``: free bytes of the state directory's filesystem below which
        accounting-mode sandboxes have their processes killed (``None``: 1 GiB or 5 % of that
        filesystem, whichever is more). ``volume_bytes``: what one volume may hold (its
        filesystem's size in loop mode, the size past which its users are killed otherwise)."""
        if sandbox_uids is not None:
            check_uid_range(sandbox_uids)
        self.host = host
        self.port = port
        self.proxy_port = proxy_port
        self.api_key = api_key or secrets.token_urlsafe(32)
        self.state_dir = Path(state_dir) if state_dir else default_state_dir()
        self.limits = limits or SandboxLimits()
        self.monitor_interval = monitor_interval
        self.keep_spare = keep_spare
        self.sandbox_uids = sandbox_uids
        self.uid_claims = uid_claims
        self.private_ptys = private_ptys
        self.disk_mode = disk_mode
        self.proxy_timeouts = proxy_timeouts or ProxyTimeouts()
        self.proxy_limits = proxy_limits or ProxyLimits()
        self.disk_free_floor = disk_free_floor
        self.volume_bytes = volume_bytes
        self.isolation: IsolationReport | None = None
        self.adopted: list[str] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._lock_file: Any = None
        self._uids: SandboxUids | None = None
        self.state: ServerState | None = None
        self.routes: list[BaseRoute] = []
        """What the API port serves (mounts included), once started: what a conformance test walks."""

    # ---- public surface ---------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://{self._display_host}:{self.port}/api"

    @property
    def toolbox_url(self) -> str:
        return f"http://{self._display_host}:{self.port}/toolbox"

    @property
    def proxy_url(self) -> str:
        return f"http://{self._display_host}:{self.proxy_port}/preview/{{port}}-{{sandboxId}}"

    @property
    def _display_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host

    def start(self) -> LocalServer:
        if self._thread is not None:
            raise LocalServerError("server already started")
        raise_open_file_limit()  # egress and previews hold descriptors for sandboxes
        self._thread = threading.Thread(target=self._run, name="daytonaflow-localserver", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_SECONDS):
            raise LocalServerError("local server did not start in time")
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise self._startup_error
        return self

    def stop(self) -> None:
        """Stop serving and end every sandbox process; sandboxes stay on disk as ``stopped``."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None or loop is None or stop is None:
            return
        loop.call_soon_threadsafe(stop.set)
        thread.join()
        self._thread = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def banner(self) -> list[str]:
        lines = [f"API URL:   {self.api_url}", f"API key:   {self.api_key}", f"Previews:  {self.proxy_url}"]
        lines.append(f"State dir: {self.state_dir}")
        if self.isolation is not None:
            lines += self.isolation.lines()
        if self.adopted:
            lines.append(f"adopted {len(self.adopted)} sandbox(es) left by an earlier server, as stopped")
        return lines

    # ---- the server thread ------------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as error:  # reported to start()'s caller
            if not self._ready.is_set():
                self._startup_error = error
            else:
                logger.exception("local server crashed")
        finally:
            if self._uids is not None:
                # A server stopped in a process that lives on must not keep its uids claimed.
                self._uids.close()
                self._uids = None
            self._ready.set()
            loop.close()

    def _prepare_state_dir(self, host_uid: int) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if host_uid != os.geteuid():
            self.state_dir.chmod(0o711)
        _check_traversable(self.state_dir, host_uid)
        self._lock_file = open(self.state_dir / "server.lock", "w")  # noqa: SIM115 - held until stop
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise LocalServerError(f"state directory {self.state_dir} is used by another server") from None

    def _write_endpoint(self) -> None:
        endpoint = {"apiUrl": self.api_url, "apiKey": self.api_key, "pid": os.getpid()}
        temporary = self.state_dir / f".{ENDPOINT_FILE}.{os.getpid()}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(endpoint, handle)
        os.replace(temporary, self.state_dir / ENDPOINT_FILE)

    def _secret(self) -> bytes:
        path = self.state_dir / "preview-secret"
        if path.exists():
            return path.read_bytes()
        secret = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secret)
        return secret

    async def _serve(self) -> None:
        bwrap = find_bwrap()
        python = find_python()
        if python is None:
            raise IsolationUnavailableError("no system python3 (/usr/bin/python3) to run the sandbox agent")
        uids = SandboxUids(self.sandbox_uids, self.uid_claims)
        self._uids = uids
        host_uid = uids.representative
        probe_bwrap(bwrap, host_uid)
        self._prepare_state_dir(host_uid)
        node_dir = find_node()
        if node_dir is not None:
            try:
                _check_traversable(node_dir, host_uid)
            except IsolationUnavailableError:
                logger.warning("Node.js at %s is not reachable by sandboxes; javascript disabled", node_dir)
                node_dir = None
        runtime = self.state_dir / "runtime"
        runtime.mkdir(mode=0o711, exist_ok=True)
        volumes, disk_fallback = await asyncio.get_running_loop().run_in_executor(
            None, resolve_disk_mode, self.disk_mode, runtime
        )
        existing_volumes, kept_loop_homes, kept_unmountable = None, 0, None
        if volumes is None:
            existing_volumes, kept_loop_homes, kept_unmountable = volumes_for_existing_homes(
                self.state_dir / "sandboxes"
            )
        instance = f"{os.getpid()}-{secrets.token_hex(4)}"
        Cgroups.clean_stale(set())
        cgroups = Cgroups(instance, host_uid)
        file_max = host_file_max()
        limits = cap_open_files(self.limits, file_max)
        ptys = PrivatePtys(self.state_dir / "runtime" / "pts") if self.private_ptys else None
        if ptys is not None and not ptys.available:
            ptys = None
        free_floor = self.disk_free_floor
        if free_floor is None:
            free_floor = default_free_floor(filesystem_space(self.state_dir)[1])
        manager = SandboxManager(
            state_dir=self.state_dir,
            limits=limits,
            bwrap=bwrap,
            python=python,
            node_dir=node_dir,
            uids=uids,
            cgroups=cgroups,
            ptys=ptys,
            monitor_interval=self.monitor_interval,
            keep_spare=self.keep_spare,
            file_budget=int(file_max * FILE_TABLE_SHARE),
            file_pressure=int(file_max * FILE_TABLE_PRESSURE),
            volumes=volumes,
            disk_free_floor=free_floor,
            existing_volumes=existing_volumes,
            volume_bytes=self.volume_bytes,
        )
        self.isolation = build_report(
            bwrap,
            uids,
            cgroups,
            limits,
            private_ptys=ptys is not None,
            file_max=file_max,
            loop_volumes=volumes is not None,
            disk_fallback=disk_fallback,
            disk_free_floor=free_floor,
            kept_loop_homes=kept_loop_homes,
            kept_unmountable=kept_unmountable,
        )
        api_socket = _listen(self.host, self.port)
        proxy_socket = _listen(self.host, self.proxy_port)
        self.port = api_socket.getsockname()[1]
        self.proxy_port = proxy_socket.getsockname()[1]
        manager.protected_ports = {self.port, self.proxy_port}
        state = ServerState(
            manager=manager,
            signer=PreviewSigner(self._secret()),
            report=self.isolation,
            askpass=install_askpass(self.state_dir),
            api_url=self.api_url,
            toolbox_url=self.toolbox_url,
            proxy_port=self.proxy_port,
            proxy_host=self._display_host,
            api_key=self.api_key,
        )
        self.state = state
        await manager.open()
        self.adopted = list(manager.adopted)
        api_app = Starlette(
            routes=[
                Mount("/api/toolbox", routes=toolbox_routes("/{sandbox}/toolbox")),
                Mount("/api", routes=api_routes()),
                Mount("/toolbox", routes=toolbox_routes()),
            ],
            exception_handlers=EXCEPTION_HANDLERS,
        )
        api_app.state.server = state
        self.routes = list(api_app.routes)
        servers = [
            _uvicorn(BearerAuth(ContainErrors(api_app), self.api_key), api_socket),
            _uvicorn(
                ContainErrors(PreviewProxy(state, self.proxy_timeouts, self.proxy_limits)), proxy_socket
            ),
        ]
        self._stop = asyncio.Event()
        tasks = [asyncio.create_task(s.serve(sockets=[sock])) for s, sock in servers]
        try:
            while not all(s.started for s, _ in servers):
                if any(t.done() for t in tasks):
                    for task in tasks:
                        if task.done() and task.exception():
                            raise task.exception()  # type: ignore[misc]
                    raise LocalServerError("HTTP server exited during startup")
                await asyncio.sleep(0.005)
            self._write_endpoint()
            self._ready.set()
            await self._stop.wait()
        finally:
            (self.state_dir / ENDPOINT_FILE).unlink(missing_ok=True)
            for server, _ in servers:
                server.request_exit()
            await asyncio.gather(*tasks, return_exceptions=True)
            await manager.close()
            for _, sock in servers:
                sock.close()
            if self._lock_file is not None:
                self._lock_file.close()


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: without it, Nagle plus delayed ACKs add 40 ms per reply.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class _RefusedHandshakeFilter(logging.Filter):
    """uvicorn's sans-I/O WebSocket protocol logs an error after every handshake refused with an
    HTTP answer of the app's own (a 401 for a bad key, a 404 for an unknown command), although
    it sent that answer: those refusals are not errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "ASGI callable returned without completing handshake."


_UVICORN_LOGGER = logging.getLogger("uvicorn.error")
if not any(isinstance(f, _RefusedHandshakeFilter) for f in _UVICORN_LOGGER.filters):
    _UVICORN_LOGGER.addFilter(_RefusedHandshakeFilter())


class _PromptServer(uvicorn.Server):
    """uvicorn's server, stopping as soon as it is asked to rather than at its next tick.

    uvicorn looks at ``should_exit`` every 0.1 s and, once stopping, sleeps 0.1 s and then
    polls its connections every 0.1 s: ~0.2 s added to every stop, paid by each CLI run. Here
    the main loop wakes at once on :meth:`request_exit`, and the shutdown waits for exactly
    what uvicorn's does (every connection closed, its response sent, within
    ``timeout_graceful_shutdown``), looking every few milliseconds. Written against uvicorn's
    own ``main_loop`` and ``shutdown`` (0.35 to 0.54), whose ticks it keeps for the date header.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit_requested = asyncio.Event()

    def request_exit(self) -> None:
        """From the server's own loop."""
        self.should_exit = True
        self._exit_requested.set()

    async def main_loop(self) -> None:
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit_requested.wait(), _TICK_SECONDS)
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        # Idle connections close now; busy ones once their response is sent.
        for connection in list(self.server_state.connections):
            connection.shutdown()
        try:
            await asyncio.wait_for(self._drained(), timeout=self.config.timeout_graceful_shutdown)
        except TimeoutError:
            logger.error("cancelling %d request(s) still running at shutdown", len(self.server_state.tasks))
            for task in self.server_state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _drained(self) -> None:
        while (self.server_state.connections or self.server_state.tasks) and not self.force_exit:
            await asyncio.sleep(_DRAIN_POLL_SECONDS)
        for server in self.servers:
            await server.wait_closed()


def _uvicorn(app: Any, sock: socket.socket) -> tuple[_PromptServer, socket.socket]:
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        ws="websockets-sansio",
        timeout_graceful_shutdown=2,
        # Well past clients' idle expiry (httpx: 5 s): a server closing an idle kept-alive
        # connection at the very moment a client reuses it resets that client's request.
        timeout_keep_alive=_KEEP_ALIVE_SECONDS,
    )
    return _PromptServer(config), sock
