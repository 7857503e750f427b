"""Test doubles for the component tests: an in-memory ExecutionContext and a respx-backed Daytona.

The Daytona double answers with the request/response shapes kept in ``fixtures/daytona``
(derived from Daytona's OpenAPI specs) and records every request, so tests assert on what
went over the wire.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import logging
import shlex
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import respx

from daytonaflow.component import Component, SecretsProvider
from daytonaflow.errors import SecretNotFoundError
from daytonaflow.events import Event, Payload

API_URL = "https://daytona.test/api"
TOOLBOX_URL = "https://proxy.daytona.test/toolbox"
API_KEY = "dtn_test_key_0123456789"
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "daytona"
SANDBOX_ID = "sandbox-abc123def456"


def fixture(fixture_name: str, /, **overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / f"{fixture_name}.json").read_text())
    document.update(overrides)
    return document


def error_body(status: int, message: str, error: str) -> dict[str, Any]:
    return fixture("error", statusCode=status, message=message, error=error)


# --- execution context ----------------------------------------------------------------------


class MemoryMetadata:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []

    def get(self) -> dict[str, Any]:
        return copy.deepcopy(self.data)

    def set(self, metadata: Any) -> None:
        self.data = json.loads(json.dumps(dict(metadata)))  # must be plain JSON to be persistable
        self.history.append(copy.deepcopy(self.data))


class MemoryResources:
    def __init__(self) -> None:
        self.held: set[tuple[str, str]] = set()
        self.log: list[tuple[str, str, str]] = []

    def acquire(self, kind: str, resource_id: str) -> None:
        self.held.add((kind, resource_id))
        self.log.append(("acquire", kind, resource_id))

    def release(self, kind: str, resource_id: str) -> None:
        self.held.discard((kind, resource_id))
        self.log.append(("release", kind, resource_id))


class DictSecrets:
    def __init__(self, values: dict[str, dict[str, str]] | None = None) -> None:
        self.values = values or {}

    def get(self, secret: str, key: str) -> str:
        try:
            return self.values[secret][key]
        except KeyError:
            raise SecretNotFoundError(f'secret "{secret}" has no key "{key}"') from None


@dataclass
class FakeContext:
    config: dict[str, Any]
    integration: Any
    secrets: SecretsProvider = field(default_factory=DictSecrets)
    run_id: str = "run-1"
    node_id: str = "node-1"
    node_name: str = "node"
    execution_id: str = "exec-1"
    metadata: MemoryMetadata = field(default_factory=MemoryMetadata)
    resources: MemoryResources = field(default_factory=MemoryResources)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("tests.components"))
    emitted: list[tuple[str, Event]] = field(default_factory=list)
    #: The payloads as emitted (what the engine asks for ``failure_summary()``).
    payloads: list[Payload] = field(default_factory=list)
    scheduled: list[float] = field(default_factory=list)
    pending: float | None = None
    #: Output pieces the component reported while it ran.
    reported: list[str] = field(default_factory=list)
    #: How many times the component said it waits (the engine then frees its hook slot).
    waits: int = 0
    #: How long a hook may wait before it hands the wait to the engine (None: as long as it takes).
    hook_wait_limit: float | None = None

    def emit(self, channel: str, payload: Payload) -> None:
        assert not self.emitted, "a node execution emits once"
        self.emitted.append((channel, Event.of(payload)))
        self.payloads.append(payload)

    def schedule_check(self, delay_seconds: float) -> None:
        assert self.pending is None, "one pending check at a time"
        self.scheduled.append(delay_seconds)
        self.pending = delay_seconds

    @contextlib.asynccontextmanager
    async def waiting(self) -> AsyncIterator[None]:
        self.waits += 1
        yield

    def report_output(self, text: str) -> None:
        self.reported.append(text)

    @property
    def channel(self) -> str:
        return self.emitted[0][0]

    @property
    def data(self) -> dict[str, Any]:
        return self.emitted[0][1].data


def inner_script(command_line: str) -> str:
    """The script a started command gives to ``bash -c`` (after the ``timeout`` wrapper, if any)."""
    words = shlex.split(command_line)
    return words[words.index("-c") + 1]


class FakeClock:
    def __init__(self) -> None:
        self.value = 1_768_824_000.0  # 2026-01-19T12:00:00Z
        #: Every wait between polls, in order.
        self.sleeps: list[float] = []
        self._crash_after: int | None = None
        self._crash_when: Callable[[], bool] | None = None

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)
        if self._crash_after is not None and len(self.sleeps) >= self._crash_after:
            self._crash_after = None
            raise ProcessDied
        if self._crash_when is not None and self._crash_when():
            self._crash_when = None
            raise ProcessDied

    def crash_when(self, condition: Callable[[], bool]) -> None:
        """The engine's process dies during the first wait at which ``condition()`` holds."""
        self._crash_when = condition

    def crash_after(self, waits: int) -> None:
        """The engine's process dies during the component's ``waits``-th wait (nothing after it runs)."""
        self._crash_after = waits


