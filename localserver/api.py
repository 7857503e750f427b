"""Daytona's REST API subset: config, sandboxes, their lifecycle and preview URLs."""

from __future__ import annotations

import functools
import ipaddress
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from daytonaflow.localserver.egress import NetworkPolicyError, parse_allow_list
from daytonaflow.localserver.errors import ApiError, RequestFieldError
from daytonaflow.localserver.http_common import (
    bounded_integer,
    bounded_number,
    decimal_integer,
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
from daytonaflow.localserver.snapshots import SnapshotRecord
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
    port = decimal_integer(raw)
    if port is None or not 1 <= port <= 65535:
        raise ApiError(400, f"port {raw!r} must be an integer between 1 and 65535")
    return port


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
            # No identity provider: the key is the only credential (the SDK's model wants the fields).
            "oidc": {"issuer": "", "clientId": "", "audience": "", "provider": "none"},
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


#: What a create request may ask for: whole cores, GiB of memory, GiB of disk (Daytona's create
#: types them ``integer``). A sandbox's agent needs more than the least of each; above the maximums
#: the figures no longer describe a limit and overflow the byte counts derived from them.
REQUEST_RANGES: dict[str, tuple[int, int]] = {
    "cpu": (1, 1024),
    "memory": (1, 4096),
    "disk": (1, 65536),
}

#: Create fields whose promise this server cannot keep: refused (400) when they ask for something,
#: rather than accepted and silently not done. Each maps to why.
_UNSUPPORTED_REQUESTS = {
    "kvm": "this server has no KVM to expose",
    "secrets": "this server has no secret store",
    "ttlMinutes": "this server has no time-to-live destroy",
    "autoPauseInterval": "this server cannot pause a sandbox",
}


_ACCEPTED_UNUSED_STRINGS = (
    "user",
    "domainAllowList",
    "linkedSandbox",
    "outboundProxyUrl",
    "otelEndpointOverride",
)


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
        # Fractional minutes stay allowed (Daytona's model reports a number): a local extension
        # that lets a test see an auto-stop in seconds.
        "autoStopInterval": bounded_number(body, "autoStopInterval", _MAX_INTERVAL_MINUTES),
        "autoArchiveInterval": bounded_integer(body, "autoArchiveInterval", _MAX_INTERVAL_MINUTES),
        # Negative means never, as on Daytona.
        "autoDeleteInterval": bounded_integer(
            body, "autoDeleteInterval", _MAX_INTERVAL_MINUTES, -_MAX_INTERVAL_MINUTES
        ),
        "networkAllowList": _network_allow_list(body),
        # Checked against the server's snapshots and volumes by the manager, before anything is made.
        "snapshot": optional_str(body, "snapshot"),
        "volumes": _volumes(body),
    }
    # No egress unless asked for: networkBlockAll false, or an allow list without it.
    block_all = optional_bool(body, "networkBlockAll")
    checked["networkBlockAll"] = block_all if block_all is not None else checked["networkAllowList"] is None
    for name, (low, high) in REQUEST_RANGES.items():
        checked[name] = bounded_integer(body, name, high, low)
    # Fields of Daytona's create this server accepts without using: their types are still checked,
    # so a client learns of its mistake here as it would from Daytona.
    for name in _ACCEPTED_UNUSED_STRINGS:
        optional_str(body, name)
    optional_bool(body, "spot")
    bounded_integer(body, "gpu", _MAX_GPUS)
    bounded_integer(body, "queueTimeout", _MAX_INTERVAL_MINUTES, 1)
    # An image to build (what the SDK sends with resources): every sandbox here runs the host's
    # own userland, so only its shape is checked.
    if body.get("buildInfo") is not None and not isinstance(body["buildInfo"], dict):
        raise RequestFieldError("buildInfo", "must be an object")
    _refuse_unsupported(body)
    return {key: value for key, value in checked.items() if value is not None}


