"""The ``webhook`` trigger (SuperPlane's "Webhook"): starts a run when its URL receives a request."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from daytonaflow.builtins._trigger import TriggerComponent
from daytonaflow.components import _fields
from daytonaflow.components._fields import Field, Option, When
from daytonaflow.events import Payload

#: SuperPlane's bound on a webhook request body (512 KiB); a larger one is refused with 413.
MAX_EVENT_SIZE = 512 * 1024
DEFAULT_SIGNATURE_HEADER = "X-Signature-256"
DEFAULT_HEADER_TOKEN_NAME = "X-Webhook-Token"
#: What a token header holds in the event instead of the token (SuperPlane's mask).
MASK = "********"
#: The authentication methods that check a secret.
SECRET_METHODS = ("signature", "bearer", "header_token")


class WebhookPayload(Payload):
    event_type: ClassVar[str] = "webhook"

    #: The request body, parsed as JSON.
    body: Any = None
    #: The request's headers, canonical names, each with its values (Go's ``http.Header`` shape).
    headers: dict[str, list[str]]


def _when(*methods: str) -> tuple[When, ...]:
    return (When("authentication", methods),)


FIELDS = (
    Field(
        "authentication",
        "select",
        "Authentication",
        "How a request proves it may start a run.",
        default="signature",
        options=(
            Option("signature", "Signature (HMAC)"),
            Option("bearer", "Bearer Token"),
            Option("header_token", "Header Token"),
            Option("none", "None (unsafe)"),
        ),
        expressions=False,
    ),
    Field(
        "signatureHeader",
        "string",
        "Header",
        "HTTP header that contains the HMAC signature.",
        default=DEFAULT_SIGNATURE_HEADER,
        placeholder=DEFAULT_SIGNATURE_HEADER,
        visible_when=_when("signature"),
        expressions=False,
    ),
    Field(
        "headerName",
        "string",
        "Header Name",
        "HTTP header that must contain the authentication token.",
        default=DEFAULT_HEADER_TOKEN_NAME,
        placeholder=DEFAULT_HEADER_TOKEN_NAME,
        visible_when=_when("header_token"),
        expressions=False,
    ),
    Field(
        "secret",
        "object",
        "Secret",
        "Which secret (and which of its keys) holds the signing key or the token; its value comes from"
        " the secrets providers when a request arrives and is never stored, logged or emitted.",
        fields=(
            Field(
                "secret", "string", "Secret", required=True, placeholder="webhook-secret", expressions=False
            ),
            Field("key", "string", "Key", required=True, placeholder="WEBHOOK_SECRET", expressions=False),
        ),
        visible_when=_when(*SECRET_METHODS),
        required_when=_when(*SECRET_METHODS),
        expressions=False,
    ),
)

_DOCS = """\
The Webhook trigger starts a run when an HTTP request reaches its URL. `daytonaflow up` serves
one URL per webhook node: `http://HOST:PORT/webhooks/<canvas>/<node-id>` (POST).

## Authentication
- **Signature (HMAC)** (`signature`, the default): the header `signatureHeader` (default
  `X-Signature-256`) holds the hex HMAC-SHA256 of the raw body under the secret, optionally
  prefixed `sha256=` (GitHub's form).
- **Bearer Token** (`bearer`): `Authorization: Bearer <secret>`.
- **Header Token** (`header_token`): the header `headerName` (default `X-Webhook-Token`) holds the secret.
- **None (unsafe)** (`none`): any request starts a run.

The secret is a reference, `secret: {secret: NAME, key: KEY}`, resolved through the secrets
providers (`DAYTONAFLOW_SECRET_<NAME>_<KEY>`, or the secrets file) when a request arrives: SuperPlane
generates a secret per webhook, here you choose it. A wrong or missing signature or token is refused
with `401` and starts nothing; the secret's value is never logged, stored or emitted (the token
header is masked as `********` in the event).

## Requests
- The body must be JSON (`400` otherwise) and at most 512 KiB (`413` beyond it).
- An accepted request is recorded in the run database before the `202` reply, so it is not lost
  if `up` stops: it starts exactly one run, now or when `up` runs again. The reply's `eventId`
  names the event.
- An unknown canvas or node answers `404`.

## Event data
Each request emits `webhook` on `default`:
- **body**: the parsed JSON body;
- **headers**: the request headers, `{"Name": ["value", ...]}`, a token header masked.
"""


class Webhook(TriggerComponent):
    name: ClassVar[str] = "webhook"
    label: ClassVar[str] = "Webhook"
    description: ClassVar[str] = "Start a new execution chain when a webhook is called"
    icon: ClassVar[str] = "webhook"
    color: ClassVar[str] = "black"
    payload_type: ClassVar[type[Payload]] = WebhookPayload
    fields: ClassVar[tuple[Field, ...]] = FIELDS
    docs: ClassVar[str] = _DOCS

    @classmethod
    def secret_reference(cls, config: Mapping[str, Any]) -> tuple[str, str] | None:
        """The (secret, key) holding the key or token, or None for ``none`` authentication."""
        settings = _fields.apply_defaults(cls.fields, config)
        if settings["authentication"] not in SECRET_METHODS:
            return None
        reference = settings["secret"]
        return str(reference["secret"]), str(reference["key"])

    @classmethod
    def refusal(
        cls, config: Mapping[str, Any], headers: Mapping[str, str], body: bytes, secret: str
    ) -> str | None:
        """Why the request may not start a run (a missing or wrong signature or token), or None.

        ``headers`` is looked up case-insensitively by the caller's mapping; comparisons take
        constant time. The reason never quotes the secret nor what the request sent.
        """
        settings = _fields.apply_defaults(cls.fields, config)
        method = settings["authentication"]
        if method == "signature":
            header = str(settings["signatureHeader"]).strip() or DEFAULT_SIGNATURE_HEADER
            signature = headers.get(header, "").strip().removeprefix("sha256=")
            if not signature:
                return f"missing signature header {header}"
            expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, signature.lower()):
                return "invalid signature"
        elif method == "bearer":
            given = headers.get("Authorization", "")
            if not given:
                return "missing Authorization header"
            if not hmac.compare_digest(given.encode(), f"Bearer {secret}".encode()):
                return "invalid Bearer token"
        elif method == "header_token":
            header = str(settings["headerName"]).strip() or DEFAULT_HEADER_TOKEN_NAME
            given = headers.get(header, "")
            if not given:
                return f"missing {header} header"
            if not hmac.compare_digest(given.encode(), secret.encode()):
                return "invalid header token"
        return None

    @classmethod
    def received(
        cls, config: Mapping[str, Any], body: Any, headers: Iterable[tuple[str, str]]
    ) -> WebhookPayload:
        """The event of an accepted request: its parsed body, and its headers with the token masked."""
        settings = _fields.apply_defaults(cls.fields, config)
        masked = set()
        if settings["authentication"] == "bearer":
            masked.add("authorization")
        elif settings["authentication"] == "header_token":
            masked.add(str(settings["headerName"]).strip().lower() or DEFAULT_HEADER_TOKEN_NAME.lower())
        collected: dict[str, list[str]] = {}
        for name, value in headers:
            shown = MASK if name.lower() in masked else value
            if name.lower() == "authorization" and name.lower() in masked:
                shown = f"Bearer {MASK}"
            collected.setdefault(_canonical(name), []).append(shown)
        return WebhookPayload(body=body, headers=collected)


def _canonical(name: str) -> str:
    """Go's canonical header name (``x-event`` → ``X-Event``), as SuperPlane's payload has them."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))
