"""``daytonaflow up``: the long-lived process that keeps canvases' schedule and webhook triggers armed.

It arms every trigger of the canvases it is given, serves one webhook URL per webhook node
(``/webhooks/<canvas>/<node-id>``), fires schedules at their times, and starts one run per trigger
event on the embedded engine (the same run database as ``daytonaflow run``). The durable part
(schedule state, the event queue, the concurrency limit) is ``runner.triggers``; this module is
the clock, the HTTP listener and the signals.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from daytonaflow._serving import bind, signals_handled
from daytonaflow.builtins.schedule import Schedule
from daytonaflow.builtins.webhook import MAX_EVENT_SIZE, Webhook
from daytonaflow.errors import DaytonaflowError
from daytonaflow.runner.canvas import Canvas, Node, NodeType
from daytonaflow.runner.engine import Engine
from daytonaflow.runner.hooks import emitted_event
from daytonaflow.runner.ownership import current_owner
from daytonaflow.runner.store import RunStore
from daytonaflow.runner.triggers import Duplicate, ScheduleBook, TriggerQueue, record_event

#: The trigger components ``up`` keeps armed.
ARMABLE = (Schedule.name, Webhook.name)
#: How many events of one canvas may wait for a free run slot; a request beyond it gets 429.
MAX_QUEUED_EVENTS = 1000
#: How long a request may take to send its body (a slow sender holds a connection no longer).
BODY_DEADLINE = 10.0
#: How long a webhook request waits for the run database's write lock before it gets 503.
INTAKE_BUSY_TIMEOUT = 2.0
#: Connections served at once; beyond them uvicorn answers 503 at once.
MAX_CONNECTIONS = 64
#: The longest the schedule loop sleeps: a clock that jumps (a suspended laptop) is noticed soon.
_MAX_SLEEP = 30.0
#: How often old trigger events are forgotten (see ``TriggerQueue.prune``).
_PRUNE_EVERY = 3600.0
#: The least time between two log lines of the same repeated error.
_ERROR_LOG_EVERY = 60.0
_log = logging.getLogger("daytonaflow.up")


class UpError(DaytonaflowError):
    """``daytonaflow up`` cannot start: canvases it cannot arm, an address it cannot listen on."""


@dataclass(frozen=True)
class ArmedTrigger:
    canvas: str
    node_id: str
    node_name: str
    component: str
    #: The webhook's URL; None for a schedule.
    url: str | None = None
    #: The schedule's next fire time; None for a webhook (or a cron with no date left).
    next_fire: datetime | None = None

    def describe(self) -> str:
        """One line for the console: the webhook's URL, or the schedule's next fire time."""
        if self.url is not None:
            where = f"POST {self.url}"
        else:
            where = f"next fire {_iso(self.next_fire)}" if self.next_fire is not None else "no fire time left"
        return f"{self.canvas} / {self.node_id} ({self.component}): {where}"

    def to_json(self) -> dict[str, Any]:
        return {
            "canvas": self.canvas,
            "nodeId": self.node_id,
            "nodeName": self.node_name,
            "component": self.component,
            **({"url": self.url} if self.url is not None else {}),
            **({"nextFire": _iso(self.next_fire)} if self.next_fire is not None else {}),
        }


class TriggerHost:
    """Arms the triggers of ``canvases`` on ``engine`` and serves them; ``now`` is the clock."""

    def __init__(
        self,
        engine: Engine,
        canvases: Sequence[Canvas],
        *,
        max_concurrent: int,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        names = [canvas.name for canvas in canvases]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise UpError(f"more than one canvas is named {', '.join(twice)}: each needs its own name")
        self.engine = engine
        self.canvases = {canvas.name: canvas for canvas in canvases}
        self.now = now
        self.book = ScheduleBook(engine.store)
        self.queue = TriggerQueue(engine, self.canvases, max_concurrent=max_concurrent)
        self.base_url = ""
        #: How many times firing a schedule (or the schedule loop itself) has failed.
        self.failed_passes = 0
        self._errors = _RateLimitedLog(_log)
        self._pumps: set[asyncio.Task[Any]] = set()
        #: Where webhook requests are recorded, off the event loop.
        self.intake = _Intake(engine.store.path)

    # --- arming ------------------------------------------------------------------------------------

    def schedules(self) -> Iterator[tuple[Canvas, Node]]:
        yield from self._triggers(Schedule.name)

    def webhooks(self) -> Iterator[tuple[Canvas, Node]]:
        yield from self._triggers(Webhook.name)

    def arm(self) -> list[ArmedTrigger]:
        """Arm every schedule (durably) and list every trigger, in canvas order."""
        armed = []
        for canvas in self.canvases.values():
            for node in canvas.spec.nodes:
                if node.type is not NodeType.TRIGGER:
                    continue
                if node.component == Schedule.name:
                    next_fire = self.book.arm(
                        canvas.name, node.id, node.configuration, _next_of(node), self.now()
                    )
                    armed.append(
                        ArmedTrigger(canvas.name, node.id, node.name, node.component, next_fire=next_fire)
                    )
                elif node.component == Webhook.name:
                    url = self.webhook_url(canvas.name, node.id)
                    armed.append(ArmedTrigger(canvas.name, node.id, node.name, node.component, url=url))
        return armed

    def armed(self) -> list[ArmedTrigger]:
        """The triggers as they stand now (the schedules' next fire times from the database)."""
        listed = []
        for canvas in self.canvases.values():
            for node in canvas.spec.nodes:
                if node.type is NodeType.TRIGGER and node.component == Schedule.name:
                    next_fire = self.book.next_fire_at(canvas.name, node.id)
                    listed.append(
                        ArmedTrigger(canvas.name, node.id, node.name, node.component, next_fire=next_fire)
                    )
                elif node.type is NodeType.TRIGGER and node.component == Webhook.name:
                    url = self.webhook_url(canvas.name, node.id)
                    listed.append(ArmedTrigger(canvas.name, node.id, node.name, node.component, url=url))
        return listed

    def webhook_url(self, canvas_name: str, node_id: str) -> str:
        return f"{self.base_url}/webhooks/{quote(canvas_name, safe='')}/{quote(node_id, safe='')}"

    # --- schedules -----------------------------------------------------------------------------------

    def fire_due_schedules(self) -> list[str]:
        """Queue one event for each schedule due now; returns the events queued.

        A schedule that fails to fire (a full disk, a busy database) does not keep the others
        from firing: its error is logged (see ``_errors``) and it is tried again on the next pass.
        """
        fired = []
        now = self.now()
        for canvas, node in self.schedules():
            config = node.configuration

            def event_of(at: datetime, config: Mapping[str, Any] = config) -> dict[str, Any]:
                return emitted_event(Schedule, Schedule.tick(config, at), at)

            try:
                event_id = self.book.fire_due(
                    canvas.name, node.id, _next_of(node), event_of, now, max_queued=MAX_QUEUED_EVENTS
                )
            except Exception as error:
                self.failed_passes += 1
                self._errors.log(f"canvas {canvas.name}: schedule {node.id}: {error}")
                continue
            if event_id is not None:
                _log.info("canvas %s: schedule %s fired (event %s)", canvas.name, node.id, event_id)
                fired.append(event_id)
        return fired

    async def run_schedules(self) -> None:
        """Fire schedules at their times until cancelled; forget old trigger events once an hour."""
        backoff = 0.0
        pruned_at: float | None = None
        while True:
            failures = self.failed_passes
            try:
                if pruned_at is None or time.monotonic() - pruned_at >= _PRUNE_EVERY:
                    pruned_at = time.monotonic()
                    self.queue.prune(self.now())
                if self.fire_due_schedules():
                    await self.queue.pump()
                upcoming = [
                    moment
                    for canvas, node in self.schedules()
                    if (moment := self.book.next_fire_at(canvas.name, node.id)) is not None
                ]
            except Exception as error:
                # A busy or damaged database must not disarm every schedule: say so and try again.
                self.failed_passes += 1
                self._errors.log(f"schedules: {error}")
                upcoming = []
            delay = _MAX_SLEEP
            if upcoming:
                delay = min(delay, max(0.0, (min(upcoming) - self.now()).total_seconds()))
            # A schedule that keeps failing stays due: without a back-off it would spin.
            backoff = min(_MAX_SLEEP, max(1.0, backoff * 2)) if self.failed_passes > failures else 0.0
            await asyncio.sleep(max(delay, backoff))

    # --- webhooks --------------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/webhooks/{canvas}/{node}", self._webhook, methods=["POST"]),
                Route("/triggers", self._list, methods=["GET"]),
            ]
        )

    async def _list(self, request: Request) -> JSONResponse:
        # Every canvas, node and URL: for this machine only, whatever address the webhooks listen on.
        if not _is_loopback(request.client.host if request.client is not None else ""):
            return _reply(404, "not found")
        return JSONResponse({"triggers": [trigger.to_json() for trigger in self.armed()]})

    async def _webhook(self, request: Request) -> JSONResponse:
        canvas = self.canvases.get(request.path_params["canvas"])
        node = _trigger_node(canvas, request.path_params["node"]) if canvas is not None else None
        if canvas is None or node is None:
            return _reply(404, "no webhook trigger here: see the URLs `daytonaflow up` printed")
        secret = None
        reference = Webhook.secret_reference(node.configuration)
        if reference is not None:
            try:
                secret = self.engine.secrets.get(*reference)
                problem = Webhook.unusable_secret(secret)
            except DaytonaflowError as error:
                # Names the secret and its key, never a value (the providers' errors do not hold one).
                problem = str(error)
            if problem is not None:
                # The detail is for the operator's log; the caller learns nothing about the setup.
                _log.error(
                    "canvas %s: webhook %s: the secret %r key %r is not usable: %s",
                    canvas.name,
                    node.id,
                    *reference,
                    problem,
                )
                return _reply(500, "the webhook cannot check requests now; see the `daytonaflow up` log")
        # A token is checked before the body is read: a caller without it costs no buffering.
        if secret is not None and not Webhook.needs_body(node.configuration):
            refusal = Webhook.refusal(node.configuration, request.headers, b"", secret)
            if refusal is not None:
                return self._refused(canvas, node, refusal)
        try:
            async with asyncio.timeout(BODY_DEADLINE):
                body = await _bounded_body(request)
        except TimeoutError:
            return _reply(408, f"the body did not arrive within {BODY_DEADLINE:g} seconds")
        except ClientDisconnect:
            # The sender went away mid-request: nothing to answer, nothing worth a traceback.
            _log.info("canvas %s: webhook %s: the sender left before its body ended", canvas.name, node.id)
            return _reply(400, "the request ended before its body")
        if body is None:
            return _reply(413, f"the body is larger than {MAX_EVENT_SIZE // 1024} KiB")
        if secret is not None and Webhook.needs_body(node.configuration):
            refusal = Webhook.refusal(node.configuration, request.headers, body, secret)
            if refusal is not None:
                return self._refused(canvas, node, refusal)
        try:
            parsed = json.loads(body) if body.strip() else None
        except (ValueError, RecursionError):
            return _reply(400, "the body is not JSON")
        payload = Webhook.received(node.configuration, parsed, request.headers.items(), secret)
        try:
            event = emitted_event(Webhook, payload, self.now())
        except DaytonaflowError as error:
            return _reply(400, str(error))
        delivery = Webhook.delivery_id(node.configuration, request.headers)
        try:
            # Committed before the reply: an accepted event survives whatever happens next.
            event_id = await self.intake.record(canvas.name, node.id, event, delivery, MAX_QUEUED_EVENTS)
        except Duplicate as duplicate:
            _log.info("canvas %s: webhook %s: a replayed delivery started nothing", canvas.name, node.id)
            return JSONResponse({"eventId": duplicate.event_id, "status": "duplicate"}, status_code=200)
        except _QueueFull:
            return _reply(
                429, f"{MAX_QUEUED_EVENTS} events of this canvas are waiting already; try again later"
            )
        except _DatabaseBusy:
            _log.warning(
                "canvas %s: webhook %s: the run database is busy, answered 503", canvas.name, node.id
            )
            return JSONResponse(
                {"message": "the run database is busy; try again shortly"},
                status_code=503,
                headers={"Retry-After": "1"},
            )
        self._pump(canvas.name)
        return JSONResponse({"eventId": event_id, "status": "queued"}, status_code=202)

    def _refused(self, canvas: Canvas, node: Node, refusal: str) -> JSONResponse:
        _log.warning("canvas %s: webhook %s refused a request: %s", canvas.name, node.id, refusal)
        return _reply(401, refusal)

    def exposure_warnings(self, host: str) -> list[str]:
        """What to warn of before listening on ``host``: a webhook anyone who reaches it may call."""
        if _is_loopback(host):
            return []
        return [
            f"canvas {canvas.name}: webhook {node.id} has authentication none and listens on {host}:"
            " anyone who reaches this address starts runs"
            for canvas, node in self.webhooks()
            if Webhook.secret_reference(node.configuration) is None
        ]

    def _pump(self, canvas_name: str) -> None:
        task = asyncio.create_task(self.queue.pump(canvas_name))
        self._pumps.add(task)
        task.add_done_callback(self._pumps.discard)

    def _triggers(self, component: str) -> Iterator[tuple[Canvas, Node]]:
        for canvas in self.canvases.values():
            for node in canvas.spec.nodes:
                if node.type is NodeType.TRIGGER and node.component == component:
                    yield canvas, node

    # --- the process -------------------------------------------------------------------------------------

    async def serve(
        self, *, host: str, port: int, announce: Callable[[list[ArmedTrigger]], None] | None = None
    ) -> None:
        """Arm, serve and fire until SIGINT or SIGTERM; then stop accepting and return.

        Runs in progress are left at their last durable step (the engine commits each one) and
        resume with the next ``up``; queued events stay queued.
        """
        sock = bind(host, port, UpError)
        shown = "127.0.0.1" if host in ("", "0.0.0.0") else (f"[{host}]" if ":" in host else host)
        self.base_url = f"http://{shown}:{sock.getsockname()[1]}"
        server = _Server(
            uvicorn.Config(
                self.app(),
                log_level="warning",
                access_log=False,
                lifespan="off",
                limit_concurrency=MAX_CONNECTIONS,
                timeout_keep_alive=5,
            )
        )
        with _stopped_by_signals(server):
            lock = _lock_database(self.engine.store.path)
            owner = current_owner()
            schedules: asyncio.Task[None] | None = None
            try:
                for warning in self.exposure_warnings(host):
                    _log.warning("%s", warning)
                armed = self.arm()
                for name in self.canvases:
                    rows = [(t.node_id, t.component, t.url) for t in armed if t.canvas == name]
                    self.engine.store.set_armed_triggers(owner, name, rows)
                self.queue.adopt(await self.engine.resume())
                if announce is not None:
                    announce(armed)
                schedules = asyncio.create_task(self.run_schedules())
                await self.queue.pump()
                await server.serve(sockets=[sock])
            finally:
                # Each step runs whatever the one before it raised: the next `up` must find the
                # armed triggers cleared and the lock free.
                try:
                    if schedules is not None:
                        schedules.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await schedules
                finally:
                    try:
                        await self.queue.aclose()
                        self.engine.store.clear_armed_triggers(owner)
                        for task in list(self._pumps):
                            task.cancel()
                        await asyncio.gather(*self._pumps, return_exceptions=True)
                    finally:
                        try:
                            await self.intake.aclose()
                            await self.engine.aclose()
                        finally:
                            lock.close()


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: ``serve`` installs handlers before it announces the
    URLs (a SIGTERM right after them must stop the process cleanly too) and keeps them to the end."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.contextmanager
