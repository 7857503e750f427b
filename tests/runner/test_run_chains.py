"""Long chains: every node's expressions see exactly the events before it, also after a resume."""

from __future__ import annotations

import asyncio
import itertools
import socket
from typing import Any, ClassVar

from run_fakes import FAKE_COMPONENTS, Echo, FakeBackend, make_canvas

from daytonaflow.component import Component, ExecutionContext
from daytonaflow.runner import Canvas, Engine, RunStore, RunUpdate, parse_canvas
from daytonaflow.runner.progress import NODE_STARTED

DEAD_OWNER = f"{socket.gethostname()}:999999999:0"
LENGTH = 240
#: The node the first engine is stopped at, in the resume test.
GATE = 120


class Gate(Echo):
    """An echo that first waits at the integration's barrier: where the test stops the first engine."""

    name: ClassVar[str] = "test.gate"

    async def execute(self, ctx: ExecutionContext) -> None:
        backend: FakeBackend = ctx.integration
        assert backend.barrier is not None
        await backend.barrier.wait()
        await super().execute(ctx)


REGISTRY: dict[str, type[Component]] = {**FAKE_COMPONENTS, Gate.name: Gate}


def configuration(index: int) -> dict[str, Any]:
    """What node ``index`` reads: its predecessor, a node further back, a name, an id and the root."""
    value: dict[str, Any] = {"i": index, "root": "{{ root().data.tag }}"}
    if index >= 1:
        value["previous"] = "{{ previous().data.value.i }}"
        value["first"] = '{{ $["Step 0"].data.value.i }}'
    if index >= 7:
        value["back7"] = "{{ previous(7).data.value.i }}"
        value["by_id"] = f'{{{{ $["e{index // 2}"].data.value.i }}}}'
    if index > GATE:
        value["gate"] = '{{ $["test.gate"].data.value.i }}'
    return {"value": value}


def expected_value(index: int) -> dict[str, Any]:
    value: dict[str, Any] = {"i": index, "root": "chains"}
    if index >= 1:
        value["previous"] = index - 1
        value["first"] = 0
    if index >= 7:
        value["back7"] = index - 7
        value["by_id"] = index // 2
    if index > GATE:
        value["gate"] = GATE
    return value


def chain_canvas() -> Canvas:
    nodes = [
        {
            "id": f"e{index}",
            "name": f"Step {index}",
            "component": Gate.name if index == GATE else Echo.name,
            "configuration": configuration(index),
        }
        for index in range(LENGTH)
    ]
    ids = ["start", *(f"e{index}" for index in range(LENGTH))]
    return parse_canvas(make_canvas(nodes, list(itertools.pairwise(ids))))


def emitted_values(store: RunStore, run_id: str) -> dict[str, Any]:
    return {
        event.node_id: event.event["data"]["value"]
        for event in store.events(run_id)
        if event.node_id != "start"
    }


async def test_every_node_of_a_long_chain_reads_the_events_before_it(
    store: RunStore, backend: FakeBackend
) -> None:
    backend.barrier = asyncio.Barrier(1)
    engine = Engine(store, registry=REGISTRY, integration=backend)
    try:
        record = await engine.run(chain_canvas(), {"tag": "chains"})
    finally:
        await engine.aclose()
    assert record.status == "succeeded", record.error
    assert emitted_values(store, record.id) == {f"e{index}": expected_value(index) for index in range(LENGTH)}


async def test_a_long_chain_resumed_from_the_store_reads_the_same_events(
    store: RunStore, backend: FakeBackend
) -> None:
    backend.barrier = asyncio.Barrier(2)  # nobody else comes: the gate holds the first engine
    at_gate = asyncio.Event()

    def watch(update: RunUpdate) -> None:
        if update.kind == NODE_STARTED and update.node_id == f"e{GATE}":
            at_gate.set()

    first = Engine(store, registry=REGISTRY, integration=backend, observers=[watch])
    run_id = await first.start(chain_canvas(), {"tag": "chains"})
    await asyncio.wait_for(at_gate.wait(), 60)
    await first.aclose()
    assert len(emitted_values(store, run_id)) == GATE
    store.claim_run(run_id, store.get_run(run_id).owner, DEAD_OWNER)  # as if its process died

    backend.barrier = asyncio.Barrier(1)
    second = Engine(store, registry=REGISTRY, integration=backend)
    try:
        assert await second.resume() == [run_id]
        record = await asyncio.wait_for(second.wait(run_id), 120)
    finally:
        await second.aclose()
    assert record.status == "succeeded", record.error
    assert emitted_values(store, run_id) == {f"e{index}": expected_value(index) for index in range(LENGTH)}
