"""``daytonaflow up``: the long-lived process that keeps canvases' schedule and webhook triggers armed.

It arms every trigger of the canvases it is given, serves one webhook URL per webhook node
(``/webhooks/<canvas>/<node-id>``), fires schedules at their times, and starts one run per trigger
event on the embedded engine (the same run database as ``daytonaflow run``). The durable part
(schedule state, the event queue, the concurrency limit) is ``runner.triggers``; this module is
the clock, the HTTP listener and the signals.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
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
from daytonaflow.runner.triggers import ScheduleBook, TriggerQueue

#: The trigger components ``up`` keeps armed.
ARMABLE = (Schedule.name, Webhook.name)
#: How many events of one canvas may wait for a free run slot; a request beyond it gets 429.
MAX_QUEUED_EVENTS = 1000
#: The longest the schedule loop sleeps: a clock that jumps (a suspended laptop) is noticed soon.
_MAX_SLEEP = 30.0
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
        self._pumps: set[asyncio.Task[Any]] = set()

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
        """Queue one event for each schedule due now; returns the events queued."""
        fired = []
        now = self.now()
        for canvas, node in self.schedules():
            config = node.configuration

            def event_of(at: datetime, config: Mapping[str, Any] = config) -> dict[str, Any]:
                return emitted_event(Schedule, Schedule.tick(config, at), at)

            event_id = self.book.fire_due(canvas.name, node.id, _next_of(node), event_of, now)
            if event_id is not None:
                _log.info("canvas %s: schedule %s fired (event %s)", canvas.name, node.id, event_id)
                fired.append(event_id)
        return fired

    async def run_schedules(self) -> None:
        """Fire schedules at their times until cancelled."""
        while True:
            try:
                if self.fire_due_schedules():
                    await self.queue.pump()
            except DaytonaflowError as error:
                # A busy or damaged database must not disarm every schedule: say so and try again.
                _log.error("schedules: %s", error)
            upcoming = [
                moment
                for canvas, node in self.schedules()
                if (moment := self.book.next_fire_at(canvas.name, node.id)) is not None
            ]
            delay = _MAX_SLEEP
            if upcoming:
                delay = min(delay, max(0.0, (min(upcoming) - self.now()).total_seconds()))
            await asyncio.sleep(delay)

    # --- webhooks --------------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/webhooks/{canvas}/{node}", self._webhook, methods=["POST"]),
                Route("/triggers", self._list, methods=["GET"]),
            ]
        )

    async def _list(self, request: Request) -> JSONResponse:
        return JSONResponse({"triggers": [trigger.to_json() for trigger in self.armed()]})

    async def _webhook(self, request: Request) -> JSONResponse:
        canvas = self.canvases.get(request.path_params["canvas"])
        node = _trigger_node(canvas, request.path_params["node"]) if canvas is not None else None
        if canvas is None or node is None:
            return _reply(404, "no webhook trigger here: see the URLs `daytonaflow up` printed")
        body = await _bounded_body(request)
        if body is None:
            return _reply(413, f"the body is larger than {MAX_EVENT_SIZE // 1024} KiB")
        reference = Webhook.secret_reference(node.configuration)
        if reference is not None:
            try:
                secret = self.engine.secrets.get(*reference)
            except DaytonaflowError as error:
                # Names the secret and its key, never a value (the providers' errors do not hold one).
                _log.error("canvas %s: webhook %s: %s", canvas.name, node.id, error)
                return _reply(
                    500, f'the webhook\'s secret "{reference[0]}" key "{reference[1]}" is not available'
                )
            refusal = Webhook.refusal(node.configuration, request.headers, body, secret)
            if refusal is not None:
                _log.warning("canvas %s: webhook %s refused a request: %s", canvas.name, node.id, refusal)
                return _reply(401, refusal)
        try:
            parsed = json.loads(body) if body.strip() else None
        except (ValueError, RecursionError):
            return _reply(400, "the body is not JSON")
        if self.queue.queued(canvas.name) >= MAX_QUEUED_EVENTS:
            return _reply(
                429, f"{MAX_QUEUED_EVENTS} events of this canvas are waiting already; try again later"
            )
        payload = Webhook.received(node.configuration, parsed, request.headers.items())
        try:
            event = emitted_event(Webhook, payload, self.now())
        except DaytonaflowError as error:
            return _reply(400, str(error))
        # Committed before the reply: an accepted event survives whatever happens next.
        event_id = self.queue.record(canvas.name, node.id, event)
        self._pump(canvas.name)
        return JSONResponse({"eventId": event_id, "status": "queued"}, status_code=202)

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
        server = _Server(uvicorn.Config(self.app(), log_level="warning", access_log=False, lifespan="off"))
        with _stopped_by_signals(server):
            armed = self.arm()
            owner = current_owner()
            for name in self.canvases:
                rows = [(t.node_id, t.component, t.url) for t in armed if t.canvas == name]
                self.engine.store.set_armed_triggers(owner, name, rows)
            schedules: asyncio.Task[None] | None = None
            try:
                self.queue.adopt(await self.engine.resume())
                if announce is not None:
                    announce(armed)
                schedules = asyncio.create_task(self.run_schedules())
                await self.queue.pump()
                await server.serve(sockets=[sock])
            finally:
                if schedules is not None:
                    schedules.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await schedules
                await self.queue.aclose()
                self.engine.store.clear_armed_triggers(owner)
                for task in list(self._pumps):
                    task.cancel()
                await asyncio.gather(*self._pumps, return_exceptions=True)
                await self.engine.aclose()


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
