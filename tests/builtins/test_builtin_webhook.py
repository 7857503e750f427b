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
