"""Daytona's REST API subset: config, sandboxes, their lifecycle and preview URLs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from daytonaflow.localserver.egress import NetworkPolicyError, parse_allow_list
from daytonaflow.localserver.errors import ApiError
from daytonaflow.localserver.http_common import (
    bounded_number,
    json_body,
    optional_bool,
    optional_env,
    optional_labels,
    optional_name,
    optional_str,
    optional_str_map,
    parse_json_object,
)
from daytonaflow.localserver.isolation import IsolationReport
from daytonaflow.localserver.sandboxes import SandboxManager, SandboxRecord
from daytonaflow.localserver.tokens import PreviewSigner, PreviewTokenError

#: Where the path form of a preview URL puts the preview: ``/preview/{port}-{sandboxId|token}/…``.
PREVIEW_PATH_PREFIX = "/preview/"

_MAX_SIGNED_EXPIRY_SECONDS = 24 * 3600
#: Ten years: the longest auto-stop (or archive, delete) interval a create may ask for, in minutes.
_MAX_INTERVAL_MINUTES = 10 * 366 * 24 * 60
#: Sandboxes here get no GPU; a request for some is accepted (and ignored) up to this count.
_MAX_GPUS = 64


@dataclass
class ServerState:
    """What the request handlers of one server share."""

    manager: SandboxManager
    signer: PreviewSigner
    report: IsolationReport
    askpass: Path
    api_url: str = ""
    toolbox_url: str = ""
    proxy_port: int = 0
    proxy_host: str = "127.0.0.1"
    api_key: str = ""
    """The API key, which a preview request may send as a Bearer credential (the SDK says so)."""

    def sandbox_json(self, record: SandboxRecord) -> dict[str, Any]:
        return record.to_api(self.toolbox_url)

    def preview_url(self, port: int | str, label: str) -> str:
        """The form of a preview URL that opens from any client on this host: an IP address,
        which needs no resolver, and the preview in the path. The ``{port}-{label}.localhost``
        host form works too wherever *.localhost resolves (see docs/local-server.md)."""
        return f"http://{self.proxy_host}:{self.proxy_port}{PREVIEW_PATH_PREFIX}{port}-{label}"


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.server
    return state


def _port(request: Request) -> int:
    raw = request.path_params["port"]
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ApiError(400, f"port {raw!r} must be an integer between 1 and 65535")
    return int(raw)


async def get_config(request: Request) -> Response:
    state = _state(request)
    return JSONResponse(
        {
            "version": "daytonaflow-local",
            "linkedAccountsEnabled": False,
            "announcements": {},
            "proxyTemplateUrl": state.preview_url("{{PORT}}", "{{sandboxId}}"),
            "proxyToolboxUrl": state.toolbox_url,
            "defaultSnapshot": "local",
            "dashboardUrl": state.api_url,
            "maxAutoArchiveInterval": 0,
            "maintananceMode": False,
            "environment": "local",
            "oidc": {"issuer": "", "clientId": "", "audience": ""},
        }
    )


async def get_isolation(request: Request) -> Response:
    """Local extension: which isolation mechanisms and limits are in force on this host."""
    return JSONResponse(_state(request).report.as_json())


async def create_sandbox(request: Request) -> Response:
    body = _create_request(await json_body(request))
    state = _state(request)
    record = await state.manager.create(body)
    return JSONResponse(state.sandbox_json(record))


#: What a create request may ask for: cores, GiB of memory, GiB of disk. Below the minimums a
#: sandbox cannot start (cgroup v1 refuses a CPU quota under 1 ms per 100 ms period; the agent's
#: interpreter needs its memory); above the maximums the figures no longer describe a limit and
#: overflow the byte counts derived from them.
REQUEST_RANGES: dict[str, tuple[float, float]] = {
    "cpu": (0.01, 1024.0),
    "memory": (0.25, 4096.0),
    "disk": (1 / 16, 65536.0),
}


def _create_request(body: dict[str, Any]) -> dict[str, Any]:
    """The create body with every field this server uses checked for type and range (400 if not).

    Nothing reaches the manager unchecked: a bad value found later would fail the sandbox half
    made, or every command run in it.
    """
    checked: dict[str, Any] = {
        "name": optional_name(body, "name"),
        "target": optional_name(body, "target"),
        "env": optional_env(body, "env"),
        "labels": optional_labels(body),
        "public": optional_bool(body, "public"),
        "autoStopInterval": bounded_number(body, "autoStopInterval", _MAX_INTERVAL_MINUTES),
    }
    for name, (low, high) in REQUEST_RANGES.items():
        checked[name] = bounded_number(body, name, high, low)
    # Fields of Daytona's create this server accepts without using: their types are still checked,
    # so a client learns of its mistake here as it would from Daytona.
    for name in ("snapshot", "user", "domainAllowList", "linkedSandbox"):
        optional_str(body, name)
    checked.update(_network_request(body))
    bounded_number(body, "gpu", _MAX_GPUS)
    for name in ("autoArchiveInterval", "autoDeleteInterval"):
        bounded_number(body, name, _MAX_INTERVAL_MINUTES)
    return {key: value for key, value in checked.items() if value is not None}


def _network_request(body: dict[str, Any]) -> dict[str, Any]:
    """``networkBlockAll`` and ``networkAllowList``, checked (the list must parse as CIDRs)."""
    block_all = optional_bool(body, "networkBlockAll")
    allow_list = optional_str(body, "networkAllowList")
    if allow_list is not None:
        try:
            parse_allow_list(allow_list)
        except NetworkPolicyError as error:
            raise ApiError(400, str(error)) from None
    checked: dict[str, Any] = {"networkAllowList": allow_list}
    # Egress is asked for explicitly: networkBlockAll false, or an allow list without it.
    checked["networkBlockAll"] = block_all if block_all is not None else allow_list is None
    return checked


async def list_sandboxes(request: Request) -> Response:
    state = _state(request)
    labels: dict[str, str] | None = None
    raw = request.query_params.get("labels")
    if raw:
        labels = optional_str_map({"labels": parse_json_object(raw, "labels")}, "labels")
    records = state.manager.list(labels)
    states = request.query_params.getlist("states")
    if states:
        records = [r for r in records if r.state in states]
    name_prefix = request.query_params.get("name")
    if name_prefix:
        records = [r for r in records if r.name.lower().startswith(name_prefix.lower())]
    return JSONResponse({"items": [state.sandbox_json(r) for r in records], "nextCursor": None})


async def get_sandbox(request: Request) -> Response:
    state = _state(request)
    return JSONResponse(state.sandbox_json(state.manager.get(request.path_params["sandbox"])))


async def delete_sandbox(request: Request) -> Response:
    state = _state(request)
    record = await state.manager.delete(state.manager.get(request.path_params["sandbox"]))
    return JSONResponse(state.sandbox_json(record))


async def start_sandbox(request: Request) -> Response:
    state = _state(request)
    record = await state.manager.start(state.manager.get(request.path_params["sandbox"]))
    return JSONResponse(state.sandbox_json(record))


async def stop_sandbox(request: Request) -> Response:
    state = _state(request)
    force = request.query_params.get("force", "").lower() in ("1", "true")
    record = await state.manager.stop(state.manager.get(request.path_params["sandbox"]), force=force)
    return JSONResponse(state.sandbox_json(record))


async def set_autostop(request: Request) -> Response:
    state = _state(request)
    record = state.manager.get(request.path_params["sandbox"])
    try:
        interval = float(request.path_params["interval"])
    except ValueError:
        raise ApiError(400, "interval must be a number of minutes") from None
    # Written so that "nan" and "inf" fail too.
    if not 0 <= interval <= _MAX_INTERVAL_MINUTES:
        raise ApiError(400, f"interval must be from 0 to {_MAX_INTERVAL_MINUTES} minutes")
    record.auto_stop_interval = interval
    state.manager.save(record)
    return JSONResponse(state.sandbox_json(record))


async def set_public(request: Request) -> Response:
    state = _state(request)
    record = state.manager.get(request.path_params["sandbox"])
    raw = request.path_params["public"].lower()
    if raw not in ("true", "false"):
        raise ApiError(400, "isPublic must be true or false")
    record.public = raw == "true"
    state.manager.save(record)
    return JSONResponse(state.sandbox_json(record))


async def replace_labels(request: Request) -> Response:
    state = _state(request)
    record = state.manager.get(request.path_params["sandbox"])
    body = await json_body(request)
    record.labels = optional_labels(body)
    state.manager.save(record)
    return JSONResponse({"labels": record.labels})


async def preview_url(request: Request) -> Response:
    state = _state(request)
    record = state.manager.get(request.path_params["sandbox"])
    port = _port(request)
    return JSONResponse(
        {
            "sandboxId": record.id,
            "url": state.preview_url(port, record.id),
            "token": record.preview_token,
        }
    )


async def signed_preview_url(request: Request) -> Response:
    state = _state(request)
    record = state.manager.get(request.path_params["sandbox"])
    port = _port(request)
    raw = request.query_params.get("expiresInSeconds", "60")
    if not raw.isdigit() or not 1 <= int(raw) <= _MAX_SIGNED_EXPIRY_SECONDS:
        raise ApiError(400, f"expiresInSeconds must be an integer from 1 to {_MAX_SIGNED_EXPIRY_SECONDS}")
    signed = state.signer.issue(record.id, port, int(raw))
    return JSONResponse(
        {
            "sandboxId": record.id,
            "port": port,
            "token": signed.token,
            "url": state.preview_url(port, signed.token),
        }
    )


async def expire_signed_preview_url(request: Request) -> Response:
    state = _state(request)
    record = state.manager.get(request.path_params["sandbox"])
    port = _port(request)
    try:
        claims = state.signer.decode(request.path_params["token"], port)
    except PreviewTokenError:
        claims = None
    if claims is None or claims.sandbox_id != record.id:
        raise ApiError(400, "token was not issued for this sandbox and port", code="TOKEN_INVALID")
    state.signer.revoke(claims.token, port)
    return Response(status_code=200)


async def toolbox_proxy_url(request: Request) -> Response:
    state = _state(request)
    state.manager.get(request.path_params["sandbox"])
    return JSONResponse({"url": state.toolbox_url})


def api_routes() -> list[BaseRoute]:
    sandbox = "/sandbox/{sandbox}"
    return [
        Route("/config", get_config, methods=["GET"]),
        Route("/local/isolation", get_isolation, methods=["GET"]),
        Route("/sandbox", list_sandboxes, methods=["GET"]),
        Route("/sandbox", create_sandbox, methods=["POST"]),
        Route(sandbox, get_sandbox, methods=["GET"]),
        Route(sandbox, delete_sandbox, methods=["DELETE"]),
        Route(f"{sandbox}/start", start_sandbox, methods=["POST"]),
        Route(f"{sandbox}/stop", stop_sandbox, methods=["POST"]),
        Route(f"{sandbox}/autostop/{{interval}}", set_autostop, methods=["POST"]),
        Route(f"{sandbox}/public/{{public}}", set_public, methods=["POST"]),
        Route(f"{sandbox}/labels", replace_labels, methods=["PUT"]),
        Route(f"{sandbox}/toolbox-proxy-url", toolbox_proxy_url, methods=["GET"]),
        Route(f"{sandbox}/ports/{{port}}/preview-url", preview_url, methods=["GET"]),
        Route(f"{sandbox}/ports/{{port}}/signed-preview-url", signed_preview_url, methods=["GET"]),
        Route(
            f"{sandbox}/ports/{{port}}/signed-preview-url/{{token}}/expire",
            expire_signed_preview_url,
            methods=["POST"],
        ),
    ]
