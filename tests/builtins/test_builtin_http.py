"""The core ``http`` component: SuperPlane's fields, channels and payloads, against a loopback server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from builtin_support import DictSecrets, HookContext, LoopbackServer, Reply, loopback_server

from daytonaflow.builtins import HttpRequest
from daytonaflow.builtins.http import _RetryPlan
from daytonaflow.errors import ComponentError, ConfigError


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with loopback_server() as running:
        yield running


def context(config: dict[str, object], **kwargs: object) -> HookContext:
    return HookContext(HttpRequest, config, node_id="fetch", **kwargs)  # type: ignore[arg-type]


async def test_a_2xx_answer_emits_http_request_finished_on_success(server: LoopbackServer) -> None:
    server.replies = [Reply(200, b'{"message": "ok"}', (("Content-Type", "application/json"),))]
    ctx = context({"url": server.url + "/health"})
    await HttpRequest().execute(ctx)
    assert ctx.channel == "success"
    assert ctx.emitted is not None and ctx.emitted[1].event_type == "http.request.finished"
    assert ctx.data["status"] == 200
    assert ctx.data["body"] == {"message": "ok"}
    assert ctx.data["headers"]["Content-Type"] == ["application/json"]
    assert ctx.data["url"] == server.url + "/health"
    assert "error" not in ctx.data


async def test_a_status_outside_the_success_codes_emits_http_request_failed_on_failure(
    server: LoopbackServer,
) -> None:
    server.replies = [Reply(502, b"bad gateway")]
    ctx = context({"url": server.url})
    await HttpRequest().execute(ctx)
    assert ctx.channel == "failure"
    assert ctx.emitted is not None
    assert ctx.emitted[1].event_type == "http.request.failed"
    assert ctx.data["status"] == 502
    assert ctx.data["body"] == "bad gateway"
    assert ctx.emitted[1].failure_summary() == f"HTTP 502 from {server.url}"


def test_the_failure_channel_is_marked_as_a_failure() -> None:
    assert {channel.name: channel.failure for channel in HttpRequest.channels} == {
        "success": False,
        "failure": True,
    }


async def test_success_codes_accept_listed_codes_and_classes(server: LoopbackServer) -> None:
    server.replies = [Reply(404), Reply(302), Reply(200)]
    outcomes = []
    for _ in range(3):
        ctx = context({"url": server.url, "successCodes": "404, 3xx"})
        await HttpRequest().execute(ctx)
        outcomes.append(ctx.channel)
    assert outcomes == ["success", "success", "failure"]


async def test_a_request_slower_than_timeout_seconds_fails_saying_so(server: LoopbackServer) -> None:
    server.replies = [Reply(200, b"late", delay=10)]
    ctx = context({"url": server.url, "timeoutSeconds": 1})
    await HttpRequest().execute(ctx)
    assert ctx.channel == "failure"
    assert ctx.data["error"] == f"GET {server.url}: request timed out after 1 s"
    assert "status" not in ctx.data
    assert ctx.emitted is not None and ctx.emitted[1].failure_summary() == ctx.data["error"]


async def test_a_refused_connection_fails_on_failure_with_the_error() -> None:
    with loopback_server() as closed:
        url = closed.url
    ctx = context({"url": url})
    await HttpRequest().execute(ctx)
    assert ctx.channel == "failure"
    assert ctx.data["error"].startswith(f"GET {url}: ")


async def test_a_failed_attempt_with_retries_left_schedules_a_persisted_check_instead_of_sleeping(
    server: LoopbackServer,
) -> None:
    server.replies = [Reply(503), Reply(200, b"up")]
    ctx = context({"url": server.url, "retry": {"enabled": True, "maxAttempts": 2, "intervalSeconds": 5}})
    await HttpRequest().execute(ctx)
    assert ctx.emitted is None
    assert ctx.check_delay == 5
    assert ctx.metadata.get()["attempt"] == 1
    assert ctx.metadata.get()["lastStatus"] == 503
    ctx.reset()
    await HttpRequest().check(ctx)
    assert ctx.channel == "success"
    assert ctx.data["attempts"] == 2
    assert len(server.seen) == 2


async def test_retries_end_on_failure_once_max_attempts_retries_failed(server: LoopbackServer) -> None:
    server.replies = [Reply(500)]
    ctx = context({"url": server.url, "retry": {"enabled": True, "maxAttempts": 2, "intervalSeconds": 5}})
    await HttpRequest().execute(ctx)
    delays = []
    while ctx.emitted is None:
        assert ctx.check_delay is not None
        delays.append(ctx.check_delay)
        ctx.reset()
        await HttpRequest().check(ctx)
    assert ctx.channel == "failure"
    assert ctx.data["attempts"] == 3
    assert delays == [5, 5]
    assert len(server.seen) == 3


def test_the_exponential_strategy_doubles_the_wait_after_each_retry() -> None:
    plan = _RetryPlan.of(
        {
            "timeoutSeconds": 30,
            "retry": {"enabled": True, "strategy": "exponential", "maxAttempts": 4, "intervalSeconds": 15},
        }
    )
    assert [plan.delay_after(attempt) for attempt in (1, 2, 3, 4)] == [15, 30, 60, 120]
    assert {plan.attempt_timeout(attempt) for attempt in (1, 2, 3)} == {30}


def test_the_older_exponential_timeout_strategy_doubles_each_attempts_timeout_up_to_120_s() -> None:
    plan = _RetryPlan.of({"timeoutSeconds": 20, "timeoutStrategy": "exponential", "retries": 3})
    assert plan.retries == 3
    assert [plan.attempt_timeout(attempt) for attempt in (1, 2, 3, 4)] == [20, 40, 80, 120]
    assert [plan.delay_after(attempt) for attempt in (1, 2, 3)] == [1, 2, 4]
    fixed = _RetryPlan.of({"timeoutSeconds": 20, "timeoutStrategy": "fixed", "retries": 2})
    assert [fixed.attempt_timeout(1), fixed.attempt_timeout(3), fixed.delay_after(2)] == [20, 20, 1]


async def test_the_older_retries_field_retries_a_failed_request(server: LoopbackServer) -> None:
    server.replies = [Reply(500), Reply(204)]
    ctx = context({"url": server.url, "timeoutStrategy": "fixed", "retries": 1, "timeoutSeconds": 5})
    await HttpRequest().execute(ctx)
    assert ctx.check_delay == 1
    ctx.reset()
    await HttpRequest().check(ctx)
    assert ctx.channel == "success"


async def test_without_retries_a_failure_is_emitted_at_once(server: LoopbackServer) -> None:
    server.replies = [Reply(500)]
    ctx = context({"url": server.url, "retry": {"enabled": False, "maxAttempts": 3, "intervalSeconds": 5}})
    await HttpRequest().execute(ctx)
    assert ctx.channel == "failure"
    assert len(server.seen) == 1


async def test_a_json_body_query_params_and_headers_are_sent_as_superplane_sends_them(
    server: LoopbackServer,
) -> None:
    ctx = context(
        {
            "url": server.url + "/hook?x=1",
            "method": "POST",
            "queryParams": [{"key": "x", "value": "2"}, {"key": "y", "value": "a b"}],
            "headers": [{"name": "X-Trace", "value": "t1"}],
            "contentType": "application/json",
            "json": {"text": "héllo", "n": 1},
        }
    )
    await HttpRequest().execute(ctx)
    seen = server.seen[0]
    assert (seen.method, seen.path) == ("POST", "/hook?x=2&y=a+b")
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["X-Trace"] == "t1"
    assert json.loads(seen.body) == {"text": "héllo", "n": 1}


async def test_form_data_is_sent_url_encoded(server: LoopbackServer) -> None:
    ctx = context(
        {
            "url": server.url,
            "method": "PUT",
            "contentType": "application/x-www-form-urlencoded",
            "formData": [{"key": "user", "value": "a&b"}],
        }
    )
    await HttpRequest().execute(ctx)
    assert server.seen[0].body == b"user=a%26b"
    assert server.seen[0].headers["Content-Type"] == "application/x-www-form-urlencoded"


async def test_a_get_sends_no_body_even_with_a_content_type(server: LoopbackServer) -> None:
    ctx = context({"url": server.url, "method": "GET", "contentType": "text/plain", "text": "ignored"})
    await HttpRequest().execute(ctx)
    assert server.seen[0].body == b""
    assert "Content-Type" not in server.seen[0].headers


async def test_bearer_authorization_reads_its_token_from_the_secrets_provider(server: LoopbackServer) -> None:
    ctx = context(
        {
            "url": server.url,
            "authorization": {"type": "bearer", "credential": {"secret": "api", "key": "TOKEN"}},
        },
        secrets=DictSecrets({("api", "TOKEN"): "s3cret"}),
    )
    await HttpRequest().execute(ctx)
    assert server.seen[0].headers["Authorization"] == "Bearer s3cret"


async def test_basic_auth_and_custom_header_authorizations(server: LoopbackServer) -> None:
    secrets = DictSecrets({("db", "PASSWORD"): "pw", ("api", "KEY"): "k1"})
    basic = context(
        {
            "url": server.url,
            "authorization": {
                "type": "basic_auth",
                "username": "me",
                "password": {"secret": "db", "key": "PASSWORD"},
            },
        },
        secrets=secrets,
    )
    await HttpRequest().execute(basic)
    custom = context(
        {
            "url": server.url,
            "authorization": {
                "type": "custom_header",
                "headerName": "X-Api-Key",
                "value": {"secret": "api", "key": "KEY"},
            },
        },
        secrets=secrets,
    )
    await HttpRequest().execute(custom)
    assert server.seen[0].headers["Authorization"] == "Basic bWU6cHc="
    assert server.seen[1].headers["X-Api-Key"] == "k1"


async def test_a_body_longer_than_max_body_bytes_is_kept_truncated_as_text(server: LoopbackServer) -> None:
    server.replies = [Reply(200, b'{"a": "' + b"x" * 5000 + b'"}', (("Content-Type", "application/json"),))]
    ctx = context({"url": server.url, "maxBodyBytes": 100})
    await HttpRequest().execute(ctx)
    assert ctx.data["truncated"] is True
    assert ctx.data["body"] == ('{"a": "' + "x" * 5000)[:100]


async def test_a_localhost_subdomain_is_sent_to_the_loopback_address_with_its_host(
    server: LoopbackServer,
) -> None:
    port = server.url.rsplit(":", 1)[1]
    ctx = context({"url": f"http://3000-abc.preview.localhost:{port}/"})
    await HttpRequest().execute(ctx)
    assert ctx.channel == "success"
    assert server.seen[0].headers["Host"] == f"3000-abc.preview.localhost:{port}"


def test_config_errors_name_each_field() -> None:
    issues = HttpRequest.validate_config(
        {
            "url": "ftp://example.invalid",
            "method": "FETCH",
            "successCodes": "ok",
            "timeoutSeconds": 0,
            "retry": {"enabled": True, "intervalSeconds": 1, "maxAttempts": 31},
            "contentType": "text/plain",
        },
        allow_expressions=False,
    )
    assert {issue.field: issue.message for issue in issues} == {
        "url": "must be an http:// or https:// URL",
        "method": 'must be one of "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"',
        "successCodes": "must be comma-separated status codes or classes such as 200, 201, 2xx",
        "timeoutSeconds": "must be between 1 and 300",
        "retry.intervalSeconds": "must be between 5 and 300",
        "retry.maxAttempts": "must be between 1 and 30",
        "text": 'is required when contentType is "text/plain"',
    }


def test_the_earlier_field_names_are_refused_with_their_replacement() -> None:
    issues = HttpRequest.validate_config(
        {"url": "http://127.0.0.1/", "timeout": 5, "body": "x"}, allow_expressions=True
    )
    assert {issue.field: issue.message for issue in issues} == {
        "timeout": "is now timeoutSeconds (whole seconds, 1 to 300)",
        "body": "is now contentType plus text, json, xml or formData",
    }


def test_retry_and_the_older_timeout_strategy_cannot_be_combined() -> None:
    issues = HttpRequest.validate_config(
        {"url": "http://127.0.0.1/", "retry": {"enabled": True}, "timeoutStrategy": "fixed"},
        allow_expressions=False,
    )
    assert [str(issue) for issue in issues] == [
        "timeoutStrategy cannot be combined with retry.enabled: use one or the other"
    ]


def test_a_templated_url_is_checked_after_resolution() -> None:
    assert HttpRequest.validate_config({"url": '{{ $["Preview"].data.url }}'}, allow_expressions=True) == []


async def test_a_resolved_configuration_that_breaks_a_rule_fails_naming_the_node_and_field() -> None:
    ctx = context({"url": "not a url"})
    with pytest.raises(ConfigError, match='node "fetch": url must be an http:// or https:// URL'):
        await HttpRequest().execute(ctx)


async def test_a_missing_secret_fails_naming_the_node_and_field(server: LoopbackServer) -> None:
    ctx = context(
        {
            "url": server.url,
            "authorization": {"type": "bearer", "credential": {"secret": "api", "key": "TOKEN"}},
        }
    )
    with pytest.raises(ComponentError, match=r'node "fetch": authorization\.credential: secret "api"'):
        await HttpRequest().execute(ctx)
