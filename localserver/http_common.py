"""Pieces every HTTP surface shares: Daytona's JSON error body, bearer auth, JSON request bodies."""

from __future__ import annotations

import hmac
import json
import logging
import math
from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from daytonaflow.localserver.errors import ApiError, RequestFieldError

_MAX_JSON_BODY = 64 << 20
#: Sizes of what a request may hand a sandbox's processes: one variable stays under the kernel's
#: MAX_ARG_STRLEN (128 KiB) and all of them, with the command, well under ARG_MAX (2 MiB).
MAX_ENV_NAME = 1024
MAX_ENV_VALUE = 128 << 10
MAX_ENV_TOTAL = 512 << 10
MAX_LABELS = 256
MAX_LABEL_KEY = 256
MAX_LABEL_VALUE = 16 << 10
MAX_NAME = 255

logger = logging.getLogger("daytonaflow.localserver")


def error_body(status: int, message: str, code: str | None = None, **extra: object) -> dict[str, Any]:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body: dict[str, Any] = {"statusCode": status, "message": message, "error": phrase}
    if code:
        body["code"] = code
    body.update(extra)
    return body


def error_response(status: int, message: str, code: str | None = None, **extra: object) -> JSONResponse:
    return JSONResponse(error_body(status, message, code, **extra), status_code=status)


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.code, **exc.extra)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code)
    if exc.status_code == 404 and exc.detail == HTTPStatus.NOT_FOUND.phrase:
        # No route: said as Daytona's API says it, so that an SDK call this server lacks (archive,
        # resize, ...) reads as a missing operation, not as a missing sandbox.
        return error_response(404, f"Cannot {request.method} {request.url.path}")
    return error_response(exc.status_code, str(exc.detail))


async def client_disconnect_handler(request: Request, exc: Exception) -> Response:
    # Nobody is left to read it: 499 (nginx's "client closed request") only shows in logs.
    return Response(status_code=499)


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    return error_response(500, f"internal error: {type(exc).__name__}: {exc}")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ApiError: api_error_handler,
    HTTPException: http_exception_handler,
    ClientDisconnect: client_disconnect_handler,
    Exception: unexpected_error_handler,
}


