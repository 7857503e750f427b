"""A hook wait limit on the embedded engine: waits become scheduled checks that resume the same wait.

The real components on real sandboxes of the embedded local server, with ``Engine(hook_wait_limit)``
as a distributed engine sets it: a command or a sandbox start that outlasts the limit is handed to
the engine (node.waiting), and each check follows the same command, never a second one.
"""

from __future__ import annotations

import asyncio
import shlex
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from run_support import live_sandboxes, sandbox_resources

from daytonaflow.components import DaytonaIntegration
from daytonaflow.components._wire import SandboxInfo
from daytonaflow.runner import Engine, RunStore, RunUpdate, parse_canvas

pytestmark = pytest.mark.sandbox
LIMIT = 0.2
#: Long enough for the run to end on a loaded machine; never a claim about speed.
RUN_DEADLINE = 120
#: Prints each process's argv (words joined by spaces, one trailing) on its own line.
SCAN = "for p in /proc/[0-9]*; do tr '\\0\\n' '  ' < $p/cmdline 2>/dev/null; echo; done"


def canvas(*nodes: dict[str, Any], edges: list[tuple[str, str, str]]) -> Any:
    """start -> create-sandbox -> ``nodes``...; edges as (source, target, channel)."""
    return parse_canvas(
        {
            "apiVersion": "v1",
            "kind": "Canvas",
            "metadata": {"name": "hook-wait-limit"},
            "spec": {
                "nodes": [
                    {"id": "start", "type": "TYPE_TRIGGER", "component": "start"},
                    {"id": "create-sandbox", "type": "TYPE_ACTION", "component": "daytona.createSandbox"},
                    *nodes,
                ],
                "edges": [
                    {"sourceId": "start", "targetId": "create-sandbox", "channel": "default"},
                    *({"sourceId": s, "targetId": t, "channel": c} for s, t, c in edges),
                ],
            },
        }
    )


def command_node(node_id: str, command: str, **config: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "TYPE_ACTION",
        "component": "daytona.executeCommand",
        "configuration": {
            "sandbox": '{{ $["daytona.createSandbox"].data.id }}',
            "command": command,
            **config,
        },
    }


def delete_node(node_id: str = "delete-sandbox") -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "TYPE_ACTION",
        "component": "daytona.deleteSandbox",
        "configuration": {"sandbox": '{{ $["daytona.createSandbox"].data.id }}'},
    }


def event_data(store: RunStore, run_id: str, node_id: str) -> dict[str, Any]:
    (event,) = [e for e in store.events(run_id) if e.node_id == node_id]
    data: dict[str, Any] = event.event["data"]
    return data


def waits_of(updates: list[RunUpdate], node_id: str) -> int:
    return sum(1 for u in updates if u.kind == "node.waiting" and u.node_id == node_id)


def output_of(updates: list[RunUpdate], node_id: str) -> str:
    """The output the live view was shown for ``node_id``, in order."""
    return "".join(str(u.text) for u in updates if u.kind == "node.output" and u.node_id == node_id)


@pytest.fixture
async def limited_engine(
    store: RunStore, integration: Any, updates: list[RunUpdate]
) -> AsyncIterator[Engine]:
    """An engine that hands every wait longer than :data:`LIMIT` to a scheduled check."""
    engine = Engine(store, integration=integration, observers=[updates.append], hook_wait_limit=LIMIT)
    yield engine
    await engine.aclose()


async def test_a_command_longer_than_the_limit_completes_through_checks_with_its_whole_output(
    limited_engine: Engine, store: RunStore, updates: list[RunUpdate], integration: Any
) -> None:
    command = "echo ran >> /tmp/runs; echo begin; sleep 3; echo done"
    document = canvas(
        command_node("sleep", command),
        command_node("count-runs", "cat /tmp/runs"),
        delete_node(),
        edges=[
            ("create-sandbox", "sleep", "default"),
            ("sleep", "count-runs", "success"),
            ("count-runs", "delete-sandbox", "success"),
        ],
    )
    record = await asyncio.wait_for(limited_engine.run(document), RUN_DEADLINE)
    assert record.status == "succeeded", record.error
    assert event_data(store, record.id, "sleep")["result"] == "begin\ndone\n"
    # Handed to the engine several times (the first checks come within a fraction of a second).
    assert waits_of(updates, "sleep") >= 3
    # One command ran, however many checks followed it.
    assert event_data(store, record.id, "count-runs")["result"] == "ran\n"
    assert await live_sandboxes(integration) == []


