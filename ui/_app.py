"""The UI's HTTP routes: the built frontend, and a JSON API over the runner's own code paths.

Each route turns the runner's named errors into a status here, and only here; no route sends a
traceback, a secret value, or a component's private metadata.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from daytonaflow import documents
from daytonaflow.errors import DaytonaflowError
from daytonaflow.expressions import ExpressionError, ExpressionSyntaxError, compile_template
from daytonaflow.runner import (
    CanvasError,
    CanvasIssue,
    PreviewError,
    RunInputError,
    RunNotFoundError,
    parse_canvas,
    preview_template,
    validate_canvas,
)
from daytonaflow.runner.triggers import armed_triggers
from daytonaflow.ui._auth import TokenGuard, allowed_hosts
from daytonaflow.ui._files import CanvasFileError, export_canvas, import_canvas, open_canvas, save_canvas
from daytonaflow.ui._palette import palette
from daytonaflow.ui._runs import RunHub, run_snapshot
from daytonaflow.ui._services import UIServices

STATIC_DIR = Path(__file__).parent / "static"
_SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
    " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
_SECURITY_HEADERS_RAW = [(key.encode(), value.encode()) for key, value in _SECURITY_HEADERS.items()]
#: Canvases of thousands of nodes fit in a few MiB; more is no canvas anyone edits in a browser.
MAX_BODY_BYTES = 8 * documents.MIB
Handler = Callable[[Request], Awaitable[Response]]


class _BadRequest(DaytonaflowError):
    """The request itself is malformed (not JSON, a missing field)."""


def issue_json(issue: CanvasIssue) -> dict[str, Any]:
    return {
        "node": issue.node,
        "nodeName": issue.node_name,
        "field": issue.field,
        "message": issue.message,
        # The line `daytonaflow validate` prints for it.
        "text": str(issue),
    }


def create_app(services: UIServices, *, token: str, host: str, port: int, base_path: str) -> ASGIApp:
    """The ASGI app: routes behind the token guard, under ``base_path``. ``port`` is the one bound."""
    # Load every component now, on the loop: validation later runs in worker threads.
    list(services.engine.registry)
    hub = RunHub(services.store, services.engine)
    api = _Api(services, hub)
    routes = [
        Route("/", api.index),
        Route("/api/session", _guarded(api.session)),
        Route("/api/palette", _guarded(api.palette)),
        Route("/api/canvases", _guarded(api.canvases)),
        Route("/api/canvas", _guarded(api.open), methods=["GET"]),
        Route("/api/canvas", _guarded(api.save), methods=["PUT"]),
        Route("/api/canvas/import", _guarded(api.import_), methods=["POST"]),
        Route("/api/canvas/export", _guarded(api.export), methods=["POST"]),
        Route("/api/validate", _guarded(api.validate), methods=["POST"]),
        Route("/api/expression", _guarded(api.expression), methods=["POST"]),
        Route("/api/runs", _guarded(api.runs), methods=["GET"]),
        Route("/api/runs", _guarded(api.start_run), methods=["POST"]),
        Route("/api/runs/{run_id}", _guarded(api.run), methods=["GET"]),
        Route("/api/runs/{run_id}/events/{event_id}", _guarded(api.event), methods=["GET"]),
        Route("/api/runs/{run_id}/stream", _guarded(api.stream), methods=["GET"]),
        Route("/api/runs/{run_id}/cancel", _guarded(api.cancel), methods=["POST"]),
        Route("/api/triggers", _guarded(api.triggers), methods=["GET"]),
        Route("/api/sandboxes", _guarded(api.sandboxes), methods=["GET"]),
        Route("/api/sandboxes/{sandbox_id}", _guarded(api.delete_sandbox), methods=["DELETE"]),
        Mount("/assets", StaticFiles(directory=STATIC_DIR, check_dir=False)),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        # Like Ctrl-C in `daytonaflow run`: the runs this process drives end cancelled, sandboxes reclaimed.
        await hub.cancel_all()

    app = Starlette(routes=routes, lifespan=lifespan)
    guarded = TokenGuard(app, token=token, port=port, hosts=allowed_hosts(host, port), base_path=base_path)

    # Outside the guard: its own refusals and redirects carry the headers too.
    async def with_headers(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                present = {key.lower() for key, _ in message.get("headers", [])}
                extra = [(key, value) for key, value in _SECURITY_HEADERS_RAW if key not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await guarded(scope, receive, send_with_headers)

    return with_headers


def _guarded(handler: Handler) -> Handler:
    """The runner's named errors as statuses; anything else is a 500 with its message only."""

    async def route(request: Request) -> Response:
        try:
            return await handler(request)
        except CanvasError as error:
            status = 422 if request.url.path in ("/api/runs",) else 400
            return _error(status, str(error), issues=[issue_json(issue) for issue in error.issues])
        except RunNotFoundError as error:
            return _error(404, str(error))
        except (RunInputError, CanvasFileError, _BadRequest, documents.DocumentError) as error:
            return _error(400, str(error))
        except DaytonaflowError as error:
            return _error(502, str(error))

    return route


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise _BadRequest(f"the request body is larger than {MAX_BODY_BYTES // documents.MIB} MiB")
    try:
        body = documents.parse_json(raw.decode("utf-8"), source="the request body")
    except UnicodeDecodeError:
        raise _BadRequest("the request body is not UTF-8") from None
    if not isinstance(body, dict):
        raise _BadRequest("the request body must be a JSON object")
    return body


