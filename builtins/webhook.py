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
#: A shorter secret is refused (500): an empty key makes every HMAC forgeable, a short one guessable.
MIN_SECRET_LENGTH = 8
#: Headers that carry credentials in any mode; masked in the event whatever the authentication.
CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie", "set-cookie")
#: Headers naming a delivery (GitHub's, generic ones): a second request with the same value
#: is a replay and starts nothing (see ``delivery_id``).
DELIVERY_HEADERS = ("X-GitHub-Delivery", "X-Delivery-Id", "X-Request-Id", "Idempotency-Key")
#: A delivery id longer than this is not one (and is not kept).
MAX_DELIVERY_ID = 200
_HEX = frozenset("0123456789abcdef")


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
        "deliveryHeader",
        "string",
        "Delivery ID Header",
        "HTTP header naming each delivery: a value seen before is a replay and starts nothing."
        " Empty: the first of X-GitHub-Delivery, X-Delivery-Id, X-Request-Id, Idempotency-Key.",
        placeholder="X-GitHub-Delivery",
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
with `401` and starts nothing; the secret's value is never logged, stored or emitted. A secret
shorter than 8 characters (an empty one would make any HMAC forgeable) is refused: every request
gets `500` and the `up` log says why. With `bearer` or `header_token` the token is checked before
the body is read.

## Requests
- The body must be JSON (`400` otherwise) and at most 512 KiB (`413` beyond it).
- An accepted request is recorded in the run database before the `202` reply, so it is not lost
  if `up` stops: it starts exactly one run, now or when `up` runs again. The reply's `eventId`
  names the event.
- An unknown canvas or node answers `404`.
- **Replays.** A request that names its delivery (in the header `deliveryHeader`, or else the
  first of `X-GitHub-Delivery`, `X-Delivery-Id`, `X-Request-Id`, `Idempotency-Key`) is accepted
  once: the same delivery id again, within the 7 days the run database keeps it, answers `200`
  with `{"eventId": <the first event>, "status": "duplicate"}` and starts nothing. Ask the sender
  to send one; a request without any is not deduplicated.
- A body not received within 10 seconds answers `408`; a request abandoned by its sender is dropped
  quietly. While another process holds the run database's write lock for over 2 seconds, a request
  answers `503` with `Retry-After: 1` and starts nothing.

## Event data
Each request emits `webhook` on `default`:
- **body**: the parsed JSON body;
- **headers**: the request headers, `{"Name": ["value", ...]}`, with every credential masked as
  `********` whatever the authentication: `Authorization` and `Proxy-Authorization` (keeping the
  scheme, `Bearer ********`), `Cookie`, `Set-Cookie`, the signature and token headers, and any value
  holding the secret.
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
            signature = signature.lower()
            # Only hex can match; anything else (non-ASCII too) is refused before comparing bytes.
            if not set(signature) <= _HEX:
                return "invalid signature"
            expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected.encode(), signature.encode()):
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
    def needs_body(cls, config: Mapping[str, Any]) -> bool:
        """Whether ``refusal`` reads the body: only a signature does, a token is checked before it."""
        return bool(_fields.apply_defaults(cls.fields, config)["authentication"] == "signature")

    @staticmethod
    def unusable_secret(secret: str) -> str | None:
        """Why the secret's value cannot authenticate requests (never quoting it), or None."""
        if len(secret) < MIN_SECRET_LENGTH:
            return f"its value is shorter than {MIN_SECRET_LENGTH} characters"
        return None

    @classmethod
    def delivery_id(cls, config: Mapping[str, Any], headers: Mapping[str, str]) -> str | None:
        """The request's delivery id, from ``deliveryHeader`` or else the first of
        ``DELIVERY_HEADERS`` it sends; None without one."""
        configured = str(_fields.apply_defaults(cls.fields, config).get("deliveryHeader") or "").strip()
        for header in (configured,) if configured else DELIVERY_HEADERS:
            value = headers.get(header, "").strip()
            if value and len(value) <= MAX_DELIVERY_ID:
                return value
        return None

    @classmethod
    def received(
        cls,
        config: Mapping[str, Any],
        body: Any,
        headers: Iterable[tuple[str, str]],
        secret: str | None = None,
    ) -> WebhookPayload:
        """The event of an accepted request: its parsed body, and its headers with every credential
        masked: the credential headers, the signature and token headers (whatever the mode: a
        signature kept with its body invites an offline guess of the key), and any value holding
        ``secret``."""
        settings = _fields.apply_defaults(cls.fields, config)
        masked = {
            *CREDENTIAL_HEADERS,
            DEFAULT_SIGNATURE_HEADER.lower(),
            DEFAULT_HEADER_TOKEN_NAME.lower(),
            str(settings["signatureHeader"]).strip().lower(),
            str(settings["headerName"]).strip().lower(),
        }
        collected: dict[str, list[str]] = {}
        for name, value in headers:
            shown = value
            if name.lower() in masked or (secret and secret in value):
                scheme, _, credentials = value.partition(" ")
                # Keep the scheme ("Bearer ********"): it says how the request authenticated.
                shown = f"{scheme} {MASK}" if credentials and scheme.isalpha() else MASK
            collected.setdefault(_canonical(name), []).append(shown)
        return WebhookPayload(body=body, headers=collected)


def _canonical(name: str) -> str:
    """Go's canonical header name (``x-event`` → ``X-Event``), as SuperPlane's payload has them."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))
