"""A wide fan-out holds bounded work: a capped number of hooks at once, little memory per pending node."""

from __future__ import annotations

import asyncio
import ssl
import threading
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from run_fakes import FakeComponent, ValuePayload, make_canvas

from daytonaflow.builtins import BUILTIN_COMPONENTS
from daytonaflow.component import ExecutionContext
from daytonaflow.runner import DEFAULT_MAX_ACTIVE_HOOKS, Engine, RunStore, parse_canvas
from daytonaflow.runner.graph import CanvasGraph


class _InFlight:
    """How many hooks run at this moment, and the most seen at once."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.release = asyncio.Event()

    def enter(self) -> None:
        self.now += 1
        self.most = max(self.most, self.now)

    def leave(self) -> None:
        self.now -= 1


class Held(FakeComponent):
    """Counts itself in flight and waits until the test releases every node."""

    name: ClassVar[str] = "test.held"
    in_flight: ClassVar[_InFlight]

    async def execute(self, ctx: ExecutionContext) -> None:
        self.in_flight.enter()
        try:
            await self.in_flight.release.wait()
        finally:
            self.in_flight.leave()
        ctx.emit("default", ValuePayload(value=ctx.node_id))


def fanout(nodes: int, component: str, configuration: dict[str, Any] | None = None) -> Any:
    document = make_canvas(
        [{"id": f"n{i}", "component": component, "configuration": configuration or {}} for i in range(nodes)],
        [("start", f"n{i}") for i in range(nodes)],
        name=f"fanout-{nodes}",
    )
    return parse_canvas(document)


@pytest.fixture
def in_flight() -> Iterator[_InFlight]:
    Held.in_flight = _InFlight()
    yield Held.in_flight


async def _settle(in_flight: _InFlight, expected: int) -> None:
    for _ in range(2000):
        if in_flight.now == expected:
            return
        await asyncio.sleep(0.005)


async def test_no_more_hooks_run_at_once_than_the_engine_allows(
    store: RunStore, in_flight: _InFlight
) -> None:
    engine = Engine(store, registry={Held.name: Held}, max_active_hooks=10)
    run_id = await engine.start(fanout(300, Held.name))
    await _settle(in_flight, 10)
    await asyncio.sleep(0.05)  # give any node over the cap the chance to start
    assert (in_flight.now, in_flight.most) == (10, 10)
    in_flight.release.set()
    record = await engine.wait(run_id)
    assert record.status == "succeeded"
    assert in_flight.most == 10
    assert len([e for e in store.events(run_id) if e.node_id != "start"]) == 300


async def test_the_default_cap_applies_to_a_fan_out_wider_than_it(
    store: RunStore, in_flight: _InFlight
) -> None:
    engine = Engine(store, registry={Held.name: Held})
    run_id = await engine.start(fanout(DEFAULT_MAX_ACTIVE_HOOKS + 50, Held.name))
    await _settle(in_flight, DEFAULT_MAX_ACTIVE_HOOKS)
    await asyncio.sleep(0.05)
    assert in_flight.most == DEFAULT_MAX_ACTIVE_HOOKS
    in_flight.release.set()
    assert (await engine.wait(run_id)).status == "succeeded"


async def test_cancelling_a_fan_out_cancels_the_nodes_still_waiting_for_a_slot(
    store: RunStore, in_flight: _InFlight
) -> None:
    engine = Engine(store, registry={Held.name: Held}, max_active_hooks=5)
    run_id = await engine.start(fanout(50, Held.name))
    await _settle(in_flight, 5)
    record = await engine.cancel(run_id)
    assert record.status == "cancelled"
    assert in_flight.now == 0
    statuses = {e.status for e in store.executions(run_id) if e.node_id != "start"}
    assert statuses == {"cancelled"}


async def test_a_pending_node_costs_little_memory(store: RunStore, in_flight: _InFlight) -> None:
    # Python-level memory of 2,000 pending nodes (tasks, executions, rows being written); before
    # the cap every node held its hook's state. Generous: a regression is tens of KiB per node.
    engine = Engine(store, registry={Held.name: Held}, max_active_hooks=1)
    canvas = fanout(2000, Held.name)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run_id = await engine.start(canvas)
        await _settle(in_flight, 1)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    in_flight.release.set()
    assert (await engine.wait(run_id)).status == "succeeded"
    assert held / 2000 < 16 * 1024, f"{held / 2000 / 1024:.1f} KiB per pending node"


class _CountingHandler(BaseHTTPRequestHandler):
    lock = threading.Lock()
    now = 0
    most = 0

    def do_GET(self) -> None:
        with self.lock:
            type(self).now += 1
            type(self).most = max(type(self).most, type(self).now)
        try:
            threading.Event().wait(0.01)
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with self.lock:
                type(self).now -= 1

    def log_message(self, format: str, *args: Any) -> None:
        return


async def test_an_http_fan_out_keeps_requests_in_flight_and_tls_contexts_bounded(
    store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loaded.append(self)
        original(self, *args, **kwargs)

    # The CA bundle load is most of a TLS context's megabyte: one per node was the leak.
    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CountingHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        engine = Engine(store, registry=BUILTIN_COMPONENTS, max_active_hooks=8)
        record = await engine.run(fanout(120, "http", {"url": url}))
    finally:
        server.shutdown()
    assert record.status == "succeeded", record.error
    assert 1 <= _CountingHandler.most <= 8
    assert len(loaded) <= 1


class IdleHeld(FakeComponent):
    """Waits, as a followed command does, inside ``ctx.waiting()``; reports output meanwhile."""

    name: ClassVar[str] = "test.idleHeld"
    in_flight: ClassVar[_InFlight]

    async def execute(self, ctx: ExecutionContext) -> None:
        async with ctx.waiting():
            self.in_flight.enter()
            ctx.report_output(f"{ctx.node_id} is waiting\n")
            try:
                await self.in_flight.release.wait()
            finally:
                self.in_flight.leave()
        ctx.emit("default", ValuePayload(value=ctx.node_id))


async def test_hooks_waiting_on_the_outside_do_not_hold_the_engines_slots(
    store: RunStore, in_flight: _InFlight
) -> None:
    IdleHeld.in_flight = in_flight
    engine = Engine(store, registry={IdleHeld.name: IdleHeld}, max_active_hooks=2)
    run_id = await engine.start(fanout(20, IdleHeld.name))
    # Every node gets to wait at once: two slots, twenty long waits, no starvation.
    await _settle(in_flight, 20)
    assert in_flight.now == 20
    in_flight.release.set()
    assert (await engine.wait(run_id)).status == "succeeded"


async def test_a_cancelled_waiting_hook_gives_back_no_slot_it_does_not_hold(
    store: RunStore, in_flight: _InFlight
) -> None:
    IdleHeld.in_flight = in_flight
    engine = Engine(store, registry={IdleHeld.name: IdleHeld}, max_active_hooks=2)
    run_id = await engine.start(fanout(10, IdleHeld.name))
    await _settle(in_flight, 10)
    assert (await engine.cancel(run_id)).status == "cancelled"
    # The slots are whole again: exactly two hooks may hold one at a time afterwards.
    Held.in_flight = second = _InFlight()
    engine.registry = {**engine.registry, Held.name: Held}  # type: ignore[assignment]
    next_run = await engine.start(fanout(5, Held.name))
    await _settle(second, 2)
    await asyncio.sleep(0.05)
    assert second.most == 2
    second.release.set()
    assert (await engine.wait(next_run)).status == "succeeded"


async def test_output_a_hook_reports_reaches_the_observers_as_it_comes(
    store: RunStore, in_flight: _InFlight
) -> None:
    IdleHeld.in_flight = in_flight
    updates: list[Any] = []
    engine = Engine(store, registry={IdleHeld.name: IdleHeld}, observers=[updates.append])
    run_id = await engine.start(fanout(1, IdleHeld.name))
    await _settle(in_flight, 1)
    outputs = [update for update in updates if update.kind == "node.output"]
    assert [(update.node_id, update.text) for update in outputs] == [("n0", "n0 is waiting\n")]
    in_flight.release.set()
    assert (await engine.wait(run_id)).status == "succeeded"


def test_a_repeated_edge_is_one_listener_and_listeners_keep_edge_order() -> None:
    targets = [f"b{index}" for index in range(50)]
    edges: list[tuple[str, str] | tuple[str, str, str]] = [("start", target) for target in targets]
    edges += [("start", "b7"), ("start", "b0")]  # the same edges again
    nodes = [{"id": target, "component": "test.echo", "configuration": {"value": 1}} for target in targets]
    graph = CanvasGraph(parse_canvas(make_canvas(nodes, edges)))
    assert graph.listeners("start", "default") == targets
