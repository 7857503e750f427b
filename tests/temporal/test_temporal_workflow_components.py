"""Test-only components for the workflow tests (no backend): what they did is kept in module state.

Also a worker process entry point (``python test_temporal_workflow_components.py ADDRESS QUEUE``)
for the test that kills a worker mid-hook.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from daytonaflow.builtins import Filter, If, Merge, Noop, Wait
from daytonaflow.component import FAILED_CHANNEL, SUCCESS_CHANNEL, Channel, Component, ExecutionContext
from daytonaflow.errors import ComponentError, ConfigIssue
from daytonaflow.events import Payload

BOX = "test.box"
#: run id -> the metadata the cancel hook of its test.hold node saw
CANCELLED_WITH: dict[str, dict[str, Any]] = {}
#: (kind, id) of every resource reclaimed, in order
RECLAIMED: list[tuple[str, str]] = []
#: runs whose test.hold node is holding (its hook is waiting to be cancelled)
HOLDING: set[str] = set()
#: Where test.durable writes a marker once its first attempt holds its metadata (set by the test).
MARKER_ENV = "DAYTONAFLOW_TEST_MARKER_DIR"


class ValuePayload(Payload):
    event_type: ClassVar[str] = "test.value"

    value: Any = None


class ExitPayload(Payload):
    event_type: ClassVar[str] = "test.exit"

    exitCode: int

    def failure_summary(self) -> str | None:
        return f"exit code {self.exitCode}"


class _TestComponent(Component):
    label: ClassVar[str] = "Test"
    description: ClassVar[str] = "A test component."
    icon: ClassVar[str] = "circle"
    color: ClassVar[str] = "gray"
    payload_type: ClassVar[type[Payload]] = ValuePayload

    @classmethod
    def documentation(cls) -> str:
        return "A test component.\n"

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        return {"type": "object"}

    @classmethod
    def example_output(cls) -> dict[str, Any]:
        return {"type": cls.payload_type.event_type, "data": {}, "timestamp": "2026-01-01T00:00:00Z"}

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], *, allow_expressions: bool) -> list[ConfigIssue]:
        return []

    async def execute(self, ctx: ExecutionContext) -> None:
        raise NotImplementedError

    @classmethod
    async def reclaim(cls, kind: str, resource_id: str, integration: Any) -> None:
        RECLAIMED.append((kind, resource_id))


class Echo(_TestComponent):
    """Emits its ``value`` setting."""

    name: ClassVar[str] = "test.echo"

    async def execute(self, ctx: ExecutionContext) -> None:
        ctx.emit("default", ValuePayload(value=ctx.config.get("value")))


class Raise(_TestComponent):
    name: ClassVar[str] = "test.raise"

    async def execute(self, ctx: ExecutionContext) -> None:
        raise ComponentError("test.raise refused: boom")


class LateRaise(_TestComponent):
    """Fails once test.hold holds in the same run (so the failure meets a running branch)."""

    name: ClassVar[str] = "test.late_raise"

    async def execute(self, ctx: ExecutionContext) -> None:
        while ctx.run_id not in HOLDING:
            await asyncio.sleep(0.05)
        raise ComponentError("test.late_raise refused: boom")


class FailingChannel(_TestComponent):
    """Emits on its failure channel, as a command that exited non-zero does."""

    name: ClassVar[str] = "test.failing_channel"
    channels = (SUCCESS_CHANNEL, FAILED_CHANNEL)
    payload_type: ClassVar[type[Payload]] = ExitPayload

    async def execute(self, ctx: ExecutionContext) -> None:
        ctx.emit("failed", ExitPayload(exitCode=3))


class Take(_TestComponent):
    """Acquires a box named after the run, then emits."""

    name: ClassVar[str] = "test.take"

    async def execute(self, ctx: ExecutionContext) -> None:
        ctx.resources.acquire(BOX, f"taken-{ctx.run_id}")
        ctx.emit("default", ValuePayload(value="taken"))


class Hold(_TestComponent):
    """Acquires a box, records it in its metadata, then waits until it is cancelled."""

    name: ClassVar[str] = "test.hold"

    async def execute(self, ctx: ExecutionContext) -> None:
        box = f"box-{ctx.run_id}"
        ctx.resources.acquire(BOX, box)
        ctx.metadata.set({"box": box, "stage": "holding"})
        HOLDING.add(ctx.run_id)
        await asyncio.Event().wait()

    async def cancel(self, ctx: ExecutionContext) -> None:
        CANCELLED_WITH[ctx.run_id] = ctx.metadata.get()


class Durable(_TestComponent):
    """First attempt: records its progress in metadata, writes a marker, then hangs (its worker is
    killed). An attempt that finds the metadata emits what it found, and how many attempts ran."""

    name: ClassVar[str] = "test.durable"

    async def execute(self, ctx: ExecutionContext) -> None:
        found = ctx.metadata.get()
        if "first_pid" in found:
            ctx.metadata.set({**found, "resumed_pid": os.getpid()})
            ctx.emit("default", ValuePayload(value=ctx.metadata.get()))
            return
        ctx.metadata.set({"first_pid": os.getpid(), "box": f"durable-{ctx.run_id}"})
        ctx.resources.acquire(BOX, f"durable-{ctx.run_id}")
        marker_dir = os.environ.get(MARKER_ENV)
        if marker_dir:
            (Path(marker_dir) / ctx.run_id).write_text(str(os.getpid()))
        await asyncio.Event().wait()


class RevealSecret(_TestComponent):
    """Reads a secret and puts it everywhere a careless component could: output, metadata, payload."""

    name: ClassVar[str] = "test.reveal_secret"

    async def execute(self, ctx: ExecutionContext) -> None:
        value = ctx.secrets.get("vault", "token")
        ctx.report_output(f"using token {value}\n")
        ctx.metadata.set({"seen": f"token={value}"})
        ctx.emit("default", ValuePayload(value={"echo": value, "length": len(value)}))


class RevealSecretInError(_TestComponent):
    name: ClassVar[str] = "test.reveal_secret_in_error"

    async def execute(self, ctx: ExecutionContext) -> None:
        value = ctx.secrets.get("vault", "token")
        raise ComponentError(f"the server refused token {value}")


TEST_COMPONENTS: dict[str, type[Component]] = {
    component.name: component
    for component in (
        Echo,
        Raise,
        FailingChannel,
        Take,
        Hold,
        Durable,
        RevealSecret,
        RevealSecretInError,
        If,
        Filter,
        Merge,
        Wait,
        Noop,
    )
}


class Talk(_TestComponent):
    """Reports two lines of output a few seconds apart (as a long command does), then emits."""

    name: ClassVar[str] = "test.talk"

    async def execute(self, ctx: ExecutionContext) -> None:
        async with ctx.waiting():
            ctx.report_output("line one\n")
            await asyncio.sleep(2.5)
            ctx.report_output("line two\n")
            await asyncio.sleep(2.5)
        ctx.emit("default", ValuePayload(value="talked"))


class Hint(_TestComponent):
    """Emits the hook-wait limit its context carries."""

    name: ClassVar[str] = "test.hint"

    async def execute(self, ctx: ExecutionContext) -> None:
        ctx.emit("default", ValuePayload(value=vars(ctx).get("hook_wait_limit", "absent")))


class Renamed(_TestComponent):
    """Emits on ``done``, which an earlier version called ``finished`` (canvases may still say so)."""

    name: ClassVar[str] = "test.renamed"
    channels = (Channel("done", "Done"),)
    channel_aliases: ClassVar[Mapping[str, str]] = {"finished": "done"}

    async def execute(self, ctx: ExecutionContext) -> None:
        ctx.emit("done", ValuePayload(value="renamed"))


TEST_COMPONENTS.update({Talk.name: Talk, Hint.name: Hint, Renamed.name: Renamed, LateRaise.name: LateRaise})


def make_canvas(
    nodes: list[dict[str, Any]], edges: list[tuple[str, str] | tuple[str, str, str]], name: str = "test"
) -> dict[str, Any]:
    """A canvas document with a ``start`` trigger plus ``nodes``; edges are (source, target[, channel])."""
    document_nodes: list[dict[str, Any]] = [
        {"id": "start", "name": "start", "type": "TYPE_TRIGGER", "component": "start"}
    ]
    document_nodes.extend({"type": "TYPE_ACTION", "configuration": {}, **node} for node in nodes)
    return {
        "apiVersion": "v1",
        "kind": "Canvas",
        "metadata": {"name": name},
        "spec": {
            "nodes": document_nodes,
            "edges": [
                {"sourceId": edge[0], "targetId": edge[1], "channel": edge[2] if len(edge) > 2 else "default"}
                for edge in edges
            ],
        },
    }


async def _serve(address: str, task_queue: str) -> None:
    from daytonaflow.temporal import TemporalSettings, run_worker

    settings = TemporalSettings(address=address, task_queue=task_queue)
    await run_worker(settings, registry=TEST_COMPONENTS, on_ready=lambda: print("ready", flush=True))


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], sys.argv[2]))