def _path(text: str) -> Path:
    try:
        return Path(text).expanduser()
    except RuntimeError as error:
        raise CanvasFileError(f"{text}: {error}") from None


def _required(body: dict[str, Any], key: str, kind: type) -> Any:
    value = body.get(key)
    if not isinstance(value, kind):
        raise _BadRequest(f'the request needs "{key}" ({kind.__name__})')
    return value


class _Api:
    def __init__(self, services: UIServices, hub: RunHub) -> None:
        self._services = services
        self._store = services.store
        self._hub = hub

    async def index(self, request: Request) -> Response:
        index = STATIC_DIR / "index.html"
        if not index.is_file():
            return Response("The UI's frontend is not built (ui/static/index.html is missing).", 500)
        return FileResponse(index, media_type="text/html")

    async def session(self, request: Request) -> Response:
        return JSONResponse(
            {
                "version": self._services.version,
                "backend": self._services.backend,
                "db": str(self._store.path),
            }
        )

    async def palette(self, request: Request) -> Response:
        return JSONResponse(palette(self._services.engine.registry))

    async def canvases(self, request: Request) -> Response:
        files = [{"path": str(path), "name": path.stem, "example": False} for path in self._services.canvases]
        named = set(self._services.canvases)
        files += [
            {"path": str(path), "name": path.stem, "example": True}
            for path in self._services.examples
            if path not in named
        ]
        return JSONResponse({"files": files})

    async def open(self, request: Request) -> Response:
        path = request.query_params.get("path")
        if not path:
            raise _BadRequest("say which file: /api/canvas?path=/abs/canvas.yaml")
        opened = await asyncio.to_thread(open_canvas, _path(path))
        return JSONResponse({"path": str(opened.path), "format": opened.format, "canvas": opened.document})

    async def save(self, request: Request) -> Response:
        body = await _body(request)
        path = _path(_required(body, "path", str))
        document = _required(body, "canvas", dict)
        written = await asyncio.to_thread(save_canvas, path, document)
        issues = await asyncio.to_thread(self._issues, document)
        return JSONResponse(
            {"path": str(path), "written": written, "issues": [issue_json(issue) for issue in issues]}
        )

    async def import_(self, request: Request) -> Response:
        body = await _body(request)
        fmt = body.get("format")
        if fmt not in (None, "yaml", "json"):
            raise _BadRequest('"format" is yaml or json')
        opened = await asyncio.to_thread(import_canvas, _required(body, "text", str), fmt)
        return JSONResponse({"canvas": opened.document})

    async def export(self, request: Request) -> Response:
        body = await _body(request)
        fmt = body.get("format", "yaml")
        if fmt not in ("yaml", "json"):
            raise _BadRequest('"format" is yaml or json')
        text = await asyncio.to_thread(export_canvas, _required(body, "canvas", dict), fmt)
        return JSONResponse({"text": text})

    async def validate(self, request: Request) -> Response:
        body = await _body(request)
        issues = await asyncio.to_thread(self._issues, _required(body, "canvas", dict))
        return JSONResponse({"issues": [issue_json(issue) for issue in issues]})

    def _issues(self, document: dict[str, Any]) -> list[CanvasIssue]:
        # In a worker thread: a canvas of thousands of nodes must not stall the runs on the loop.
        return validate_canvas(parse_canvas(document, source="the canvas"), self._services.engine.registry)

    async def expression(self, request: Request) -> Response:
        body = await _body(request)
        canvas = parse_canvas(_required(body, "canvas", dict), source="the canvas")
        node_id = _required(body, "node", str)
        field = _required(body, "field", str)
        text = _required(body, "text", str)
        try:
            canvas.node(node_id)
        except KeyError:
            raise _BadRequest(f'the canvas has no node "{node_id}"') from None
        run_id = body.get("run")
        try:
            # Syntax first: a typo is shown at once, run or no run.
            compile_template(text)
        except ExpressionSyntaxError as error:
            return JSONResponse({"ok": False, "error": error.detail, "offset": error.offset})
        except ExpressionError:
            pass  # a limit: resolving reports it in full below
        if not isinstance(run_id, str):
            latest = [r for r in self._store.list_runs(200) if r.canvas_name == canvas.name]
            if not latest:
                problem = f'no run of canvas "{canvas.name}" yet: run it to preview expressions'
                return JSONResponse({"ok": False, "error": problem, "noRun": True})
            run_id = latest[0].id
        try:
            value = preview_template(
                text,
                canvas=canvas,
                node_id=node_id,
                field=field,
                store=self._store,
                run_id=run_id,
                registry=self._services.engine.registry,
            )
        except ExpressionSyntaxError as error:
            return JSONResponse({"ok": False, "error": error.detail, "offset": error.offset, "run": run_id})
        except PreviewError as error:
            return JSONResponse({"ok": False, "error": str(error), "noRun": True, "run": run_id})
        except ExpressionError as error:
            return JSONResponse({"ok": False, "error": str(error), "run": run_id})
        return JSONResponse({"ok": True, "value": value, "run": run_id})

    async def runs(self, request: Request) -> Response:
        try:
            limit = max(1, min(int(request.query_params.get("limit", "50")), 1000))
        except ValueError:
            raise _BadRequest("limit is a whole number") from None
        canvas = request.query_params.get("canvas")
        records = self._store.list_runs(limit)
        if canvas:
            records = [record for record in records if record.canvas_name == canvas]
        return JSONResponse({"runs": [record.to_json() for record in records]})

    async def start_run(self, request: Request) -> Response:
        body = await _body(request)
        canvas = parse_canvas(_required(body, "canvas", dict), source="the canvas")
        run_input = body.get("input")
        if run_input is not None and not isinstance(run_input, dict):
            raise RunInputError("the run input must be a JSON object")
        self._services.engine.validate(canvas)
        await self._services.prepare_run(canvas)
        record = await self._hub.start(canvas, run_input, keep_resources=bool(body.get("keepSandboxes")))
        return JSONResponse({"run": record.to_json()}, status_code=201)

    async def run(self, request: Request) -> Response:
        record = self._store.find_run(request.path_params["run_id"])
        return JSONResponse({**run_snapshot(self._store, record), "canvas": record.canvas})

    async def event(self, request: Request) -> Response:
        record = self._store.find_run(request.path_params["run_id"])
        wanted = request.path_params["event_id"]
        for event in self._store.iter_events(record.id):
            if event.id == wanted:
                return JSONResponse(event.to_json())
        raise RunNotFoundError(f'run {record.id} has no event "{wanted}"')

    async def stream(self, request: Request) -> Response:
        record = self._store.find_run(request.path_params["run_id"])
        return StreamingResponse(
            self._hub.stream(record.id),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    async def cancel(self, request: Request) -> Response:
        record = self._store.find_run(request.path_params["run_id"])
        if record.finished:
            return JSONResponse({"run": record.to_json()})
        if not self._hub.drives(record.id):
            return _error(409, f"run {record.id} is run by another process; cancel it there (Ctrl-C)")
        cancelled = await self._hub.cancel(record.id)
        return JSONResponse({"run": cancelled.to_json()})

    async def triggers(self, request: Request) -> Response:
        """The canvas's triggers that a running ``daytonaflow up`` keeps armed (none when it is not up)."""
        canvas = request.query_params.get("canvas", "")
        return JSONResponse({"triggers": armed_triggers(self._services.store, canvas)})

    async def sandboxes(self, request: Request) -> Response:
        rows = await self._services.sandboxes.list()
        return JSONResponse({"backend": self._services.backend, "sandboxes": rows})

    async def delete_sandbox(self, request: Request) -> Response:
        sandbox_id = request.path_params["sandbox_id"]
        await self._services.sandboxes.delete(sandbox_id)
        return JSONResponse({"deleted": sandbox_id})
