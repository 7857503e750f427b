"""The built-in ``http`` component: one HTTP request from the host running the canvas.

SuperPlane ships an HTTP component in its core; daytonaflow does too, so a canvas can check what
it built (a preview URL, a health endpoint) without a sandbox of its own.
"""

from __future__ import annotations

import functools
import json
import ssl
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from pydantic import Field

from daytonaflow import documents
from daytonaflow.component import FAILED_CHANNEL, Channel, Component, ExecutionContext
from daytonaflow.errors import ComponentError, ConfigIssue
from daytonaflow.events import Payload
from daytonaflow.expressions import contains_template

HTTP_SUCCESS_CHANNEL = Channel("success", "Success", "The server answered with a status below 400.")
HTTP_FAILED_CHANNEL = Channel(
    FAILED_CHANNEL.name, "Failed", "The server answered with a status of 400 or more.", failure=True
)
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
DEFAULT_TIMEOUT_SECONDS = 30
DEFAULT_MAX_BODY_BYTES = 64 * 1024


class HttpResponsePayload(Payload):
    event_type: ClassVar[str] = "http.response"

    url: str
    status: int
    headers: dict[str, str]
    body: str
    #: The body parsed as JSON when the response says it is JSON.
    json_body: Any = Field(default=None, alias="json")
    truncated: bool = False

    def failure_summary(self) -> str | None:
        return f"HTTP {self.status} from {self.url}"


_DOCUMENTATION = """\
The HTTP Request component sends one request from the machine running the canvas and routes on
the status code.

## Configuration
- **URL**: `http://` or `https://` address (supports expressions, e.g. `{{ $["Preview"].data.url }}`)
- **Method**: GET (default), HEAD, POST, PUT, PATCH, DELETE or OPTIONS
- **Headers**: list of `{name, value}`
- **Body**: request body as text
- **Timeout**: seconds before the request fails (default 30)
- **Max Body Bytes**: how much of the response body to keep (default 65536)

## Output channels
- **success**: the status is below 400
- **failed**: the status is 400 or more

A connection error or timeout fails the node.

## Output
`status`, `headers`, `body` (text, truncated to Max Body Bytes), `json` (when the response is
JSON), `url`.
"""