def _stopped_by_signals(server: uvicorn.Server) -> Iterator[None]:
    """SIGINT or SIGTERM ends ``server`` gracefully; a second one forces it."""

    def stop(signum: int) -> None:
        if server.should_exit:
            server.force_exit = True
        server.should_exit = True

    with signals_handled(stop):
        yield


def _lock_database(db: Path) -> TextIO:
    """Hold the lock that makes ``up`` the only one on ``db`` (two would fire each tick twice and
    overwrite each other's armed triggers); released when the file closes or the process ends."""
    path = db.with_name(db.name + ".up.lock")
    handle = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise UpError(
            f"{db}: another `daytonaflow up` ({holder}) keeps this run database's triggers armed;"
            " stop it, or give this one its own --db"
        ) from None
    handle.truncate(0)
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle


class _QueueFull(Exception):
    """The canvas's queue holds ``MAX_QUEUED_EVENTS`` already."""


class _DatabaseBusy(Exception):
    """Another connection held the run database's write lock past ``INTAKE_BUSY_TIMEOUT``."""


class _Intake:
    """Records webhook requests on a connection of its own, in a thread of its own: a run
    database held by another process (a `daytonaflow run` writing) stalls no request for the
    engine's 30 s busy timeout, and blocks the event loop not at all; past ``INTAKE_BUSY_TIMEOUT``
    the request gets 503."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # One thread: the connection is made in it and used only from it (sqlite3's rule).
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="daytonaflow-intake")
        self._store: RunStore | None = None

    async def record(
        self, canvas_name: str, node_id: str, event: dict[str, Any], delivery_id: str | None, limit: int
    ) -> str:
        """The event's id once committed; raises ``Duplicate``, ``_QueueFull`` or ``_DatabaseBusy``."""

        def record() -> str:
            store = self._connection()
            if store.count_queued_trigger_events(canvas_name) >= limit:
                raise _QueueFull
            return record_event(store, canvas_name, node_id, event, delivery_id=delivery_id)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, record)
        except sqlite3.OperationalError as error:
            if "locked" in str(error) or "busy" in str(error):
                raise _DatabaseBusy from error
            raise

    async def aclose(self) -> None:
        def close() -> None:
            if self._store is not None:
                self._store.close()
                self._store = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown()

    def _connection(self) -> RunStore:
        if self._store is None:
            self._store = RunStore(self.path, busy_timeout=INTAKE_BUSY_TIMEOUT)
        return self._store