async def json_body(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The request's JSON object; malformed or non-object bodies are a 400, never a 500."""
    raw = await _capped_body(request, _MAX_JSON_BODY)
    if not raw.strip():
        if required:
            raise ApiError(400, "request body must be a JSON object")
        return {}
    return parse_json_object(raw, "request body")


def parse_json_object(raw: str | bytes, what: str) -> dict[str, Any]:
    """``raw`` as a JSON object, else a 400 naming ``what`` (too deep a nesting included)."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as error:
        detail = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise ApiError(400, f"{what} is not valid JSON: {detail}") from None
    if not isinstance(value, dict):
        raise ApiError(400, f"{what} must be a JSON object")
    return value


async def _capped_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` (never read whole)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "request body is too large")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise ApiError(413, "request body is too large")
    return bytes(raw)


def require_str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"{name} is required and must be a non-empty string")
    return value


def optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string")
    return value


def optional_str_map(body: dict[str, Any], name: str) -> dict[str, str]:
    """An object whose values are all strings (never coerced: ``false`` is not ``"False"``)."""
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RequestFieldError(name, "must be an object of strings")
    for key, item in value.items():
        if not isinstance(item, str):
            raise RequestFieldError(f"{name}.{_shown(key)}", f"must be a string, not {_json_type(item)}")
    return dict(value)


def optional_env(body: dict[str, Any], name: str) -> dict[str, str]:
    """Environment variables: names without ``=`` or NUL, values without NUL, sizes capped.

    The kernel cannot pass such a name or value to a process; accepted, it would break every
    later command of the sandbox instead of this request.
    """
    env = optional_str_map(body, name)
    total = 0
    for key, value in env.items():
        where = f"{name}.{_shown(key)}"
        if not key or "=" in key or "\0" in key:
            raise RequestFieldError(where, "is not a variable name: it must be non-empty, without '=' or NUL")
        if len(key) > MAX_ENV_NAME:
            raise RequestFieldError(where, f"is a name longer than {MAX_ENV_NAME} characters")
        if "\0" in value:
            raise RequestFieldError(where, "must not contain NUL characters")
        if len(value.encode()) > MAX_ENV_VALUE:
            raise RequestFieldError(where, f"must be at most {MAX_ENV_VALUE} bytes")
        total += len(key.encode()) + len(value.encode()) + 2
    if total > MAX_ENV_TOTAL:
        raise RequestFieldError(name, f"must be at most {MAX_ENV_TOTAL} bytes in all")
    return env


def optional_labels(body: dict[str, Any], name: str = "labels") -> dict[str, str]:
    """Labels: at most :data:`MAX_LABELS` non-empty string keys with string values, sizes capped."""
    labels = optional_str_map(body, name)
    if len(labels) > MAX_LABELS:
        raise RequestFieldError(name, f"must hold at most {MAX_LABELS} labels")
    for key, value in labels.items():
        where = f"{name}.{_shown(key)}"
        if not key or len(key) > MAX_LABEL_KEY or "\0" in key:
            raise RequestFieldError(where, f"must be a key of 1 to {MAX_LABEL_KEY} characters without NUL")
        if len(value) > MAX_LABEL_VALUE or "\0" in value:
            raise RequestFieldError(where, f"must be at most {MAX_LABEL_VALUE} characters, without NUL")
    return labels


def optional_name(body: dict[str, Any], name: str, *, limit: int = MAX_NAME) -> str | None:
    """A short single-line string: 1 to ``limit`` characters, no control characters."""
    value = optional_str(body, name)
    if value is None:
        return None
    if not value or len(value) > limit or any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise RequestFieldError(name, f"must be 1 to {limit} characters without control characters")
    return value


def optional_bool(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise RequestFieldError(name, f"must be a boolean, not {_json_type(value)}")
    return value


def bounded_number(body: dict[str, Any], name: str, high: float = math.inf, low: float = 0.0) -> float | None:
    """A number from ``low`` to ``high`` (NaN and infinities refused), or None when absent."""
    value = body.get(name)
    if value is None:
        return None
    # Written so that NaN fails too (every comparison with it is false).
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not low <= value <= high
        or not math.isfinite(value)
    ):
        shown_high = "any finite number" if high == math.inf else f"{high:g}"
        raise RequestFieldError(name, f"must be a number from {low:g} to {shown_high}")
    return float(value)


def bounded_integer(body: dict[str, Any], name: str, high: int, low: int = 0) -> int | None:
    """A whole number from ``low`` to ``high``, or None when absent (Daytona types it ``integer``).

    JSON has one number type: ``2.0`` is the integer 2, while ``2.5`` is refused rather than
    rounded, so a client never gets a value other than the one it asked for.
    """
    value = body.get(name)
    if value is None:
        return None
    whole = (
        isinstance(value, int) or (isinstance(value, float) and math.isfinite(value) and value.is_integer())
    ) and not isinstance(value, bool)
    if not whole or not low <= value <= high:
        raise RequestFieldError(name, f"must be an integer from {low} to {high}")
    return int(value)


_MAX_DECIMAL_DIGITS = 18


def decimal_integer(raw: str, *, signed: bool = False) -> int | None:
    """``raw`` as an integer if it is ASCII decimal digits (a leading ``-`` too when ``signed``),
    else None. ``str.isdigit`` alone also holds for ``²`` (which ``int`` refuses: a 500) and for
    other scripts' digits (which ``int`` reads: a coerced value), and ``int`` refuses 5000 digits."""
    digits = raw[1:] if signed and raw.startswith("-") else raw
    if not (digits.isascii() and digits.isdigit()) or len(digits) > _MAX_DECIMAL_DIGITS:
        return None
    return int(raw)


def _shown(key: str) -> str:
    """A key as an error message may quote it: printable, and short."""
    shown = key.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= 64 else shown[:61] + "..."


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def query_bool(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")


class BearerAuth:
    """Every request must carry ``Authorization: Bearer <key>`` (compared in constant time)."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.expected = f"Bearer {api_key}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = b""
        for key, value in scope.get("headers", []):
            if key == b"authorization":
                given = value
                break
        if not hmac.compare_digest(given, self.expected):
            message = "missing API key" if not given else "invalid API key"
            response = error_response(401, f"Unauthorized: {message}", "UNAUTHORIZED")
            if scope["type"] == "websocket" and "websocket.http.response" not in scope.get("extensions", {}):
                # A server that cannot refuse a handshake with a response of its own: 403.
                await send({"type": "websocket.close", "code": 1008})
                return
            # A WebSocket handshake is refused with the very answer a plain request gets.
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class ContainErrors:
    """Keep the connection alive after a handled 500: an error whose answer was sent ends here.

    Starlette's outermost middleware sends the 500 and then re-raises the exception so that the
    server can log it; uvicorn then logs a traceback and closes the connection, and a client's
    next request on that kept-alive connection is reset. Only an answer cut off half-way still
    propagates: its connection cannot carry another request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        progress = {"started": False, "complete": False}

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                progress["started"] = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                progress["complete"] = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:
            if progress["started"] and not progress["complete"]:
                raise
            where = f"{scope.get('method', '')} {scope.get('path', '')}"
            logger.warning("internal error on %s: %s: %s", where, type(error).__name__, error)
            logger.debug("internal error on %s", where, exc_info=error)
            if not progress["started"]:
                response = error_response(500, f"internal error: {type(error).__name__}: {error}")
                await response(scope, receive, send)
