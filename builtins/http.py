"""The built-in ``http`` component: SuperPlane's HTTP Request, sent from the host running the canvas.

Configuration, channels (``success``/``failure``) and payloads (``http.request.finished`` and
``http.request.failed``: ``status``, ``headers``, ``body``, ``error``) follow SuperPlane's, so its
canvases run unchanged. Retries are durable: between attempts the execution waits on a persisted
check (``ctx.schedule_check``), never on a sleeping hook, so a restart resumes the retries.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, cast
from urllib.parse import urlencode, urlsplit

import httpx

from daytonaflow import documents
from daytonaflow.builtins._base import BuiltinComponent
from daytonaflow.component import Channel, ExecutionContext
from daytonaflow.components._fields import Field, Option, When
from daytonaflow.errors import ComponentError, ConfigIssue, SecretNotFoundError
from daytonaflow.events import Payload
from daytonaflow.expressions import contains_template

SUCCESS_CHANNEL = Channel("success", "Success", "The response status is one of the success codes.")
FAILURE_CHANNEL = Channel(
    "failure",
    "Failure",
    "The status is not a success code, or no response came (timeout, refused), after every retry.",
    failure=True,
)
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
#: Methods whose request carries the configured body (as in SuperPlane).
BODY_METHODS = ("POST", "PUT", "PATCH")
CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/plain", "application/xml")
#: The configuration field holding the body of each content type.
BODY_FIELDS = {
    "application/json": "json",
    "application/x-www-form-urlencoded": "formData",
    "text/plain": "text",
    "application/xml": "xml",
}
DEFAULT_TIMEOUT_SECONDS = 30
MAX_TIMEOUT_SECONDS = 300
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
RETRY_STRATEGIES = ("fixed", "exponential")
MAX_RETRY_ATTEMPTS = 30
MIN_RETRY_INTERVAL_SECONDS = 5
MAX_RETRY_INTERVAL_SECONDS = 300
MAX_LEGACY_RETRIES = 10
#: The older ``timeoutStrategy: exponential`` doubled each attempt's timeout up to this.
LEGACY_MAX_ATTEMPT_TIMEOUT_SECONDS = 120
#: Fields of earlier daytonaflow versions, and what replaced them.
RENAMED_FIELDS = {
    "timeout": "is now timeoutSeconds (whole seconds, 1 to 300)",
    "body": "is now contentType plus text, json, xml or formData",
}
SECRET_REF_FIELDS = (
    Field("secret", "string", "Secret", required=True, placeholder="api-token"),
    Field("key", "string", "Key", required=True, placeholder="TOKEN"),
)


def _key_value(key_name: str, key_label: str, value_label: str) -> Field:
    return Field(
        "item",
        "object",
        key_label,
        fields=(
            Field(key_name, "string", key_label, required=True),
            Field("value", "string", value_label, required=True, default=""),
        ),
    )


def _body_field(name: str, kind: str, label: str, content_type: str, description: str) -> Field:
    return Field(
        name,
        kind,  # type: ignore[arg-type]
        label,
        description,
        visible_when=(When("method", BODY_METHODS), When("contentType", (content_type,))),
        required_when=(When("contentType", (content_type,)),),
    )


_AUTH_TYPES = (
    Option("bearer", "Bearer Token"),
    Option("basic_auth", "Basic Auth"),
    Option("custom_header", "Custom Header"),
)

FIELDS: tuple[Field, ...] = (
    Field(
        "method",
        "select",
        "Method",
        "HTTP method (SuperPlane requires it; here it defaults to GET).",
        default="GET",
        options=tuple(Option(method, method) for method in METHODS),
    ),
    Field(
        "url",
        "string",
        "URL",
        "http:// or https:// address.",
        required=True,
        placeholder="https://api.example.com/endpoint",
    ),
    Field(
        "authorization",
        "object",
        "Authorization",
        "Request authentication, its secret read from the secrets provider.",
        togglable=True,
        fields=(
            Field("type", "select", "Type", required=True, default="bearer", options=_AUTH_TYPES),
            Field(
                "credential",
                "object",
                "Token",
                "Secret and key holding the bearer token.",
                fields=SECRET_REF_FIELDS,
                visible_when=(When("type", ("bearer",)),),
                required_when=(When("type", ("bearer",)),),
            ),
            Field(
                "username",
                "string",
                "Username",
                "Username for Basic Auth.",
                visible_when=(When("type", ("basic_auth",)),),
                required_when=(When("type", ("basic_auth",)),),
            ),
            Field(
                "password",
                "object",
                "Password",
                "Secret and key holding the Basic Auth password.",
                fields=SECRET_REF_FIELDS,
                visible_when=(When("type", ("basic_auth",)),),
                required_when=(When("type", ("basic_auth",)),),
            ),
            Field(
                "headerName",
                "string",
                "Header name",
                "Header that receives the secret value.",
                placeholder="X-API-Key",
                visible_when=(When("type", ("custom_header",)),),
                required_when=(When("type", ("custom_header",)),),
            ),
            Field(
                "value",
                "object",
                "Value",
                "Secret and key holding the custom header's value.",
                fields=SECRET_REF_FIELDS,
                visible_when=(When("type", ("custom_header",)),),
                required_when=(When("type", ("custom_header",)),),
            ),
        ),
    ),
    Field(
        "queryParams",
        "list",
        "Query Params",
        "Query parameters set on the URL (replacing one of the same name).",
        togglable=True,
        item=_key_value("key", "Key", "Value"),
    ),
    Field(
        "headers",
        "list",
        "Headers",
        "Headers sent with the request.",
        togglable=True,
        item=_key_value("name", "Header Name", "Header Value"),
    ),
    Field(
        "contentType",
        "select",
        "Body",
        "Body content type, for POST, PUT and PATCH requests.",
        togglable=True,
        options=(
            Option("application/json", "JSON"),
            Option("application/x-www-form-urlencoded", "Form Data"),
            Option("text/plain", "Plain Text"),
            Option("application/xml", "XML"),
        ),
        visible_when=(When("method", BODY_METHODS),),
    ),
    _body_field(
        "json",
        "code",
        "JSON Payload",
        "application/json",
        "The JSON body: any JSON value is serialized; a string is sent as the JSON text it holds.",
    ),
    Field(
        "formData",
        "list",
        "Form Data",
        "Key-value pairs sent URL-encoded.",
        item=_key_value("key", "Key", "Value"),
        visible_when=(
            When("method", BODY_METHODS),
            When("contentType", ("application/x-www-form-urlencoded",)),
        ),
        required_when=(When("contentType", ("application/x-www-form-urlencoded",)),),
    ),
    _body_field("text", "text", "Text Payload", "text/plain", "Plain text sent as the body."),
    _body_field("xml", "code", "XML Payload", "application/xml", "XML sent as the body."),
    Field(
        "successCodes",
        "string",
        "Overwrite success definition",
        "Comma-separated success statuses: codes (200, 201) or classes (2xx, 3xx).",
        togglable=True,
        default="2xx",
        pattern=r"^\s*[1-5](\d\d|\dx|xx)\s*(,\s*[1-5](\d\d|\dx|xx)\s*)*$",
        pattern_rule="be comma-separated status codes or classes such as 200, 201, 2xx",
    ),
    Field(
        "timeoutSeconds",
        "number",
        "Timeout (seconds)",
        "Seconds each attempt may take, the response body included.",
        default=DEFAULT_TIMEOUT_SECONDS,
        minimum=1,
        maximum=MAX_TIMEOUT_SECONDS,
    ),
    Field(
        "retry",
        "object",
        "Retry",
        "Retry a failed request (error or non-success status) after a wait.",
        fields=(
            Field("enabled", "boolean", "Enable retries", default=False),
            Field(
                "strategy",
                "select",
                "Strategy",
                "fixed: the same wait each time; exponential: the wait doubles after each retry.",
                default="fixed",
                options=(Option("fixed", "Fixed"), Option("exponential", "Exponential")),
                visible_when=(When("enabled", (True,)),),
            ),
            Field(
                "maxAttempts",
                "number",
                "Max Attempts",
                "Retries after the first request.",
                default=5,
                minimum=1,
                maximum=MAX_RETRY_ATTEMPTS,
                visible_when=(When("enabled", (True,)),),
            ),
            Field(
                "intervalSeconds",
                "number",
                "Retry interval (seconds)",
                "Seconds to wait before the first retry.",
                default=15,
                minimum=MIN_RETRY_INTERVAL_SECONDS,
                maximum=MAX_RETRY_INTERVAL_SECONDS,
                visible_when=(When("enabled", (True,)),),
            ),
        ),
    ),
    Field(
        "timeoutStrategy",
        "select",
        "Set Timeout and Retries (older SuperPlane)",
        "Older SuperPlane exports: fixed keeps timeoutSeconds per attempt and waits 1 s between attempts;"
        " exponential doubles both after each attempt (timeout up to 120 s).",
        togglable=True,
        options=(Option("fixed", "Fixed"), Option("exponential", "Exponential")),
    ),
    Field(
        "retries",
        "number",
        "Retries (older SuperPlane)",
        "With timeoutStrategy: retries after the first request.",
        minimum=0,
        maximum=MAX_LEGACY_RETRIES,
        visible_when=(When("timeoutStrategy", RETRY_STRATEGIES),),
    ),
    Field(
        "maxBodyBytes",
        "number",
        "Max Body Bytes",
        "How much of the response body is read and kept (daytonaflow; SuperPlane keeps it all).",
        default=DEFAULT_MAX_BODY_BYTES,
        minimum=0,
        maximum=documents.MAX_DOCUMENT_BYTES,
    ),
)


class HttpResponsePayload(Payload):
    """What SuperPlane's http emits (``status``, ``headers``, ``body``, ``error``), plus ``url``,
    ``truncated`` and ``attempts``."""

    event_type: ClassVar[str] = "http.request.finished"

    status: int | None = None
    #: Header names as Go's net/http spells them (``Content-Type``), each with its values.
    headers: dict[str, list[str]] | None = None
    #: The body parsed as JSON when it is JSON, else its text; absent when empty.
    body: Any = None
    #: Why the request got no response (timeout, connection refused).
    error: str | None = None
    url: str
    #: The body was longer than ``maxBodyBytes``: ``body`` holds its start, as text.
    truncated: bool = False
    attempts: int = 1

    def failure_summary(self) -> str | None:
        if self.error is not None:
            return self.error
        if self.status is not None:
            return f"HTTP {self.status} from {self.url}"
        return None


class HttpFailedPayload(HttpResponsePayload):
    """Emitted on ``failure``: same fields, SuperPlane's failure type."""

    event_type: ClassVar[str] = "http.request.failed"