class HttpRequest(Component):
    name: ClassVar[str] = "http"
    label: ClassVar[str] = "HTTP Request"
    description: ClassVar[str] = "Send an HTTP request from the runner's host and route on the status."
    icon: ClassVar[str] = "globe"
    color: ClassVar[str] = "blue"
    channels = (HTTP_SUCCESS_CHANNEL, HTTP_FAILED_CHANNEL)
    payload_type: ClassVar[type[Payload]] = HttpResponsePayload

    @classmethod
    def documentation(cls) -> str:
        return _DOCUMENTATION

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "required": ["url"],
            "additionalProperties": False,
            "properties": {
                "url": {"title": "URL", "type": "string", "minLength": 1},
                "method": {"title": "Method", "type": "string", "enum": list(METHODS), "default": "GET"},
                "headers": {
                    "title": "Headers",
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "value"],
                        "additionalProperties": False,
                        "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
                    },
                },
                "body": {"title": "Body", "type": "string"},
                "timeout": {
                    "title": "Timeout",
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": 3600,
                    "default": DEFAULT_TIMEOUT_SECONDS,
                },
                "maxBodyBytes": {
                    "title": "Max Body Bytes",
                    "type": "integer",
                    "minimum": 0,
                    "default": DEFAULT_MAX_BODY_BYTES,
                },
            },
        }

    @classmethod
    def manifest(cls) -> dict[str, Any]:
        return {**super().manifest(), "configuration": cls.config_schema()}

    @classmethod
    def example_output(cls) -> dict[str, Any]:
        return {
            "data": {
                "body": "Hello from the sandbox\n",
                "headers": {"content-type": "text/plain"},
                "status": 200,
                "truncated": False,
                "url": "https://3000-sandbox-abc123def456.proxy.daytona.works/",
            },
            "timestamp": "2026-01-19T12:00:00Z",
            "type": HttpResponsePayload.event_type,
        }

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], *, allow_expressions: bool) -> list[ConfigIssue]:
        issues: list[ConfigIssue] = []

        def deferred(value: Any) -> bool:
            return allow_expressions and isinstance(value, str) and contains_template(value)

        known = set(cls.config_schema()["properties"])
        issues += [
            ConfigIssue(key, "is not a setting of the HTTP Request component")
            for key in config
            if key not in known
        ]
        url = config.get("url")
        if url is None:
            issues.append(ConfigIssue("url", "is required"))
        elif not deferred(url) and not _is_http_url(url):
            issues.append(ConfigIssue("url", "must be an http:// or https:// URL"))
        method = config.get("method", "GET")
        if not deferred(method) and (not isinstance(method, str) or method.upper() not in METHODS):
            issues.append(ConfigIssue("method", f"must be one of {', '.join(METHODS)}"))
        headers = config.get("headers", [])
        if not deferred(headers):
            if not isinstance(headers, list):
                issues.append(ConfigIssue("headers", "must be a list of {name, value}"))
            else:
                for index, header in enumerate(headers):
                    if not (isinstance(header, Mapping) and set(header) == {"name", "value"}):
                        issues.append(ConfigIssue(f"headers.{index}", "must be {name, value}"))
                        continue
                    for key in ("name", "value"):
                        if not isinstance(header[key], str):
                            issues.append(ConfigIssue(f"headers.{index}.{key}", "must be a string"))
        body = config.get("body")
        if body is not None and not isinstance(body, str):
            issues.append(ConfigIssue("body", "must be a string"))
        for key, limit in (("timeout", 3600), ("maxBodyBytes", None)):
            value = config.get(key)
            if value is None or deferred(value):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                issues.append(ConfigIssue(key, "must be a non-negative number"))
            elif limit is not None and value > limit:
                issues.append(ConfigIssue(key, f"must be at most {limit}"))
        return issues

    async def execute(self, ctx: ExecutionContext) -> None:
        config = ctx.config
        url = str(config["url"])
        method = str(config.get("method", "GET")).upper()
        headers = [(h["name"], h["value"]) for h in config.get("headers", [])]
        limit = int(config.get("maxBodyBytes", DEFAULT_MAX_BODY_BYTES))
        timeout = float(config.get("timeout", DEFAULT_TIMEOUT_SECONDS))
        target = httpx.URL(url)
        if target.host.endswith(".localhost"):
            # RFC 6761: every *.localhost name is loopback. Browsers honour that, the system resolver
            # often does not; preview URLs of the embedded server use such names.
            headers.append(("Host", target.netloc.decode("ascii")))
            target = target.copy_with(host="127.0.0.1")
        try:
            async with httpx.AsyncClient(
                timeout=timeout, follow_redirects=True, verify=_tls_context()
            ) as client:
                response = await client.request(method, target, headers=headers, content=config.get("body"))
        except httpx.HTTPError as error:
            raise ComponentError(f"{method} {url} failed: {error or type(error).__name__}") from None
        raw = response.content
        body = raw[:limit].decode(response.encoding or "utf-8", errors="replace")
        parsed: Any = None
        if "json" in response.headers.get("content-type", "") and len(raw) <= limit:
            try:
                # Bounded like every document: a body nested too deeply stays text only.
                parsed = documents.parse_json(raw.decode(json.detect_encoding(raw)), source=url)
            except (UnicodeDecodeError, documents.DocumentError):
                parsed = None
        payload = HttpResponsePayload(
            url=str(response.url),
            status=response.status_code,
            headers={key.lower(): value for key, value in response.headers.items()},
            body=body,
            json_body=parsed,
            truncated=len(raw) > limit,
        )
        ctx.emit("success" if response.status_code < 400 else "failed", payload)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context (with the CA bundle loaded) for every request of the process.

    Building it costs most of a megabyte and tens of milliseconds; one per request made a wide
    fan-out of ``http`` nodes grow by that much per node in flight.
    """
    return httpx.create_ssl_context()


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