def _volumes(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Daytona's ``SandboxVolume`` list, its shape checked (what each entry names, by the manager)."""
    raw = body.get("volumes")
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise RequestFieldError("volumes", "must be a list of {volumeId, mountPath, subpath?} objects")
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise RequestFieldError(f"volumes[{index}]", "must be a {volumeId, mountPath, subpath?} object")
        for key in ("volumeId", "mountPath"):
            if not isinstance(item.get(key), str) or not item[key]:
                raise RequestFieldError(f"volumes[{index}].{key}", "is required: a string")
        if item.get("subpath") is not None and not isinstance(item["subpath"], str):
            raise RequestFieldError(f"volumes[{index}].subpath", "must be a string")
    return raw


def _network_allow_list(body: dict[str, Any]) -> str | None:
    """Daytona's comma-separated IPv4 CIDR list, kept as given once every entry parses."""
    raw = optional_str(body, "networkAllowList")
    if raw is None:
        return None
    for entry in raw.split(","):
        try:
            ipaddress.IPv4Network(entry.strip(), strict=False)
        except ValueError:
            raise RequestFieldError(
                "networkAllowList", f"must be comma-separated IPv4 CIDR blocks; {entry.strip()!r} is not one"
            ) from None
    try:
        parse_allow_list(raw)  # the egress proxy's own bounds (how many networks)
    except NetworkPolicyError as error:
        raise RequestFieldError("networkAllowList", str(error).removeprefix("networkAllowList ")) from None
    return raw


def _refuse_unsupported(body: dict[str, Any]) -> None:
    for name, reason in _UNSUPPORTED_REQUESTS.items():
        value = body.get(name)
        # What asks for nothing (false, 0, an empty list or object) is what the SDKs send by default.
        if value is None or value is False or value == 0 or value == [] or value == {}:
            continue
        raise RequestFieldError(name, f"is not supported by the local server: {reason}")


# ---- listing ----------------------------------------------------------------------------------------

#: Daytona's ``SandboxState`` values: a filter may name any of them (this server uses a few).
_SANDBOX_STATES = frozenset(
    {
        *("creating", "restoring", "destroyed", "destroying", "started", "stopped", "starting"),
        *("stopping", "error", "build_failed", "pending_build", "building_snapshot", "unknown"),
        *("pulling_snapshot", "archived", "archiving", "resizing", "snapshotting", "forking"),
        *("pausing", "paused", "resuming"),
    }
)
_MAX_PAGE = 200
_CURSOR_SORT_FIELDS = frozenset({"name", "cpu", "memoryGib", "diskGib", "lastActivityAt", "createdAt"})
_PAGE_SORT_FIELDS = frozenset(
    {"id", "name", "state", "snapshot", "region", "updatedAt", "createdAt", "lastActivityAt"}
)
_DEFAULT_PAGE = 100


def _sort_key(field: str) -> Callable[[SandboxRecord], Any]:
    keys: dict[str, Callable[[SandboxRecord], Any]] = {
        "id": lambda r: r.id,
        "name": lambda r: r.name,
        "state": lambda r: r.state,
        "snapshot": lambda r: r.snapshot or "local",
        "region": lambda r: r.target,
        "cpu": lambda r: r.cpu,
        "memoryGib": lambda r: r.memory,
        "diskGib": lambda r: r.disk,
        "updatedAt": lambda r: r.updated_at,
        "createdAt": lambda r: r.created_at,
        "lastActivityAt": lambda r: r.last_activity_at,
    }
    return keys[field]


@dataclass(frozen=True)
class _ListQuery:
    """One list request's filters and order, checked (400 naming the parameter if not)."""

    request: Request
    sort_fields: frozenset[str]
    region_param: str

    def _one(self, name: str) -> str | None:
        values = self.request.query_params.getlist(name)
        if len(values) > 1:
            raise ApiError(400, f"{name} must be given once")
        return values[0] if values else None

    def _bool(self, name: str) -> bool | None:
        raw = self._one(name)
        if raw is None:
            return None
        if raw not in ("true", "false"):
            raise ApiError(400, f"{name} must be true or false")
        return raw == "true"

    def _number(self, name: str, low: float = 1) -> float | None:
        raw = self._one(name)
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not low <= value < math.inf:
            raise ApiError(400, f"{name} must be a number of at least {low:g}")
        return value

    def integer(self, name: str, default: int, high: int = 2**31) -> int:
        raw = self._one(name)
        if raw is None:
            return default
        value = decimal_integer(raw)
        if value is None or not 1 <= value <= high:
            raise ApiError(400, f"{name} must be an integer from 1 to {high}")
        return value

    def _instant(self, name: str) -> datetime | None:
        raw = self._one(name)
        if raw is None:
            return None
        try:
            instant = datetime.fromisoformat(raw)
        except ValueError:
            raise ApiError(400, f"{name} must be an ISO 8601 date-time") from None
        return instant if instant.tzinfo else instant.replace(tzinfo=UTC)

    def _labels(self) -> dict[str, str]:
        raw = self._one("labels")
        # The older SDKs send the JSON of None when they filter by no labels.
        if not raw or raw == "null":
            return {}
        return optional_str_map({"labels": parse_json_object(raw, "labels")}, "labels")

    def _states(self) -> set[str]:
        states = set(self.request.query_params.getlist("states"))
        unknown = sorted(states - _SANDBOX_STATES)
        if unknown:
            raise ApiError(400, f"states: {unknown[0]!r} is not a sandbox state")
        return states

    def records(self, manager: SandboxManager) -> list[SandboxRecord]:
        """The matching sandboxes, in the order asked (newest first unless told)."""
        checks = self._checks()
        sort = self._one("sort") or "createdAt"
        if sort not in self.sort_fields:
            raise ApiError(400, f"sort must be one of {', '.join(sorted(self.sort_fields))}")
        order = self._one("order") or "desc"
        if order not in ("asc", "desc"):
            raise ApiError(400, "order must be asc or desc")
        records = [r for r in manager.list(self._labels()) if all(check(r) for check in checks)]
        # The id breaks ties, so that pages of equal keys never repeat or skip one.
        records.sort(key=lambda r: r.id, reverse=order == "desc")
        records.sort(key=_sort_key(sort), reverse=order == "desc")
        return records

    def _checks(self) -> list[Callable[[SandboxRecord], bool]]:
        checks: list[Callable[[SandboxRecord], bool]] = []
        if not self._bool("includeErroredDeleted"):
            checks.append(lambda r: not (r.state == "error" and r.destroy_pending))
        for name, field in (("id", "id"), ("name", "name")):
            prefix = self._one(name)
            if prefix:
                checks.append(functools.partial(_has_prefix, field, prefix.lower()))
        states = self._states()
        if states:
            checks.append(lambda r: r.state in states)
        snapshots = self.request.query_params.getlist("snapshots")
        if snapshots:
            checks.append(lambda r: (r.snapshot or "local") in snapshots)
        regions = self.request.query_params.getlist(self.region_param)
        if regions:
            checks.append(lambda r: r.target in regions)
        classes = self.request.query_params.getlist("sandboxClasses")
        if classes:
            checks.append(lambda r: "container" in classes)
        for name in ("isPublic", "isRecoverable"):
            expected = self._bool(name)
            if expected is not None:
                checks.append(functools.partial(_flag_is, name, expected))
        for name, field in (("Cpu", "cpu"), ("MemoryGiB", "memory"), ("DiskGiB", "disk")):
            low, high = self._number(f"min{name}"), self._number(f"max{name}")
            if low is not None:
                checks.append(functools.partial(_units_compare, field, operator.ge, low))
            if high is not None:
                checks.append(functools.partial(_units_compare, field, operator.le, high))
        # No sandbox here has a time-to-live, so none has an auto-destroy time to fall in a range.
        if self._instant("autoDestroyAtAfter") or self._instant("autoDestroyAtBefore"):
            checks.append(lambda r: False)
        for prefix, field in (("createdAt", "created_at"), ("lastEvent", "last_activity_at")):
            after, before = self._instant(f"{prefix}After"), self._instant(f"{prefix}Before")
            if after is not None:
                checks.append(functools.partial(_instant_compare, field, operator.gt, after))
            if before is not None:
                checks.append(functools.partial(_instant_compare, field, operator.lt, before))
        return checks


def _has_prefix(field: str, prefix: str, record: SandboxRecord) -> bool:
    value: str = getattr(record, field)
    return value.lower().startswith(prefix)


def _flag_is(name: str, expected: bool, record: SandboxRecord) -> bool:
    return (record.public if name == "isPublic" else False) == expected


def _units_compare(
    field: str, compare: Callable[[int, float], bool], bound: float, record: SandboxRecord
) -> bool:
    """Compare the whole cores or GiB the sandbox is reported with, as a client sees them."""
    reported: int = record.to_api("")[field]
    return compare(reported, bound)


def _instant_compare(
    field: str, compare: Callable[[datetime, datetime], bool], bound: datetime, record: SandboxRecord
) -> bool:
    return compare(datetime.fromisoformat(getattr(record, field)), bound)


async def list_sandboxes(request: Request) -> Response:
    """Daytona's cursor-paged list (the current SDKs'): the cursor is the offset of the next page."""
    state = _state(request)
    query = _ListQuery(request, _CURSOR_SORT_FIELDS, "regionIds")
    limit = query.integer("limit", _DEFAULT_PAGE, _MAX_PAGE)
    offset = decimal_integer(request.query_params.get("cursor") or "0")
    if offset is None:
        raise ApiError(400, "cursor must be one a previous page returned")
    records = query.records(state.manager)
    page = records[offset : offset + limit]
    following = offset + limit
    return JSONResponse(
        {
            "items": [state.sandbox_json(r) for r in page],
            "nextCursor": str(following) if following < len(records) else None,
        }
    )


async def list_sandboxes_paginated(request: Request) -> Response:
    """Daytona's page-numbered list, deprecated there but what the 0.129 SDK's ``list`` calls."""
    state = _state(request)
    query = _ListQuery(request, _PAGE_SORT_FIELDS, "regions")
    page = query.integer("page", 1)
    limit = query.integer("limit", _DEFAULT_PAGE, _MAX_PAGE)
    records = query.records(state.manager)
    start = (page - 1) * limit
    return JSONResponse(
        {
            "items": [state.sandbox_json(r) for r in records[start : start + limit]],
            "total": len(records),
            "page": page,
            "totalPages": math.ceil(len(records) / limit),
        }
    )


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


def _interval_minutes(request: Request, low: int) -> int:
    """The path's whole number of minutes (the SDKs send an ``int``; ``1.5`` is refused, not rounded)."""
    minutes = decimal_integer(request.path_params["interval"], signed=True)
    if minutes is None or not low <= minutes <= _MAX_INTERVAL_MINUTES:
        raise ApiError(400, f"interval must be an integer from {low} to {_MAX_INTERVAL_MINUTES} minutes")
    return minutes


async def set_auto_archive(request: Request) -> Response:
    """Kept and reported: this server has no archive tier, a stopped sandbox stays as it is."""
    state = _state(request)
    record = state.manager.get(request.path_params["sandbox"])
    record.auto_archive_interval = _interval_minutes(request, 0)
    state.manager.save(record)
    return JSONResponse(state.sandbox_json(record))


async def set_auto_delete(request: Request) -> Response:
    """Minutes a stopped sandbox waits before the monitor deletes it (negative: never)."""
    state = _state(request)
    record = state.manager.get(request.path_params["sandbox"])
    record.auto_delete_interval = _interval_minutes(request, -_MAX_INTERVAL_MINUTES)
    state.manager.save(record)
    return JSONResponse(state.sandbox_json(record))


async def update_last_activity(request: Request) -> Response:
    """What the SDK's ``refresh_activity`` calls: the sandbox counts as busy from now (no auto-stop)."""
    state = _state(request)
    state.manager.keep_alive(state.manager.get(request.path_params["sandbox"]))
    return Response(status_code=201)


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
    if body.get("labels") is None:
        # Daytona's SandboxLabels requires it: a body without it must not wipe the labels.
        raise RequestFieldError("labels", "is required: an object of strings")
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
    expires = decimal_integer(raw)
    if expires is None or not 1 <= expires <= _MAX_SIGNED_EXPIRY_SECONDS:
        raise ApiError(400, f"expiresInSeconds must be an integer from 1 to {_MAX_SIGNED_EXPIRY_SECONDS}")
    signed = state.signer.issue(record.id, port, expires)
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


async def archive_sandbox(request: Request) -> Response:
    """Refused: this server has no archive tier (a stopped sandbox keeps its files as they are)."""
    state = _state(request)
    record = state.manager.get(request.path_params["sandbox"])
    raise ApiError(
        400,
        f"Sandbox {record.id} cannot be archived: this server cannot archive a sandbox (it has no "
        "archive storage); stop it instead, which keeps its files",
        code="ARCHIVE_UNSUPPORTED",
    )


# ---- volumes --------------------------------------------------------------------------------------------


async def list_volumes(request: Request) -> Response:
    return JSONResponse([v.to_api() for v in _state(request).manager.volume_store.list()])


async def create_volume(request: Request) -> Response:
    body = await json_body(request)
    name = optional_name(body, "name")
    if not name:
        raise RequestFieldError("name", "is required")
    volume = await _state(request).manager.create_volume(name)
    return JSONResponse(volume.to_api())


async def get_volume(request: Request) -> Response:
    return JSONResponse(_state(request).manager.volume_store.get(request.path_params["volume"]).to_api())


async def get_volume_by_name(request: Request) -> Response:
    return JSONResponse(_state(request).manager.volume_store.by_name(request.path_params["name"]).to_api())


async def delete_volume(request: Request) -> Response:
    manager = _state(request).manager
    await manager.delete_volume(manager.volume_store.get(request.path_params["volume"]))
    return Response(status_code=200)


# ---- snapshots ------------------------------------------------------------------------------------------

_SNAPSHOT_SORTS: dict[str, Callable[[SnapshotRecord], Any]] = {
    "name": lambda r: r.name,
    "state": lambda r: r.state,
    "lastUsedAt": lambda r: r.last_used_at or r.created_at,
    "createdAt": lambda r: r.created_at,
}


async def list_snapshots(request: Request) -> Response:
    """Daytona's page-numbered list; ``name`` matches part of a name, as Daytona's does."""
    state = _state(request)
    query = _ListQuery(request, frozenset(), "regions")
    page = query.integer("page", 1)
    limit = query.integer("limit", _DEFAULT_PAGE, _MAX_PAGE)
    sort = request.query_params.get("sort") or "lastUsedAt"
    if sort not in _SNAPSHOT_SORTS:
        raise ApiError(400, f"sort must be one of {', '.join(sorted(_SNAPSHOT_SORTS))}")
    order = request.query_params.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise ApiError(400, "order must be asc or desc")
    name = (request.query_params.get("name") or "").lower()
    records = [r for r in state.manager.snapshot_store.list() if name in r.name.lower()]
    records.sort(key=lambda r: r.id, reverse=order == "desc")
    records.sort(key=_SNAPSHOT_SORTS[sort], reverse=order == "desc")
    start = (page - 1) * limit
    return JSONResponse(
        {
            "items": [r.to_api() for r in records[start : start + limit]],
            "total": len(records),
            "page": page,
            "totalPages": math.ceil(len(records) / limit),
        }
    )


async def create_snapshot(request: Request) -> Response:
    """Built from the SDK's Dockerfile (``buildInfo.dockerfileContent``); an image to pull is refused."""
    body = await json_body(request)
    name = optional_name(body, "name")
    if not name:
        raise RequestFieldError("name", "is required")
    build = body.get("buildInfo")
    if build is not None and not isinstance(build, dict):
        raise RequestFieldError("buildInfo", "must be an object")
    dockerfile = optional_str(build or {}, "dockerfileContent")
    if not dockerfile:
        image = optional_str(body, "imageName")
        reason = (
            f"imageName {image!r} cannot be pulled: local sandboxes run the host's own userland"
            if image
            else "buildInfo.dockerfileContent is required"
        )
        raise ApiError(
            400,
            f"{reason}; build a snapshot from Image.debian_slim(...).pip_install(...) or take one from a "
            "sandbox (POST /sandbox/{id}/snapshot)",
            code="BUILD_UNSUPPORTED",
        )
    snapshot = await _state(request).manager.build_snapshot(name, dockerfile)
    return JSONResponse(snapshot.to_api())


async def get_snapshot(request: Request) -> Response:
    return JSONResponse(_state(request).manager.snapshot_store.get(request.path_params["snapshot"]).to_api())


async def delete_snapshot(request: Request) -> Response:
    """Sandboxes made from it keep their own copy: nothing depends on it."""
    store = _state(request).manager.snapshot_store
    record = store.get(request.path_params["snapshot"])
    if record.state in ("pending", "building"):
        raise ApiError(409, f"Snapshot {record.name} is {record.state}: delete it once its build ends")
    store.delete(record)
    return Response(status_code=200)


async def create_sandbox_snapshot(request: Request) -> Response:
    state = _state(request)
    record = state.manager.get(request.path_params["sandbox"])
    body = await json_body(request)
    name = optional_name(body, "name")
    if not name:
        raise RequestFieldError("name", "is required")
    if optional_bool(body, "includeMemory"):
        raise RequestFieldError("includeMemory", "is not supported: a local snapshot saves the home's files")
    await state.manager.snapshot(record, name)
    return JSONResponse(state.sandbox_json(record))


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
        Route("/sandbox/paginated", list_sandboxes_paginated, methods=["GET"]),
        Route(sandbox, get_sandbox, methods=["GET"]),
        Route(sandbox, delete_sandbox, methods=["DELETE"]),
        Route(f"{sandbox}/start", start_sandbox, methods=["POST"]),
        Route(f"{sandbox}/stop", stop_sandbox, methods=["POST"]),
        Route(f"{sandbox}/autostop/{{interval}}", set_autostop, methods=["POST"]),
        Route(f"{sandbox}/autoarchive/{{interval}}", set_auto_archive, methods=["POST"]),
        Route(f"{sandbox}/autodelete/{{interval}}", set_auto_delete, methods=["POST"]),
        Route(f"{sandbox}/last-activity", update_last_activity, methods=["POST"]),
        Route(f"{sandbox}/public/{{public}}", set_public, methods=["POST"]),
        Route(f"{sandbox}/labels", replace_labels, methods=["PUT"]),
        Route(f"{sandbox}/toolbox-proxy-url", toolbox_proxy_url, methods=["GET"]),
        Route(f"{sandbox}/archive", archive_sandbox, methods=["POST"]),
        Route(f"{sandbox}/snapshot", create_sandbox_snapshot, methods=["POST"]),
        Route("/volumes", list_volumes, methods=["GET"]),
        Route("/volumes", create_volume, methods=["POST"]),
        Route("/volumes/by-name/{name}", get_volume_by_name, methods=["GET"]),
        Route("/volumes/{volume}", get_volume, methods=["GET"]),
        Route("/volumes/{volume}", delete_volume, methods=["DELETE"]),
        Route("/snapshots", list_snapshots, methods=["GET"]),
        Route("/snapshots", create_snapshot, methods=["POST"]),
        Route("/snapshots/{snapshot}", get_snapshot, methods=["GET"]),
        Route("/snapshots/{snapshot}", delete_snapshot, methods=["DELETE"]),
        Route(f"{sandbox}/ports/{{port}}/preview-url", preview_url, methods=["GET"]),
        Route(f"{sandbox}/ports/{{port}}/signed-preview-url", signed_preview_url, methods=["GET"]),
        Route(
            f"{sandbox}/ports/{{port}}/signed-preview-url/{{token}}/expire",
            expire_signed_preview_url,
            methods=["POST"],
        ),
    ]