class ProcessDied(BaseException):
    """The engine's process died mid-hook: no ``except Exception`` sees it, as none would."""


async def drive(component: Component, ctx: FakeContext, clock: FakeClock, max_checks: int = 500) -> None:
    """Run a node execution to its end as an engine would: execute, then every scheduled check."""
    await component.execute(ctx)
    for _ in range(max_checks):
        if ctx.pending is None:
            return
        delay, ctx.pending = ctx.pending, None
        clock.advance(delay)
        await component.check(ctx)
    raise AssertionError("the component never finished")


# --- Daytona double ---------------------------------------------------------------------------


@dataclass
class FakeCommand:
    id: str
    command: str
    #: Exit codes reported by successive status polls; None while running. The last one repeats.
    exits: list[int | None]
    output: str = ""

    def poll(self) -> int | None:
        return self.exits.pop(0) if len(self.exits) > 1 else self.exits[0]


class FakeDaytona:
    """Daytona's REST and toolbox API as respx routes, with state and a request log."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.router = router
        self.sandboxes: dict[str, dict[str, Any]] = {}
        self.states: dict[str, list[str]] = {}
        self.create_bodies: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.sessions: dict[str, list[FakeCommand]] = {}
        self.deleted_sessions: list[str] = []
        self.files: dict[str, bytes] = {}
        self.modes: dict[str, str] = {}
        self.folders: list[tuple[str, str]] = []
        self.deleted_files: list[str] = []
        self.executed: list[dict[str, Any]] = []
        self.next_exits: list[list[int | None]] = []
        self.next_outputs: list[str] = []
        self.probe_exits: list[int] = []
        self.clones: list[dict[str, Any]] = []
        #: Every command a session actually started (sessions are deleted, this stays).
        self.started: list[str] = []
        self.clone_error: str | None = None
        self.start_states: list[str] = ["creating", "started"]
        #: Sandboxes whose processes died (their toolbox answers 409) until they are started again.
        self.stopped: set[str] = set()
        self.restarted: list[str] = []
        self._ids = itertools.count(1)
        self._install()
        for name in _TOOLBOX_ROUTES:
            route = self.router.routes[name]
            route.side_effect = self._only_when_started(route.side_effect)

    # Routes ----------------------------------------------------------------------------------

    def _install(self) -> None:
        r = self.router
        r.get(f"{API_URL}/config", name="config").mock(
            return_value=httpx.Response(200, json=fixture("config"))
        )
        r.get(url__regex=rf"^{API_URL}/sandbox(\?.*)?$", name="list").mock(side_effect=self._list)
        r.post(url__regex=rf"^{API_URL}/sandbox$", name="create").mock(side_effect=self._create)
        r.get(url__regex=rf"^{API_URL}/sandbox/(?P<sid>[^/]+)$", name="get").mock(side_effect=self._get)
        r.delete(url__regex=rf"^{API_URL}/sandbox/(?P<sid>[^/?]+)(\?.*)?$", name="delete").mock(
            side_effect=self._delete
        )
        r.get(
            url__regex=rf"^{API_URL}/sandbox/(?P<sid>[^/]+)/ports/(?P<port>\d+)/preview-url$", name="preview"
        ).mock(side_effect=self._preview)
        r.get(
            url__regex=rf"^{API_URL}/sandbox/(?P<sid>[^/]+)/ports/(?P<port>\d+)/signed-preview-url",
            name="signed_preview",
        ).mock(side_effect=self._signed_preview)
        r.post(url__regex=rf"^{API_URL}/sandbox/(?P<sid>[^/]+)/start$", name="start").mock(
            side_effect=self._start
        )
        box = rf"^{TOOLBOX_URL}/(?P<sid>[^/]+)"
        r.post(url__regex=box + r"/process/session$", name="create_session").mock(
            side_effect=self._new_session
        )
        r.get(url__regex=box + r"/process/session/(?P<session>[^/]+)$", name="get_session").mock(
            side_effect=self._get_session
        )
        r.delete(url__regex=box + r"/process/session/(?P<session>[^/]+)$", name="delete_session").mock(
            side_effect=self._delete_session
        )
        r.post(url__regex=box + r"/process/session/(?P<session>[^/]+)/exec$", name="exec").mock(
            side_effect=self._exec
        )
        command = box + r"/process/session/(?P<session>[^/]+)/command/(?P<cmd>[^/]+)"
        r.get(url__regex=command + "$", name="command").mock(side_effect=self._command)
        r.get(url__regex=command + "/logs$", name="logs").mock(side_effect=self._logs)
        # Following the output is a WebSocket on Daytona, which respx cannot serve: this double is a
        # toolbox without it (the components then poll); the local server tests cover the stream.
        r.get(url__regex=command + r"/logs\?follow=true$", name="follow").mock(
            return_value=httpx.Response(426, json=error_body(426, "WebSocket required", "Upgrade Required"))
        )
        r.post(url__regex=box + r"/process/execute$", name="execute").mock(side_effect=self._execute)
        r.post(url__regex=box + r"/files/upload", name="upload").mock(side_effect=self._upload)
        r.post(url__regex=box + r"/files/permissions", name="permissions").mock(side_effect=self._permissions)
        r.post(url__regex=box + r"/files/folder", name="folder").mock(side_effect=self._folder)
        r.delete(url__regex=box + r"/files\?", name="delete_file").mock(side_effect=self._delete_file)
        r.post(url__regex=box + r"/git/clone$", name="git_clone").mock(side_effect=self._git_clone)

    @staticmethod
    def _not_found(what: str) -> httpx.Response:
        return httpx.Response(404, json=error_body(404, f"{what} not found", "Not Found"))

    def _list(self, request: httpx.Request) -> httpx.Response:
        wanted = json.loads(request.url.params.get("labels", "{}"))
        items = [
            sandbox
            for sandbox in self.sandboxes.values()
            if all(sandbox["labels"].get(key) == value for key, value in wanted.items())
        ]
        return httpx.Response(200, json=fixture("sandbox_list", items=items))

    def _create(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.create_bodies.append(body)
        sandbox_id = SANDBOX_ID if not self.sandboxes else f"sandbox-{next(self._ids):012d}"
        sandbox = fixture("sandbox", id=sandbox_id, name=sandbox_id, labels=body.get("labels", {}))
        self.sandboxes[sandbox_id] = sandbox
        self.states[sandbox_id] = list(self.start_states)
        return httpx.Response(200, json={**sandbox, "state": "creating"})

    def _get(self, request: httpx.Request, sid: str) -> httpx.Response:
        if sid not in self.sandboxes:
            return self._not_found(f"Sandbox with ID or name {sid}")
        states = self.states[sid]
        state = states.pop(0) if len(states) > 1 else states[0]
        extra = {"errorReason": "snapshot pull failed"} if state in ("error", "build_failed") else {}
        return httpx.Response(200, json={**self.sandboxes[sid], "state": state, **extra})

    def stop(self, sid: str) -> None:
        """The sandbox's processes die (as with the embedded backend's runner): sessions are gone."""
        self.stopped.add(sid)
        self.states[sid] = ["stopped"]
        self.sessions.clear()

    def _only_when_started(self, handler: Any) -> Any:
        def guarded(request: httpx.Request, sid: str, *args: str, **params: str) -> httpx.Response:
            if sid in self.stopped:
                message = f"Sandbox {sid} is not started (state: stopped)"
                return httpx.Response(409, json=error_body(409, message, "Conflict"))
            response: httpx.Response = handler(request, sid, *args, **params)
            return response

        return guarded

    def _start(self, request: httpx.Request, sid: str) -> httpx.Response:
        if sid not in self.sandboxes:
            return self._not_found(f"Sandbox with ID or name {sid}")
        self.restarted.append(sid)
        self.stopped.discard(sid)
        self.states[sid] = ["started"]
        return httpx.Response(200, json={**self.sandboxes[sid], "state": "started"})

    def _delete(self, request: httpx.Request, sid: str) -> httpx.Response:
        if sid not in self.sandboxes:
            return self._not_found(f"Sandbox with ID or name {sid}")
        self.deleted.append(sid)
        sandbox = self.sandboxes.pop(sid)
        return httpx.Response(200, json={**sandbox, "state": "destroying"})

    def _preview(self, request: httpx.Request, sid: str, port: str) -> httpx.Response:
        return httpx.Response(
            200,
            json=fixture("preview_url", sandboxId=sid, url=f"https://{port}-{sid}.preview.daytona.app"),
        )

    def _signed_preview(self, request: httpx.Request, sid: str, port: str) -> httpx.Response:
        token = "signed-token-abc123"
        return httpx.Response(
            200,
            json=fixture(
                "signed_preview_url",
                sandboxId=sid,
                port=int(port),
                token=token,
                url=f"https://{port}-{token}.preview.daytona.app",
            ),
        )

    def _new_session(self, request: httpx.Request, sid: str) -> httpx.Response:
        session = json.loads(request.content)["sessionId"]
        if session in self.sessions:
            return httpx.Response(409, json=error_body(409, f"session {session} already exists", "Conflict"))
        self.sessions[session] = []
        return httpx.Response(201)

    def _get_session(self, request: httpx.Request, sid: str, session: str) -> httpx.Response:
        if session not in self.sessions:
            return self._not_found(f"session {session}")
        commands = [{"id": c.id, "command": c.command} for c in self.sessions[session]]
        return httpx.Response(200, json=fixture("session", sessionId=session, commands=commands))

    def _delete_session(self, request: httpx.Request, sid: str, session: str) -> httpx.Response:
        if session not in self.sessions:
            return self._not_found(f"session {session}")
        self.deleted_sessions.append(session)
        del self.sessions[session]
        return httpx.Response(204)

    def _exec(self, request: httpx.Request, sid: str, session: str) -> httpx.Response:
        body = json.loads(request.content)
        assert body.get("runAsync") is True
        command_id = f"cmd-{next(self._ids)}"
        exits = self.next_exits.pop(0) if self.next_exits else [None, 0]
        output = self.next_outputs.pop(0) if self.next_outputs else "Hello, World!\n"
        self.sessions[session].append(FakeCommand(command_id, body["command"], exits, output))
        self.started.append(body["command"])
        return httpx.Response(200, json=fixture("session_execute_response", cmdId=command_id))

    def _find(self, session: str, cmd: str) -> FakeCommand | None:
        return next((c for c in self.sessions.get(session, []) if c.id == cmd), None)

    def _command(self, request: httpx.Request, sid: str, session: str, cmd: str) -> httpx.Response:
        command = self._find(session, cmd)
        if command is None:
            return self._not_found(f"command {cmd}")
        exit_code = command.poll()
        body = fixture("session_command_running", id=command.id, command=command.command)
        if exit_code is not None:
            body["exitCode"] = exit_code
        return httpx.Response(200, json=body)

    def _logs(self, request: httpx.Request, sid: str, session: str, cmd: str) -> httpx.Response:
        command = self._find(session, cmd)
        if command is None:
            return self._not_found(f"command {cmd}")
        return httpx.Response(
            200, json=fixture("session_command_logs", output=command.output, stdout=command.output, stderr="")
        )

    def _execute(self, request: httpx.Request, sid: str) -> httpx.Response:
        body = json.loads(request.content)
        self.executed.append(body)
        exit_code = self.probe_exits.pop(0) if self.probe_exits else 0
        return httpx.Response(200, json=fixture("execute_response", exitCode=exit_code, result=""))

    def _upload(self, request: httpx.Request, sid: str) -> httpx.Response:
        path = request.url.params["path"]
        content = request.content
        # multipart body: the file part's bytes sit between the part headers and the boundary.
        boundary = request.headers["content-type"].split("boundary=")[1].encode()
        part = content.split(b"--" + boundary)[1]
        self.files[path] = part.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]
        return httpx.Response(200, json={"message": "ok"})

    def _permissions(self, request: httpx.Request, sid: str) -> httpx.Response:
        self.modes[request.url.params["path"]] = request.url.params["mode"]
        return httpx.Response(200)

    def _folder(self, request: httpx.Request, sid: str) -> httpx.Response:
        self.folders.append((request.url.params["path"], request.url.params["mode"]))
        return httpx.Response(201)

    def _delete_file(self, request: httpx.Request, sid: str) -> httpx.Response:
        self.deleted_files.append(request.url.params["path"])
        return httpx.Response(204)

    def _git_clone(self, request: httpx.Request, sid: str) -> httpx.Response:
        body = json.loads(request.content)
        self.clones.append(body)
        if self.clone_error is not None:
            return httpx.Response(400, json=error_body(400, self.clone_error, "Bad Request"))
        return httpx.Response(200)

    # Helpers -----------------------------------------------------------------------------------

    def all_commands_ever(self) -> list[str]:
        return [json.loads(call.request.content)["command"] for call in self.router.routes["exec"].calls]


_TOOLBOX_ROUTES = (
    "create_session",
    "get_session",
    "delete_session",
    "exec",
    "command",
    "logs",
    "execute",
    "upload",
    "permissions",
    "folder",
    "delete_file",
    "git_clone",
)


class NoSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
