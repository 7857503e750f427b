"""Daytona's files endpoints and sandbox state changes on the respx double of ``comp_support``.

Installed by the files and lifecycle tests on top of :class:`FakeDaytona`: ``GET /files/info``,
``GET /files`` and ``GET /files/download`` of the toolbox serve ``FakeDaytona.files`` (what
uploads wrote), in Daytona's shapes (its ``FileInfo`` has no ``path``), and ``POST
/sandbox/{id}/stop`` and ``/archive`` move a sandbox through its states as Daytona does.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jsonschema
from comp_support import API_URL, SANDBOX_ID, TOOLBOX_URL, FakeDaytona, error_body, fixture

from daytonaflow.component import Component
from daytonaflow.events import Event

CHUNK_BYTES = 64 * 1024
ROOT = Path(__file__).resolve().parents[2]


def assert_example_is_a_valid_event(component: type[Component]) -> None:
    """The component's example output is an event its committed payload schema accepts, and it
    round-trips unchanged through the payload model."""
    example = component.example_output()
    event_type = component.payload_type.event_type
    assert example["type"] == event_type
    schema = json.loads((ROOT / "schemas" / "payloads" / f"{event_type}.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(example)
    event = Event.model_validate(example)
    payload = component.payload_type.model_validate(event.data)
    assert Event.of(payload, timestamp=event.timestamp).model_dump(mode="json") == example


@dataclass
class Endless:
    """A download body that would go on for ``total`` bytes; ``sent`` counts what was read of it."""

    total: int
    sent: int = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        while self.sent < self.total:
            piece = b"x" * min(CHUNK_BYTES, self.total - self.sent)
            self.sent += len(piece)
            yield piece


@dataclass
class FilesAndStates:
    daytona: FakeDaytona
    #: A path whose download serves this body instead of its bytes (it grew after /files/info).
    grown: dict[str, Endless] = field(default_factory=dict)
    #: The states a stop (or an archive) moves the sandbox through, the last one repeating.
    stop_states: list[str] = field(default_factory=lambda: ["stopping", "stopped"])
    archive_states: list[str] = field(default_factory=lambda: ["archiving", "archived"])
    start_states: list[str] = field(default_factory=lambda: ["starting", "started"])
    #: A refusal the archive answers with, as (status, message).
    archive_refusal: tuple[int, str] | None = None
    stops: list[dict[str, str]] = field(default_factory=list)
    archives: list[str] = field(default_factory=list)

    def install(self) -> FilesAndStates:
        r = self.daytona.router
        box = rf"^{TOOLBOX_URL}/(?P<sid>[^/]+)"
        r.get(url__regex=box + r"/files/info\?", name="file_info").mock(side_effect=self._info)
        r.get(url__regex=box + r"/files/download\?", name="download").mock(side_effect=self._download)
        r.get(url__regex=box + r"/files\?", name="list_files").mock(side_effect=self._list)
        sandbox = rf"^{API_URL}/sandbox/(?P<sid>[^/?]+)"
        r.post(url__regex=sandbox + r"/stop(\?.*)?$", name="stop").mock(side_effect=self._stop)
        r.post(url__regex=sandbox + r"/archive$", name="archive").mock(side_effect=self._archive)
        start = r.routes["start"]
        started = start.side_effect

        def start_slowly(request: httpx.Request, sid: str) -> httpx.Response:
            # Daytona answers at once and the sandbox gets there over the next polls.
            response: httpx.Response = started(request, sid=sid)
            if response.is_success:
                self.daytona.states[sid] = list(self.start_states)
                return httpx.Response(200, json={**response.json(), "state": self.start_states[0]})
            return response

        start.side_effect = start_slowly
        return self

    def add_sandbox(self, state: str, sandbox_id: str = SANDBOX_ID, **labels: str) -> str:
        record = fixture("sandbox", id=sandbox_id, name=sandbox_id, labels=labels, state=state)
        self.daytona.sandboxes[sandbox_id] = record
        self.daytona.states[sandbox_id] = [state]
        return sandbox_id

    # Toolbox ---------------------------------------------------------------------------------

    def _directories(self) -> set[str]:
        found = {path for path, _ in self.daytona.folders}
        for path in self.daytona.files:
            parent = posixpath.dirname(path)
            while parent not in ("/", ""):
                found.add(parent)
                parent = posixpath.dirname(parent)
        return found

    def _file_info(self, path: str) -> dict[str, Any] | None:
        name = posixpath.basename(path)
        if path in self.daytona.files:
            return fixture("file_info", name=name, size=len(self.daytona.files[path]))
        if path in self._directories():
            return fixture(
                "file_info", name=name, isDir=True, size=4096, mode="drwxr-xr-x", permissions="0755"
            )
        return None

    def _info(self, request: httpx.Request, sid: str) -> httpx.Response:
        path = request.url.params["path"]
        info = self._file_info(path)
        if info is None:
            return httpx.Response(404, json=error_body(404, f"file {path} not found", "Not Found"))
        return httpx.Response(200, json=info)

    def _list(self, request: httpx.Request, sid: str) -> httpx.Response:
        directory = request.url.params["path"]
        children = sorted(
            {
                path
                for path in [*self.daytona.files, *self._directories()]
                if posixpath.dirname(path) == directory
            }
        )
        return httpx.Response(200, json=[self._file_info(child) for child in children])

    def _download(self, request: httpx.Request, sid: str) -> httpx.Response:
        path = request.url.params["path"]
        if path in self.grown:
            return httpx.Response(200, content=self.grown[path].chunks())
        if path not in self.daytona.files:
            return httpx.Response(404, json=error_body(404, f"file {path} not found", "Not Found"))
        return httpx.Response(200, content=self.daytona.files[path])

    # Sandbox states --------------------------------------------------------------------------

    def _stop(self, request: httpx.Request, sid: str) -> httpx.Response:
        if sid not in self.daytona.sandboxes:
            return httpx.Response(
                404, json=error_body(404, f"Sandbox with ID or name {sid} not found", "Not Found")
            )
        self.stops.append(dict(request.url.params))
        self.daytona.states[sid] = list(self.stop_states)
        return httpx.Response(200, json={**self.daytona.sandboxes[sid], "state": "stopping"})

    def _archive(self, request: httpx.Request, sid: str) -> httpx.Response:
        if sid not in self.daytona.sandboxes:
            return httpx.Response(
                404, json=error_body(404, f"Sandbox with ID or name {sid} not found", "Not Found")
            )
        self.archives.append(sid)
        if self.archive_refusal is not None:
            status, message = self.archive_refusal
            return httpx.Response(status, json=error_body(status, message, "Bad Request"))
        self.daytona.states[sid] = list(self.archive_states)
        return httpx.Response(200, json={**self.daytona.sandboxes[sid], "state": "archiving"})
