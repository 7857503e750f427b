"""Test-only components that drive the runner without any backend.

``FakeBackend`` stands in for a remote service: resources are files in a directory and every
creation is journaled, so tests (and killed subprocesses) can count duplicates and leaks.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from daytonaflow.component import FAILED_CHANNEL, SUCCESS_CHANNEL, Channel, Component, ExecutionContext
from daytonaflow.errors import ComponentError, ConfigIssue
from daytonaflow.events import Payload
from daytonaflow.expressions import contains_template

RESOURCE_KIND = "test.resource"


class ValuePayload(Payload):
    event_type: ClassVar[str] = "test.value"

    value: Any = None


class ResourcePayload(Payload):
    event_type: ClassVar[str] = "test.resource"

    id: str


class FakeBackend:
    """Resources as files under ``root``; ``journal`` lists every creation, one JSON line each."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.resources = root / "resources"
        self.resources.mkdir(parents=True, exist_ok=True)
        self.journal = root / "journal.jsonl"
        self.cancelled: list[str] = []
        #: Nodes whose ``test.sleep`` hook is still sleeping, and what that was when a cancel hook ran.
        self.sleeping: set[str] = set()
        self.sleeping_at_cancel: list[set[str]] = []
        self.barrier: asyncio.Barrier | None = None

    def create(self, resource_id: str, run_id: str) -> None:
        path = self.resources / resource_id
        if path.exists():
            return
        # Journal first: a kill between the two lines must not hide a creation. A re-run then
        # journals the same id again, which is the same resource, not a duplicate.
        with self.journal.open("a") as journal:
            journal.write(json.dumps({"op": "create", "id": resource_id, "run": run_id}) + "\n")
        path.write_text(run_id)

    def delete(self, resource_id: str) -> None:
        (self.resources / resource_id).unlink(missing_ok=True)

    def record(self, name: str, value: Any) -> None:
        with self.journal.open("a") as journal:
            journal.write(json.dumps({"op": name, "value": value}) + "\n")

    def entries(self) -> list[dict[str, Any]]:
        if not self.journal.exists():
            return []
        return [json.loads(line) for line in self.journal.read_text().splitlines() if line]

    def live(self) -> list[str]:
        return sorted(path.name for path in self.resources.iterdir())


class FakeComponent(Component):
    """Self-description boilerplate shared by the fakes; each declares its required keys."""

    label: ClassVar[str] = "Fake"
    description: ClassVar[str] = "A test component."
    icon: ClassVar[str] = "flask"
    color: ClassVar[str] = "gray"
    payload_type: ClassVar[type[Payload]] = ValuePayload
    required: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def documentation(cls) -> str:
        return f"# {cls.label}\n\n{cls.description}\n"

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        return {"type": "object", "required": list(cls.required)}

    @classmethod
    def manifest(cls) -> dict[str, Any]:
        return {"name": cls.name, "label": cls.label, "channels": list(cls.channel_names())}

    @classmethod
    def example_output(cls) -> dict[str, Any]:
        return {"type": cls.payload_type.event_type, "data": {}, "timestamp": "2026-01-19T12:00:00Z"}

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], *, allow_expressions: bool) -> list[ConfigIssue]:
        issues = [ConfigIssue(key, "is required") for key in cls.required if key not in config]
        for key, value in config.items():
            if not allow_expressions and isinstance(value, str) and contains_template(value):
                issues.append(ConfigIssue(key, "still holds an unresolved expression"))
        return issues


class Echo(FakeComponent):
    """Emits its ``value`` setting on the default channel."""

    name: ClassVar[str] = "test.echo"
    required: ClassVar[tuple[str, ...]] = ("value",)

    async def execute(self, ctx: ExecutionContext) -> None:
        ctx.emit("default", ValuePayload(value=ctx.config["value"]))


class Branch(FakeComponent):
    """Emits on ``success`` when ``ok`` is true, else on ``failed``."""

    name: ClassVar[str] = "test.branch"
    channels = (SUCCESS_CHANNEL, FAILED_CHANNEL)
    required: ClassVar[tuple[str, ...]] = ("ok",)

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], *, allow_expressions: bool) -> list[ConfigIssue]:
        issues = super().validate_config(config, allow_expressions=allow_expressions)
        ok = config.get("ok")
        if "ok" in config and not isinstance(ok, bool) and not (allow_expressions and isinstance(ok, str)):
            issues.append(ConfigIssue("ok", "must be a boolean"))
        return issues

    async def execute(self, ctx: ExecutionContext) -> None:
        ctx.emit("success" if ctx.config["ok"] else "failed", ValuePayload(value=ctx.config["ok"]))