async def test_output_shown_live_across_checks_is_shown_once(
    limited_engine: Engine, store: RunStore, updates: list[RunUpdate]
) -> None:
    # Each check follows the stream again from its start: what was shown must not be shown twice.
    command = "for i in 1 2 3 4 5 6; do echo line $i; sleep 0.5; done"
    document = canvas(
        command_node("lines", command),
        delete_node(),
        edges=[("create-sandbox", "lines", "default"), ("lines", "delete-sandbox", "success")],
    )
    record = await asyncio.wait_for(limited_engine.run(document), RUN_DEADLINE)
    assert record.status == "succeeded", record.error
    expected = "".join(f"line {i}\n" for i in range(1, 7))
    assert event_data(store, record.id, "lines")["result"] == expected
    assert waits_of(updates, "lines") >= 2
    assert output_of(updates, "lines") == expected


async def test_a_command_past_its_timeout_is_killed_across_checks_and_reported_timed_out(
    limited_engine: Engine, store: RunStore, updates: list[RunUpdate]
) -> None:
    document = canvas(
        command_node("sleepy", "echo started; sleep 30.5", timeout=2),
        command_node("find-sleeper", f"{SCAN} | grep -c '^sleep 30.5 $' || true"),
        delete_node(),
        edges=[
            ("create-sandbox", "sleepy", "default"),
            ("sleepy", "find-sleeper", "failed"),
            ("find-sleeper", "delete-sandbox", "success"),
        ],
    )
    record = await asyncio.wait_for(limited_engine.run(document), RUN_DEADLINE)
    assert record.status == "succeeded", record.error
    sleepy = event_data(store, record.id, "sleepy")
    assert (sleepy["timeout"], sleepy["exitCode"], sleepy["result"]) == (True, 124, "started\n")
    assert waits_of(updates, "sleepy") >= 2
    assert event_data(store, record.id, "find-sleeper")["result"] == "0\n"


async def test_a_zero_limit_still_brings_a_command_to_its_end(
    store: RunStore, integration: Any, updates: list[RunUpdate]
) -> None:
    # No wait at all is allowed: every check must still learn that the command ended.
    engine = Engine(store, integration=integration, observers=[updates.append], hook_wait_limit=0)
    try:
        document = canvas(
            # A timeout far off: its kill grace must not be what ends the wait.
            command_node("short", "sleep 1; echo finished", timeout=3600),
            delete_node(),
            edges=[("create-sandbox", "short", "default"), ("short", "delete-sandbox", "success")],
        )
        record = await asyncio.wait_for(engine.run(document), RUN_DEADLINE)
    finally:
        await engine.aclose()
    assert record.status == "succeeded", record.error
    assert event_data(store, record.id, "short")["result"] == "finished\n"
    assert waits_of(updates, "short") >= 1


class _SlowStarts:
    """Reports a sandbox of the real server as ``creating`` for its first seconds, as Daytona's cloud
    does while it provisions one (the local server answers a create once the sandbox is started)."""

    def __init__(self, integration: DaytonaIntegration, seconds: float) -> None:
        self.creates = 0
        self._client = integration.client
        self._seconds = seconds
        self._created_at: dict[str, float] = {}
        self._create, self._get = self._client.create_sandbox, self._client.get_sandbox
        self._client.create_sandbox = self.create_sandbox  # type: ignore[method-assign]
        self._client.get_sandbox = self.get_sandbox  # type: ignore[method-assign]

    async def create_sandbox(self, *args: Any, **kwargs: Any) -> SandboxInfo:
        sandbox = await self._create(*args, **kwargs)
        self.creates += 1
        self._created_at[sandbox.id] = time.monotonic()
        return sandbox.model_copy(update={"state": "creating"})

    async def get_sandbox(self, sandbox_id: str) -> SandboxInfo:
        sandbox = await self._get(sandbox_id)
        created_at = self._created_at.get(sandbox_id)
        if created_at is not None and time.monotonic() < created_at + self._seconds:
            return sandbox.model_copy(update={"state": "creating"})
        return sandbox