@dataclass(frozen=True)
class _RetryPlan:
    """How many retries follow the first request, how long each waits and each attempt may take."""

    strategy: str
    retries: int
    interval: float
    timeout: float
    #: The older ``timeoutStrategy`` fields: their timeouts and waits grow differently.
    legacy: bool = False

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> _RetryPlan:
        timeout = float(settings["timeoutSeconds"])
        retry = settings.get("retry") or {}
        if retry.get("enabled"):
            return cls(retry["strategy"], int(retry["maxAttempts"]), float(retry["intervalSeconds"]), timeout)
        legacy = settings.get("timeoutStrategy")
        if legacy in RETRY_STRATEGIES:
            return cls(legacy, int(settings.get("retries") or 0), 1.0, timeout, legacy=True)
        return cls("fixed", 0, 0.0, timeout)

    def attempt_timeout(self, attempt: int) -> float:
        """Seconds attempt ``attempt`` (1 for the first request) may take."""
        if self.legacy and self.strategy == "exponential":
            return min(
                self.timeout * 2.0 ** (attempt - 1), max(self.timeout, LEGACY_MAX_ATTEMPT_TIMEOUT_SECONDS)
            )
        return self.timeout

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` before the next one."""
        if self.strategy != "exponential":
            return self.interval
        if self.legacy:
            return min(self.interval * 2.0 ** (attempt - 1), LEGACY_MAX_ATTEMPT_TIMEOUT_SECONDS)
        # SuperPlane: the interval, then interval * 2^n after the n-th retry.
        return self.interval * 2.0 ** (attempt - 1)


_DOCS = """\
The HTTP Request component sends one request from the machine running the canvas (a health check
of a preview URL, a webhook, an API call) and continues on `success` or `failure`.

## Configuration
- **URL** and **Method** (GET by default; `{{ }}` expressions are resolved, e.g.
  `{{ $["Preview URL"].data.url }}`). Names ending in `.localhost` go to the loopback address.
- **Query Params** (`{key, value}`), **Headers** (`{name, value}`).
- **Authorization**: `bearer` (`credential`), `basic_auth` (`username`, `password`) or
  `custom_header` (`headerName`, `value`); secrets are `{secret, key}` references read from the
  secrets provider.
- **Body** (POST, PUT, PATCH): `contentType` picks the field sent: `json`, `formData`, `text` or
  `xml`.
- **Success codes** (`successCodes`, default `2xx`): codes and classes such as `200, 201, 3xx`.
- **Timeout** (`timeoutSeconds`, 1 to 300, default 30): for each attempt, body included.
- **Retry** (`retry`): `enabled`, `strategy` (`fixed` or `exponential`), `maxAttempts` (retries
  after the first request, up to 30) and `intervalSeconds` (5 to 300). The exponential wait
  doubles after each retry (15 s, 30 s, 60 s, ...).
- Older SuperPlane exports' `timeoutStrategy` (`fixed`/`exponential`) and `retries` (0 to 10) work
  too: `fixed` waits 1 s between attempts; `exponential` waits 1 s, 2 s, 4 s, ... and doubles
  each attempt's timeout up to 120 s. Use one style or the other, not both.
- **Max Body Bytes** (`maxBodyBytes`, daytonaflow only, default 1 MiB): how much of the response
  is read and kept; beyond it `truncated` is true and `body` is the text of the start.

A request that fails (non-success status, timeout, refused connection) is retried after a wait
the engine persists: an engine restart during the wait resumes the retries.

Earlier daytonaflow versions named two fields differently: `timeout` is now `timeoutSeconds`,
and `body` is now `contentType: text/plain` with `text`. The old names are refused with that hint.

## Output channels
- **success**: the status is one of the success codes (`http.request.finished`).
- **failure**: any other status, or no response, once the retries are spent
  (`http.request.failed`). Unhandled by an edge, it fails the run with e.g.
  `HTTP 502 from http://...` or `request timed out after 30 s`.