class Fail(FakeComponent):
    """Raises ComponentError with its ``message``."""

    name: ClassVar[str] = "test.fail"
    required: ClassVar[tuple[str, ...]] = ("message",)

    async def execute(self, ctx: ExecutionContext) -> None:
        raise ComponentError(ctx.config["message"])


class Crash(FakeComponent):
    """Raises an unexpected exception (a bug in a component)."""

    name: ClassVar[str] = "test.crash"

    async def execute(self, ctx: ExecutionContext) -> None:
        raise RuntimeError("boom")


class Acquire(FakeComponent):
    """Creates a resource idempotently: the id is chosen once and kept in metadata."""

    name: ClassVar[str] = "test.acquire"
    payload_type: ClassVar[type[Payload]] = ResourcePayload

    async def execute(self, ctx: ExecutionContext) -> None:
        backend: FakeBackend = ctx.integration
        resource_id = ctx.metadata.get().get("id")
        if resource_id is None:
            resource_id = uuid.uuid4().hex[:10]
            ctx.metadata.set({"id": resource_id})
        await asyncio.sleep(float(ctx.config.get("delay", 0)))
        backend.create(resource_id, ctx.run_id)
        ctx.resources.acquire(RESOURCE_KIND, resource_id)
        ctx.emit("default", ResourcePayload(id=resource_id))

    @classmethod
    async def reclaim(cls, kind: str, resource_id: str, integration: Any) -> None:
        backend: FakeBackend = integration
        backend.record("reclaim", resource_id)
        backend.delete(resource_id)


class Release(FakeComponent):
    """Deletes the resource named by ``id`` and tells the run it is released."""

    name: ClassVar[str] = "test.release"
    required: ClassVar[tuple[str, ...]] = ("id",)

    async def execute(self, ctx: ExecutionContext) -> None:
        backend: FakeBackend = ctx.integration
        backend.delete(ctx.config["id"])
        ctx.resources.release(RESOURCE_KIND, ctx.config["id"])
        ctx.emit("default", ValuePayload(value=ctx.config["id"]))


class Poll(FakeComponent):
    """Waits through scheduled checks: ``polls`` checks ``every`` seconds apart, then emits the count."""

    name: ClassVar[str] = "test.poll"

    async def execute(self, ctx: ExecutionContext) -> None:
        if "checks" not in ctx.metadata.get():
            ctx.metadata.set({"checks": 0})
        ctx.schedule_check(float(ctx.config.get("every", 0.01)))

    async def check(self, ctx: ExecutionContext) -> None:
        checks = int(ctx.metadata.get()["checks"]) + 1
        ctx.metadata.set({"checks": checks})
        if checks >= int(ctx.config.get("polls", 2)):
            ctx.emit("default", ValuePayload(value=checks))
        else:
            ctx.schedule_check(float(ctx.config.get("every", 0.01)))


class Sleep(FakeComponent):
    """A long-running command: sleeps ``seconds``; ``cancel`` records that it was stopped."""

    name: ClassVar[str] = "test.sleep"

    async def execute(self, ctx: ExecutionContext) -> None:
        backend: FakeBackend = ctx.integration
        backend.sleeping.add(ctx.node_id)
        try:
            await asyncio.sleep(float(ctx.config.get("seconds", 3600)))
        finally:
            backend.sleeping.discard(ctx.node_id)
        ctx.emit("default", ValuePayload(value="slept"))

    async def cancel(self, ctx: ExecutionContext) -> None:
        backend: FakeBackend = ctx.integration
        backend.cancelled.append(ctx.node_id)
        backend.sleeping_at_cancel.append(set(backend.sleeping))


class Rendezvous(FakeComponent):
    """Waits until every run reached it: only finishes if runs really go on at the same time."""

    name: ClassVar[str] = "test.rendezvous"

    async def execute(self, ctx: ExecutionContext) -> None:
        backend: FakeBackend = ctx.integration
        assert backend.barrier is not None
        await backend.barrier.wait()
        ctx.emit("default", ValuePayload(value="met"))


class Record(FakeComponent):
    """Writes ``done/<run id>`` (idempotently) so a test can see that the run reached its end."""

    name: ClassVar[str] = "test.record"
    required: ClassVar[tuple[str, ...]] = ("value",)

    async def execute(self, ctx: ExecutionContext) -> None:
        backend: FakeBackend = ctx.integration
        done = backend.root / "done"
        done.mkdir(exist_ok=True)
        (done / ctx.run_id).write_text(json.dumps(ctx.config["value"]))
        ctx.emit("default", ValuePayload(value=ctx.config["value"]))


