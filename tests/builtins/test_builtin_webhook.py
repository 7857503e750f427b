"""The webhook trigger: how a request proves itself (HMAC signature, bearer or header token), the
event it becomes (SuperPlane's ``{body, headers}``, a token masked), and its load-time checks."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from daytonaflow.builtins import Webhook
from daytonaflow.runner import CanvasError, ComponentRegistry, check_canvas, parse_canvas

SECRET = "s3cret-key"
BODY = b'{"ref": "main"}'
REFERENCE = {"secret": {"secret": "hook", "key": "KEY"}}


def signed(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_a_body_signed_with_the_secret_is_accepted_with_or_without_the_sha256_prefix() -> None:
    assert Webhook.refusal(REFERENCE, {"X-Signature-256": signed(BODY)}, BODY, SECRET) is None
    assert Webhook.refusal(REFERENCE, {"X-Signature-256": "sha256=" + signed(BODY)}, BODY, SECRET) is None


def test_a_signature_under_another_secret_is_refused() -> None:
    headers = {"X-Signature-256": signed(BODY, "not-the-secret")}
    assert Webhook.refusal(REFERENCE, headers, BODY, SECRET) == "invalid signature"


def test_a_signature_of_another_body_is_refused() -> None:
    headers = {"X-Signature-256": signed(b'{"ref": "evil"}')}
    assert Webhook.refusal(REFERENCE, headers, BODY, SECRET) == "invalid signature"


def test_a_missing_signature_is_refused_naming_the_header() -> None:
    config = {**REFERENCE, "signatureHeader": "X-Hub-Signature-256"}
    assert Webhook.refusal(config, {"X-Signature-256": signed(BODY)}, BODY, SECRET) == (
        "missing signature header X-Hub-Signature-256"
    )


def test_a_bearer_token_must_match_the_secret() -> None:
    config = {**REFERENCE, "authentication": "bearer"}
    assert Webhook.refusal(config, {"Authorization": f"Bearer {SECRET}"}, BODY, SECRET) is None
    assert Webhook.refusal(config, {"Authorization": "Bearer guess"}, BODY, SECRET) == "invalid Bearer token"
    assert Webhook.refusal(config, {}, BODY, SECRET) == "missing Authorization header"


def test_a_header_token_must_match_the_secret_in_its_header() -> None:
    config = {**REFERENCE, "authentication": "header_token", "headerName": "X-Token"}
    assert Webhook.refusal(config, {"X-Token": SECRET}, BODY, SECRET) is None
    assert Webhook.refusal(config, {"X-Token": "guess"}, BODY, SECRET) == "invalid header token"
    assert Webhook.refusal(config, {"X-Webhook-Token": SECRET}, BODY, SECRET) == "missing X-Token header"


def test_no_authentication_accepts_any_request_and_needs_no_secret() -> None:
    config = {"authentication": "none"}
    assert Webhook.secret_reference(config) is None
    assert Webhook.refusal(config, {}, BODY, "") is None


def test_the_event_is_the_parsed_body_and_the_canonical_headers() -> None:
    payload = Webhook.received(
        REFERENCE, {"ref": "main"}, [("x-event", "push"), ("content-type", "application/json")]
    )
    assert payload.model_dump(mode="json") == {
        "body": {"ref": "main"},
        "headers": {"X-Event": ["push"], "Content-Type": ["application/json"]},
    }


def test_a_token_never_reaches_the_event() -> None:
    bearer = Webhook.received(
        {**REFERENCE, "authentication": "bearer"}, {}, [("authorization", f"Bearer {SECRET}")]
    )
    assert bearer.headers == {"Authorization": ["Bearer ********"]}
    header = Webhook.received(
        {**REFERENCE, "authentication": "header_token"},
        {},
        [("X-Webhook-Token", SECRET), ("X-Other", "kept")],
    )
    assert header.headers == {"X-Webhook-Token": ["********"], "X-Other": ["kept"]}
    assert SECRET not in bearer.model_dump_json() + header.model_dump_json()


@pytest.mark.parametrize("authentication", ["signature", "bearer", "header_token", "none"])
def test_credential_headers_are_masked_whatever_the_authentication(authentication: str) -> None:
    payload = Webhook.received(
        {**REFERENCE, "authentication": authentication},
        {},
        [
            ("authorization", "Bearer upstream-token"),
            ("proxy-authorization", "Basic dXNlcjpwYXNz"),
            ("cookie", "session=abc"),
            ("set-cookie", "session=abc"),
            ("x-signature-256", "sha256=" + signed(BODY)),
            ("x-webhook-token", "some-token"),
            ("x-event", "push"),
        ],
        SECRET,
    )
    assert payload.headers == {
        "Authorization": ["Bearer ********"],
        "Proxy-Authorization": ["Basic ********"],
        "Cookie": ["********"],
        "Set-Cookie": ["********"],
        "X-Signature-256": ["********"],
        "X-Webhook-Token": ["********"],
        "X-Event": ["push"],
    }


def test_the_configured_signature_header_is_masked() -> None:
    config = {**REFERENCE, "signatureHeader": "X-Hub-Signature-256"}
    payload = Webhook.received(config, {}, [("X-Hub-Signature-256", "sha256=" + signed(BODY))], SECRET)
    assert payload.headers == {"X-Hub-Signature-256": ["********"]}


def test_any_header_holding_the_secret_is_masked() -> None:
    payload = Webhook.received(
        {"authentication": "none"}, {}, [("X-Echo", f"key={SECRET}"), ("X-Other", "kept")], SECRET
    )
    assert payload.headers == {"X-Echo": ["********"], "X-Other": ["kept"]}


def test_a_non_ascii_signature_is_refused_as_invalid_not_raised() -> None:
    assert Webhook.refusal(REFERENCE, {"X-Signature-256": "sha256=é" * 8}, BODY, SECRET) == (
        "invalid signature"
    )


@pytest.mark.parametrize("secret", ["", "short"])
def test_an_empty_or_short_secret_is_unusable(secret: str) -> None:
    assert Webhook.unusable_secret(secret) == "its value is shorter than 8 characters"
    assert Webhook.unusable_secret(SECRET) is None


def test_the_delivery_id_is_the_first_delivery_header_sent() -> None:
    assert Webhook.delivery_id(REFERENCE, {"X-GitHub-Delivery": "d-1", "X-Request-Id": "r-1"}) == "d-1"
    assert Webhook.delivery_id(REFERENCE, {"X-Request-Id": " r-1 "}) == "r-1"
    assert Webhook.delivery_id(REFERENCE, {"X-Request-Id": "x" * 201}) is None
    assert Webhook.delivery_id(REFERENCE, {}) is None


def test_a_configured_delivery_header_is_the_only_one_read() -> None:
    config = {**REFERENCE, "deliveryHeader": "X-Stripe-Event-Id"}
    assert Webhook.delivery_id(config, {"X-Stripe-Event-Id": "evt_1", "X-Request-Id": "r-1"}) == "evt_1"
    assert Webhook.delivery_id(config, {"X-Request-Id": "r-1"}) is None


def _problems(configuration: dict[str, Any]) -> list[tuple[str, str, str]]:
    canvas = parse_canvas(
        {
            "metadata": {"name": "hooked"},
            "spec": {
                "nodes": [
                    {
                        "id": "push",
                        "type": "TYPE_TRIGGER",
                        "component": "webhook",
                        "configuration": configuration,
                    },
                    {"id": "done", "component": "noop"},
                ],
                "edges": [{"sourceId": "push", "targetId": "done"}],
            },
        }
    )
    with pytest.raises(CanvasError) as caught:
        check_canvas(canvas, ComponentRegistry.discover(), source="hooked.yaml")
    assert str(caught.value).startswith("hooked.yaml")
    return [(issue.node, issue.field, issue.message) for issue in caught.value.issues]


def test_signature_authentication_without_its_secret_is_refused_at_load() -> None:
    assert _problems({"authentication": "signature"}) == [
        (
            "push",
            "configuration.secret",
            'is required when authentication is one of "signature", "bearer", "header_token"',
        )
    ]


def test_an_unknown_authentication_method_is_refused_at_load() -> None:
    ((node, field, message),) = _problems({"authentication": "basic", **REFERENCE})
    assert (node, field) == ("push", "configuration.authentication")
    assert "signature" in message


def test_a_webhook_used_as_an_action_is_refused() -> None:
    canvas = parse_canvas(
        {
            "metadata": {"name": "hooked"},
            "spec": {
                "nodes": [
                    {"id": "start", "type": "TYPE_TRIGGER", "component": "start"},
                    {"id": "push", "component": "webhook", "configuration": REFERENCE},
                ],
                "edges": [{"sourceId": "start", "targetId": "push"}],
            },
        }
    )
    with pytest.raises(CanvasError) as caught:
        check_canvas(canvas, ComponentRegistry.discover())
    assert [(i.node, i.field, i.message) for i in caught.value.issues] == [
        ("push", "type", '"webhook" is a trigger: set type TYPE_TRIGGER')
    ]