async def test_a_sandbox_start_longer_than_the_limit_completes_through_checks_with_one_sandbox(
    limited_engine: Engine, store: RunStore, updates: list[RunUpdate], integration: DaytonaIntegration
) -> None:
    slow = _SlowStarts(integration, seconds=2.0)
    document = canvas(
        command_node("hello", "echo hello"),
        edges=[("create-sandbox", "hello", "default")],
    )
    run_id = await limited_engine.start(document, keep_resources=True)
    record = await asyncio.wait_for(limited_engine.wait(run_id), RUN_DEADLINE)
    assert record.status == "succeeded", record.error
    assert waits_of(updates, "create-sandbox") >= 3
    sandbox_id = event_data(store, record.id, "create-sandbox")["id"]
    assert event_data(store, record.id, "hello")["result"] == "hello\n"
    assert slow.creates == 1
    assert await live_sandboxes(integration) == [sandbox_id]
    await integration.client.delete_sandbox(sandbox_id, force=True)


async def test_cancelling_a_run_while_a_handed_off_command_waits_kills_the_command(
    limited_engine: Engine, store: RunStore, updates: list[RunUpdate], integration: Any
) -> None:
    document = canvas(
        command_node("long", "sleep 120.5", timeout=300),
        delete_node(),
        edges=[("create-sandbox", "long", "default"), ("long", "delete-sandbox", "success")],
    )
    # Sandboxes kept: the command must end because its session is ended, not with its sandbox.
    run_id = await limited_engine.start(document, keep_resources=True)
    while waits_of(updates, "long") < 2:
        await asyncio.sleep(0.01)
    (sandbox,) = sandbox_resources(store, run_id)
    assert await sleepers(integration, sandbox.resource_id, "sleep 120.5") == 1
    record = await asyncio.wait_for(limited_engine.cancel(run_id), RUN_DEADLINE)
    try:
        assert record.status == "cancelled"
        assert {e.node_id: e.status for e in store.executions(run_id)}["long"] == "cancelled"
        assert await sleepers(integration, sandbox.resource_id, "sleep 120.5") == 0
    finally:
        await integration.client.delete_sandbox(sandbox.resource_id, force=True)


async def test_cancelling_a_run_while_a_handed_off_sandbox_start_waits_deletes_the_sandbox(
    limited_engine: Engine, store: RunStore, updates: list[RunUpdate], integration: DaytonaIntegration
) -> None:
    _SlowStarts(integration, seconds=300.0)
    document = canvas(command_node("hello", "echo hello"), edges=[("create-sandbox", "hello", "default")])
    # Kept resources: the node's own cancel must delete the sandbox it was making, not the run's end.
    run_id = await limited_engine.start(document, keep_resources=True)
    while waits_of(updates, "create-sandbox") < 2:
        await asyncio.sleep(0.01)
    assert len(await live_sandboxes(integration)) == 1
    record = await asyncio.wait_for(limited_engine.cancel(run_id), RUN_DEADLINE)
    assert record.status == "cancelled"
    assert await live_sandboxes(integration) == []


async def sleepers(integration: Any, sandbox_id: str, argv: str) -> int:
    """How many processes in the sandbox run exactly ``argv``."""
    script = f"{SCAN} | grep -c '^{argv} $' || true"
    answer = await integration.client.execute(sandbox_id, "bash -c " + shlex.quote(script))
    return int(answer.result.strip())
