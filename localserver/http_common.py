"""Pieces every HTTP surface shares: Daytona's JSON error body, bearer auth, JSON request bodies."""

from __future__ import annotations

import hmac
import json
import logging
from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from daytonaflow.localserver.errors import ApiError

_MAX_JSON_BODY = 64 << 20
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
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, f"request body is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "request body must be a JSON object")
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


def optional_number(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ApiError(400, f"{name} must be a non-negative number")
    return float(value)


def optional_str_map(body: dict[str, Any], name: str) -> dict[str, str]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ApiError(400, f"{name} must be an object of strings")
    return {k: str(v) for k, v in value.items()}


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
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            message = "missing API key" if not given else "invalid API key"
            response = error_response(401, f"Unauthorized: {message}", "UNAUTHORIZED")
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
