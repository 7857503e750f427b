"""Test doubles for the core components' hooks: a recording ExecutionContext, a loopback HTTP server.

``HookContext`` records what a hook asks for (one emit, or one scheduled check) and evaluates bare
expressions against a chain of events with the real expression language, as the engine does.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from daytonaflow.component import Component, NodeInput
from daytonaflow.errors import SecretNotFoundError
from daytonaflow.events import Event, Payload
from daytonaflow.expressions import ChainEntry, EventChain, ExpressionContext, evaluate_expression


class DictMetadata:
    def __init__(self) -> None:
        self.value: dict[str, Any] = {}

    def get(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.value))

    def set(self, metadata: Any) -> None:
        self.value = json.loads(json.dumps(dict(metadata)))


class DictSecrets:
    def __init__(self, values: dict[tuple[str, str], str] | None = None) -> None:
        self.values = values or {}

    def get(self, secret: str, key: str) -> str:
        try:
            return self.values[(secret, key)]
        except KeyError:
            raise SecretNotFoundError(f'secret "{secret}" (key "{key}") is not configured') from None


class NoResources:
    def acquire(self, kind: str, resource_id: str) -> None:
        raise AssertionError("a core component acquired a resource")

    def release(self, kind: str, resource_id: str) -> None:
        raise AssertionError("a core component released a resource")


def event(node_id: str, data: dict[str, Any], type_: str = "test.value") -> ChainEntry:
    return ChainEntry(
        node_id, node_id, "test", {"type": type_, "data": data, "timestamp": "2026-01-19T12:00:00Z"}
    )


@dataclass
class HookContext:
    """One node execution as a hook sees it; call ``reset()`` between hooks of the same execution."""

    component: type[Component]
    config: dict[str, Any]
    node_id: str = "node"
    chain: list[ChainEntry] = field(default_factory=list)
    inputs: tuple[NodeInput, ...] = ()
    expected_sources: tuple[str, ...] = ()
    secrets: DictSecrets = field(default_factory=DictSecrets)
    metadata: DictMetadata = field(default_factory=DictMetadata)
    run_id: str = "run"
    execution_id: str = "execution-1"
    integration: Any = None
    resources: NoResources = field(default_factory=NoResources)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("tests.builtins"))
    emitted: tuple[str, Payload] | None = None
    check_delay: float | None = None
    evaluated: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def node_name(self) -> str:
        return self.node_id

    def evaluate(self, expression: str, *, field: str | None = None) -> Any:
        self.evaluated.append((expression, field))
        chain = EventChain.of(self.chain)
        root = chain.root.entry.event if chain is not None else None
        context = ExpressionContext(chain if chain is not None else (), root)
        return evaluate_expression(expression, context, node=self.node_id, field=field)

    def emit(self, channel: str, payload: Payload) -> None:
        assert self.emitted is None and self.check_delay is None, "a second emit or check in one hook"
        assert channel in self.component.channel_names(), channel
        assert isinstance(payload, self.component.payload_type)
        data = Event.of(payload).data
        self.component.payload_type.model_validate(data)  # what the engine checks before routing
        self.emitted = (channel, payload)

    def schedule_check(self, delay_seconds: float) -> None:
        assert self.emitted is None and self.check_delay is None, "a second emit or check in one hook"
        assert delay_seconds >= 0
        self.check_delay = delay_seconds

    def waiting(self) -> AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()

    def report_output(self, text: str) -> None:
        return None

    def reset(self) -> None:
        self.emitted = None
        self.check_delay = None

    @property
    def channel(self) -> str | None:
        return self.emitted[0] if self.emitted else None

    @property
    def data(self) -> dict[str, Any]:
        assert self.emitted is not None, "the hook emitted nothing"
        return Event.of(self.emitted[1]).data


def node_input(
    source: str, event_id: str, channel: str = "default", data: dict[str, Any] | None = None
) -> NodeInput:
    return NodeInput(
        source,
        source,
        channel,
        event_id,
        {"type": "test.value", "data": data or {}, "timestamp": "2026-01-19T12:00:00Z"},
    )


# --- a loopback HTTP server ------------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    #: Seconds before answering (a server that hangs).
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class LoopbackServer:
    """An HTTP server on 127.0.0.1 answering each request with the next of ``replies`` (the last repeats)."""

    def __init__(self) -> None:
        self.replies: list[Reply] = [Reply(200, b"ok")]
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with server._lock:
                    server.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
                    reply = server.replies.pop(0) if len(server.replies) > 1 else server.replies[0]
                if reply.delay:
                    server._stop.wait(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()


@contextlib.contextmanager
def loopback_server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as server:
        yield server


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def make_canvas(
    nodes: list[dict[str, Any]], edges: list[tuple[str, str] | tuple[str, str, str]], name: str = "core"
) -> dict[str, Any]:
    """A canvas document with a ``start`` trigger plus ``nodes``; edges are (source, target[, channel])."""
    document_nodes: list[dict[str, Any]] = [
        {"id": "start", "name": "Manual Run", "type": "TYPE_TRIGGER", "component": "start"}
    ]
    document_nodes += [
        {"type": "TYPE_ACTION", "name": node["id"], "configuration": {}, **node} for node in nodes
    ]
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