class _RateLimitedLog:
    """Logs an error at once, then the same error at most once per ``_ERROR_LOG_EVERY`` seconds
    (with how many were not logged): a full disk must not flood the log."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._last: tuple[str, float] | None = None
        self._quiet = 0

    def log(self, message: str) -> None:
        now = time.monotonic()
        if self._last is not None and self._last[0] == message and now - self._last[1] < _ERROR_LOG_EVERY:
            self._quiet += 1
            return
        repeated = f" (and {self._quiet} more times)" if self._quiet else ""
        self._log.error("%s%s", message, repeated)
        self._last, self._quiet = (message, now), 0


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def _trigger_node(canvas: Canvas, node_id: str) -> Node | None:
    for node in canvas.spec.nodes:
        if node.id == node_id and node.type is NodeType.TRIGGER and node.component == Webhook.name:
            return node
    return None


async def _bounded_body(request: Request) -> bytes | None:
    """The body, or None once it passes the bound (read no further than that)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_EVENT_SIZE:
        return None
    chunks = bytearray()
    async for chunk in request.stream():
        chunks.extend(chunk)
        if len(chunks) > MAX_EVENT_SIZE:
            return None
    return bytes(chunks)


def _next_of(node: Node) -> Callable[[datetime, datetime], datetime | None]:
    config = node.configuration

    def next_fire(after: datetime, reference: datetime) -> datetime | None:
        return Schedule.next_fire(config, after, reference)

    return next_fire


def _reply(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