class RevealSecret(FakeComponent):
    """Emits the value of the secret its configuration references (tests only!)."""

    name: ClassVar[str] = "test.secret"
    required: ClassVar[tuple[str, ...]] = ("secret", "key")

    async def execute(self, ctx: ExecutionContext) -> None:
        ctx.emit("default", ValuePayload(value=ctx.secrets.get(ctx.config["secret"], ctx.config["key"])))


class Countdown(FakeComponent):
    """Emits ``value - 1`` on ``again`` while it is above 0, else on ``done``: the body of a loop."""

    name: ClassVar[str] = "test.countdown"
    channels = (Channel("again", "Again"), Channel("done", "Done"))
    required: ClassVar[tuple[str, ...]] = ("value",)

    async def execute(self, ctx: ExecutionContext) -> None:
        value = int(ctx.config["value"])
        ctx.emit("again" if value > 0 else "done", ValuePayload(value=value - 1 if value > 0 else 0))


class Gather(FakeComponent):
    """Joins its inputs: emits the sources seen once every expected source has sent one.

    With ``timeout``, the first input schedules a check that emits on ``timeout`` instead.
    """

    name: ClassVar[str] = "test.gather"
    channels = (Channel("default", "Default"), Channel("timeout", "Timeout"))
    joins_inputs: ClassVar[bool] = True

    async def execute(self, ctx: ExecutionContext) -> None:
        seen = [item.source_node_id for item in ctx.inputs]
        ctx.metadata.set({"calls": int(ctx.metadata.get().get("calls", 0)) + 1, "seen": seen})
        if set(ctx.expected_sources) <= set(seen):
            ctx.emit("default", ValuePayload(value=seen))
        elif "timeout" in ctx.config and len(ctx.inputs) == 1:
            ctx.schedule_check(float(ctx.config["timeout"]))

    async def check(self, ctx: ExecutionContext) -> None:
        ctx.emit("timeout", ValuePayload(value=[item.source_node_id for item in ctx.inputs]))


class Evaluate(FakeComponent):
    """Emits the value of its bare ``expression`` setting (SuperPlane's expression fields)."""

    name: ClassVar[str] = "test.evaluate"
    required: ClassVar[tuple[str, ...]] = ("expression",)
    literal_fields: ClassVar[frozenset[str]] = frozenset({"expression"})

    async def execute(self, ctx: ExecutionContext) -> None:
        ctx.emit("default", ValuePayload(value=ctx.evaluate(ctx.config["expression"], field="expression")))


class Inputs(FakeComponent):
    """Emits what the engine says reached it: ``[source node, channel]`` of each input."""

    name: ClassVar[str] = "test.inputs"

    async def execute(self, ctx: ExecutionContext) -> None:
        inputs = [[item.source_node_id, item.channel, item.event["type"]] for item in ctx.inputs]
        ctx.emit("default", ValuePayload(value={"inputs": inputs, "sources": list(ctx.expected_sources)}))


FAKE_COMPONENTS: dict[str, type[Component]] = {
    component.name: component
    for component in (
        Echo,
        Branch,
        Fail,
        Crash,
        Acquire,
        Release,
        Poll,
        Sleep,
        Rendezvous,
        Record,
        RevealSecret,
        Countdown,
        Gather,
        Evaluate,
        Inputs,
    )
}


def make_canvas(
    nodes: list[dict[str, Any]], edges: list[tuple[str, str] | tuple[str, str, str]], name: str = "test"
) -> dict[str, Any]:
    """A canvas document with a ``start`` trigger plus ``nodes``; edges are (source, target[, channel])."""
    document_nodes: list[dict[str, Any]] = [
        {"id": "start", "name": "Manual Run", "type": "TYPE_TRIGGER", "component": "start"}
    ]
    for node in nodes:
        document_nodes.append({"type": "TYPE_ACTION", "configuration": {}, **node})
    document_edges = [
        {"sourceId": edge[0], "targetId": edge[1], "channel": edge[2] if len(edge) > 2 else "default"}
        for edge in edges
    ]
    return {
        "apiVersion": "v1",
        "kind": "Canvas",
        "metadata": {"name": name},
        "spec": {"nodes": document_nodes, "edges": document_edges},
    }