## Output
`status`, `headers` (names as `Content-Type`, each a list of values), `body` (parsed JSON when
the body is JSON, else text), `error` (when there was no response), and, daytonaflow's own,
`url`, `truncated` and `attempts`.
"""


class HttpRequest(BuiltinComponent):
    name: ClassVar[str] = "http"
    label: ClassVar[str] = "HTTP Request"
    description: ClassVar[str] = "Send an HTTP request from the runner's host and route on the status."
    icon: ClassVar[str] = "globe"
    color: ClassVar[str] = "blue"
    channels = (SUCCESS_CHANNEL, FAILURE_CHANNEL)
    # SuperPlane's http before success/failure had one channel, taken by a successful request
    # (a failing one failed the node, which an unhandled `failure` does here too).
    channel_aliases: ClassVar[Mapping[str, str]] = {"default": SUCCESS_CHANNEL.name}
    payload_type: ClassVar[type[Payload]] = HttpResponsePayload
    other_payload_types: ClassVar[tuple[type[Payload], ...]] = (HttpFailedPayload,)
    fields = FIELDS
    docs: ClassVar[str] = _DOCS

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        schema = super().config_schema()
        json_field = schema["properties"]["json"]
        # Any JSON value is a body (an object, a list, or the text of one).
        schema["properties"]["json"] = {key: json_field[key] for key in ("title", "description")}
        return schema

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], *, allow_expressions: bool) -> list[ConfigIssue]:
        if not isinstance(cast(object, config), Mapping):
            return super().validate_config(config, allow_expressions=allow_expressions)
        # ``json`` takes any JSON value: the field spec (a code editor's text) must not refuse one.
        checked = {key: value for key, value in config.items() if key != "json"}
        if "json" in config:
            checked["json"] = "{}"
        issues = []
        for issue in super().validate_config(checked, allow_expressions=allow_expressions):
            if issue.field in RENAMED_FIELDS and issue.field in config:
                issue = ConfigIssue(issue.field, RENAMED_FIELDS[issue.field])
            issues.append(issue)
        return issues

    @classmethod
    def extra_rules(cls, config: Mapping[str, Any], *, allow_expressions: bool) -> list[ConfigIssue]:
        issues: list[ConfigIssue] = []
        url = config.get("url")
        deferred = allow_expressions and isinstance(url, str) and contains_template(url)
        if isinstance(url, str) and url and not deferred and not _is_http_url(url):
            issues.append(ConfigIssue("url", "must be an http:// or https:// URL"))
        retry = config.get("retry")
        if isinstance(retry, Mapping) and retry.get("enabled") is True and "timeoutStrategy" in config:
            issues.append(
                ConfigIssue("timeoutStrategy", "cannot be combined with retry.enabled: use one or the other")
            )
        return issues

    async def execute(self, ctx: ExecutionContext) -> None:
        await self._attempt(ctx, 1)

    async def check(self, ctx: ExecutionContext) -> None:
        # The wait before a retry is over: the next attempt, counted from the persisted metadata.
        previous = ctx.metadata.get().get("attempt")
        if not isinstance(previous, int):
            raise ComponentError(f'node "{ctx.node_id}": retry state lost (metadata without an attempt)')
        await self._attempt(ctx, previous + 1)

    async def _attempt(self, ctx: ExecutionContext, attempt: int) -> None:
        settings = self.settings(ctx)
        plan = _RetryPlan.of(settings)
        request = _build_request(ctx, settings)
        payload = await _send(request, plan.attempt_timeout(attempt), int(settings["maxBodyBytes"]))
        payload.attempts = attempt
        succeeded = payload.status is not None and _is_success(payload.status, settings["successCodes"])
        if succeeded:
            ctx.emit(SUCCESS_CHANNEL.name, payload)
            return
        if attempt <= plan.retries:
            delay = plan.delay_after(attempt)
            ctx.metadata.set(
                {
                    "attempt": attempt,
                    "maxAttempts": plan.retries,
                    "strategy": plan.strategy,
                    "interval": delay,
                    "lastStatus": payload.status,
                    "lastError": payload.error,
                    "nextRetryAt": time.time() + delay,
                }
            )
            ctx.logger.info("%s; retry %d of %d in %g s", _outcome(payload), attempt, plan.retries, delay)
            ctx.schedule_check(delay)
            return
        ctx.emit(FAILURE_CHANNEL.name, HttpFailedPayload(**payload.model_dump()))


@dataclass(frozen=True)
class _Request:
    method: str
    url: httpx.URL
    #: The URL as configured (a ``.localhost`` name is sent to 127.0.0.1 with its Host header).
    shown_url: str
    headers: list[tuple[str, str]]
    content: bytes | None


def _build_request(ctx: ExecutionContext, settings: Mapping[str, Any]) -> _Request:
    method = str(settings["method"]).upper()
    target = httpx.URL(str(settings["url"]))
    for param in settings.get("queryParams") or []:
        target = target.copy_set_param(param["key"], param["value"])
    shown = str(target)
    headers: dict[str, tuple[str, str]] = {}

    def put(name: str, value: str) -> None:
        # Set, not add (as Go's Header.Set): a later header of the same name replaces an earlier one.
        headers[name.lower()] = (name, value)

    content: bytes | None = None
    content_type = settings.get("contentType")
    if content_type is not None and method in BODY_METHODS:
        content = _body(settings, content_type)
        put("Content-Type", content_type)
    for header in settings.get("headers") or []:
        put(header["name"], header["value"])
    for name, value in _authorization_headers(ctx, settings.get("authorization")):
        put(name, value)
    if target.host.endswith(".localhost"):
        # RFC 6761: every *.localhost name is loopback. Browsers honour that, the system resolver
        # often does not; preview URLs of the embedded server use such names.
        put("Host", target.netloc.decode("ascii"))
        target = target.copy_with(host="127.0.0.1")
    return _Request(method, target, shown, list(headers.values()), content)


def _body(settings: Mapping[str, Any], content_type: str) -> bytes:
    value = settings.get(BODY_FIELDS[content_type])
    if content_type == "application/json":
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    elif content_type == "application/x-www-form-urlencoded":
        text = urlencode([(pair["key"], pair["value"]) for pair in value or []])
    else:
        text = str(value)
    return text.encode("utf-8")


def _authorization_headers(ctx: ExecutionContext, authorization: Any) -> list[tuple[str, str]]:
    if not isinstance(authorization, Mapping):
        return []
    kind = authorization["type"]

    def secret(field: str) -> str:
        ref = authorization[field]
        try:
            return ctx.secrets.get(ref["secret"], ref["key"])
        except SecretNotFoundError as error:
            raise ComponentError(f'node "{ctx.node_id}": authorization.{field}: {error}') from None

    if kind == "bearer":
        return [("Authorization", f"Bearer {secret('credential')}")]
    if kind == "basic_auth":
        pair = f"{authorization['username']}:{secret('password')}".encode()
        return [("Authorization", "Basic " + base64.b64encode(pair).decode("ascii"))]
    return [(authorization["headerName"], secret("value"))]


async def _send(request: _Request, timeout: float, limit: int) -> HttpResponsePayload:
    """One attempt; a request that got no response becomes a payload with ``error``, not an exception."""
    shown = request.shown_url
    try:
        # The hook keeps its slot while the request is out: the engine's hook slots bound how many
        # requests (and their buffers) a wide fan-out has in flight.
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(timeout=timeout, follow_redirects=True, verify=_tls_context()) as client,
            client.stream(
                request.method, request.url, headers=request.headers, content=request.content
            ) as response,
        ):
            raw, truncated = await _read_bounded(response, limit)
    except TimeoutError:
        return HttpResponsePayload(
            url=shown, error=f"{request.method} {shown}: request timed out after {timeout:g} s"
        )
    except httpx.HTTPError as error:
        reason = str(error) or type(error).__name__
        return HttpResponsePayload(url=shown, error=f"{request.method} {shown}: {reason}")
    return HttpResponsePayload(
        url=shown,
        status=response.status_code,
        headers=_go_headers(response.headers),
        body=_decode_body(raw, truncated, response.encoding, shown),
        truncated=truncated,
    )


async def _read_bounded(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body, and whether there was more (never more held in memory)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True
    return b"".join(chunks), False


def _decode_body(raw: bytes, truncated: bool, encoding: str | None, source: str) -> Any:
    if not raw:
        return None
    if not truncated:
        try:
            # Bounded like every document: a body nested too deeply stays text.
            return documents.parse_json(raw.decode(json.detect_encoding(raw)), source=source)
        except (UnicodeDecodeError, documents.DocumentError):
            pass
    return raw.decode(encoding or "utf-8", errors="replace")


def _go_headers(headers: httpx.Headers) -> dict[str, list[str]]:
    """Response headers as SuperPlane shows them: canonical names, every value of each."""
    result: dict[str, list[str]] = {}
    for name, value in headers.multi_items():
        result.setdefault(_canonical_header(name), []).append(value)
    return result


def _canonical_header(name: str) -> str:
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _is_success(status: int, codes: str) -> bool:
    text = str(status)
    for code in (part.strip() for part in codes.split(",")):
        if code.endswith("x"):
            if text.startswith(code.rstrip("x")) and len(code) == len(text):
                return True
        elif code == text:
            return True
    return False


def _outcome(payload: HttpResponsePayload) -> str:
    return payload.failure_summary() or "request failed"


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context (with the CA bundle loaded) for every request of the process.

    Building it costs most of a megabyte and tens of milliseconds; one per request made a wide
    fan-out of ``http`` nodes grow by that much per node in flight.
    """
    return httpx.create_ssl_context()


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
