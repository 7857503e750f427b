"""The Daytona API client: auth, toolbox base caching, named errors, safe retries, idempotent create."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from comp_support import API_KEY, API_URL, SANDBOX_ID, TOOLBOX_URL, error_body, fixture

from daytonaflow.components import (
    DEFAULT_API_URL,
    IDEMPOTENCY_LABEL,
    DaytonaAuthError,
    DaytonaBadRequestError,
    DaytonaConflictError,
    DaytonaConnectionError,
    DaytonaIntegration,
    DaytonaNotFoundError,
    DaytonaRateLimitError,
    DaytonaServerError,
    RetryPolicy,
)


@pytest.fixture
def client(integration):
    return integration.client


async def test_every_request_carries_the_bearer_key(daytona, client):
    daytona.sandboxes[SANDBOX_ID] = fixture("sandbox")
    daytona.states[SANDBOX_ID] = ["started"]
    await client.get_sandbox(SANDBOX_ID)
    await client.execute(SANDBOX_ID, "true")
    assert all(call.request.headers["Authorization"] == f"Bearer {API_KEY}" for call in daytona.router.calls)


async def test_the_toolbox_base_comes_from_config_and_is_fetched_once(daytona, client):
    for _ in range(3):
        await client.execute(SANDBOX_ID, "true")
    assert daytona.router.routes["config"].call_count == 1
    assert all(
        str(call.request.url) == f"{TOOLBOX_URL}/{SANDBOX_ID}/process/execute"
        for call in daytona.router.routes["execute"].calls
    )


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, DaytonaBadRequestError),
        (401, DaytonaAuthError),
        (403, DaytonaAuthError),
        (404, DaytonaNotFoundError),
        (409, DaytonaConflictError),
    ],
)
async def test_non_2xx_answers_raise_a_named_error_with_status_and_message(
    daytona, client, status, error_class
):
    daytona.router.routes["get"].mock(
        return_value=httpx.Response(status, json=error_body(status, "nope", "Err"))
    )
    with pytest.raises(error_class) as failure:
        await client.get_sandbox(SANDBOX_ID)
    assert failure.value.status == status
    assert failure.value.message == "nope"
    assert f"GET /sandbox/{SANDBOX_ID} failed with {status}" in str(failure.value)
    assert daytona.router.routes["get"].call_count == 1  # client errors are never repeated


async def test_validation_messages_given_as_a_list_are_joined(daytona, client):
    body = {
        "statusCode": 400,
        "message": ["snapshot must be a string", "cpu must be positive"],
        "error": "Bad",
    }
    daytona.router.routes["create"].mock(return_value=httpx.Response(400, json=body))
    with pytest.raises(DaytonaBadRequestError, match="snapshot must be a string; cpu must be positive"):
        await client.create_sandbox({"snapshot": 1})


async def test_a_plain_text_error_body_becomes_the_message(daytona, client):
    daytona.router.routes["execute"].mock(return_value=httpx.Response(502, text="Bad Gateway from proxy"))
    with pytest.raises(DaytonaServerError, match="Bad Gateway from proxy"):
        await client.execute(SANDBOX_ID, "true")


async def test_reads_are_retried_on_5xx_with_growing_capped_delays(daytona, client, sleeps):
    daytona.sandboxes[SANDBOX_ID] = fixture("sandbox")
    daytona.states[SANDBOX_ID] = ["started"]
    failing = httpx.Response(503, json=error_body(503, "busy", "Service Unavailable"))
    route = daytona.router.routes["get"]
    original = route.side_effect
    answers = iter([failing, failing, failing])

    def flaky(request, sid):
        return next(answers, None) or original(request, sid)

    route.side_effect = flaky
    sandbox = await client.get_sandbox(SANDBOX_ID)
    assert sandbox.state == "started"
    assert route.call_count == 4
    assert sleeps.delays == [0.2, 0.4, 0.8]


async def test_backoff_is_capped(daytona):
    policy = RetryPolicy(base_delay=1.0, max_delay=3.0, jitter=lambda top: top)
    assert [policy.delay(attempt) for attempt in (1, 2, 3, 4, 5)] == [1.0, 2.0, 3.0, 3.0, 3.0]


async def test_jitter_never_exceeds_the_backoff_ceiling():
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    assert all(0 <= policy.delay(attempt) <= min(4.0, 0.5 * 2 ** (attempt - 1)) for attempt in range(1, 8))


async def test_exhausted_retries_raise_the_last_error(daytona, client, sleeps):
    daytona.router.routes["get"].mock(
        return_value=httpx.Response(500, json=error_body(500, "boom", "Internal"))
    )
    with pytest.raises(DaytonaServerError, match="boom"):
        await client.get_sandbox(SANDBOX_ID)
    assert daytona.router.routes["get"].call_count == 4


async def test_a_command_start_whose_5xx_hid_a_started_command_adopts_it(daytona, client):
    daytona.sessions["s"] = []
    route = daytona.router.routes["exec"]
    original = route.side_effect

    def start_then_fail(request, sid, session):
        original(request, sid, session)
        return httpx.Response(500, json=error_body(500, "boom", "Internal"))

    route.side_effect = start_then_fail
    command_id = await client.start_session_command(SANDBOX_ID, "s", "make deploy", index=0)
    assert route.call_count == 1
    assert [command.id for command in daytona.sessions["s"]] == [command_id]


async def test_a_command_start_that_failed_before_starting_is_started_once_more(daytona, client):
    daytona.sessions["s"] = []
    route = daytona.router.routes["exec"]
    original = route.side_effect
    answers = iter([httpx.Response(503, json=error_body(503, "busy", "Unavailable"))])
    route.side_effect = lambda request, sid, session: next(answers, None) or original(request, sid, session)
    command_id = await client.start_session_command(SANDBOX_ID, "s", "make deploy", index=0)
    assert route.call_count == 2
    assert [command.id for command in daytona.sessions["s"]] == [command_id]


async def test_a_429_is_retried_even_for_commands_honouring_retry_after(daytona, client, sleeps):
    daytona.sessions["s"] = []
    route = daytona.router.routes["exec"]
    original = route.side_effect
    limited = httpx.Response(
        429, json=error_body(429, "slow down", "Too Many"), headers={"Retry-After": "1.5"}
    )
    answers = iter([limited])
    route.side_effect = lambda request, sid, session: next(answers, None) or original(request, sid, session)
    assert await client.start_session_command(SANDBOX_ID, "s", "make deploy", index=0)
    assert route.call_count == 2
    assert sleeps.delays == [1.5]
    assert len(daytona.sessions["s"]) == 1


async def test_persistent_rate_limiting_raises_a_rate_limit_error(daytona, client):
    daytona.router.routes["get"].mock(
        return_value=httpx.Response(429, json=error_body(429, "slow", "Too Many"))
    )
    with pytest.raises(DaytonaRateLimitError):
        await client.get_sandbox(SANDBOX_ID)


async def test_connection_failures_are_retried_and_then_named(daytona, client, sleeps):
    daytona.router.routes["get"].mock(side_effect=httpx.ConnectError("connection refused"))
    with pytest.raises(DaytonaConnectionError, match="cannot reach Daytona"):
        await client.get_sandbox(SANDBOX_ID)
    assert daytona.router.routes["get"].call_count == 4


async def test_an_unreachable_daytona_is_named_by_its_url_never_its_key(daytona, client, sleeps):
    daytona.router.routes["get"].mock(side_effect=httpx.ConnectError("connection refused"))
    with pytest.raises(DaytonaConnectionError) as failure:
        await client.get_sandbox(SANDBOX_ID)
    assert f"cannot reach Daytona at {API_URL} for GET /sandbox/{SANDBOX_ID}" in str(failure.value)
    assert API_KEY not in str(failure.value)


async def test_a_message_that_already_leads_with_the_status_text_is_not_prefixed_again(daytona, client):
    body = error_body(401, "Unauthorized: invalid API key", "Unauthorized")
    daytona.router.routes["get"].mock(return_value=httpx.Response(401, json=body))
    with pytest.raises(DaytonaAuthError) as failure:
        await client.get_sandbox(SANDBOX_ID)
    assert str(failure.value).endswith("failed with 401: Unauthorized: invalid API key")


def test_credentials_in_an_api_url_are_left_out_of_errors() -> None:
    from daytonaflow.components.client import _shown_url

    assert _shown_url("https://user:s3cret@daytona.example:8443/api") == "https://daytona.example:8443/api"
    assert _shown_url("http://127.0.0.1:3986/api") == "http://127.0.0.1:3986/api"


async def test_a_lost_answer_to_a_command_start_adopts_the_command_instead_of_starting_it_twice(
    daytona, client
):
    daytona.sessions["s"] = []
    route = daytona.router.routes["exec"]
    original = route.side_effect

    def start_then_reset(request, sid, session):
        original(request, sid, session)
        raise httpx.ReadError("connection reset after the command started")

    route.side_effect = start_then_reset
    command_id = await client.start_session_command(SANDBOX_ID, "s", "make deploy", index=0)
    assert route.call_count == 1
    assert daytona.started == ["make deploy"]
    assert daytona.sessions["s"][0].id == command_id


async def test_the_idempotency_lookup_is_part_of_each_create_attempt_not_retried_on_its_own(
    daytona, client, sleeps
):
    daytona.router.routes["list"].mock(
        return_value=httpx.Response(503, json=error_body(503, "busy", "Unavailable"))
    )
    with pytest.raises(DaytonaServerError):
        await client.create_sandbox({}, idempotency_key="run-1/exec-1")
    # One policy: four attempts in all (each a lookup that failed), not four lookups per attempt.
    assert daytona.router.routes["list"].call_count == 4
    assert daytona.router.routes["create"].call_count == 0


async def test_sandbox_creation_after_a_lost_answer_returns_the_first_sandbox(daytona, client):
    route = daytona.router.routes["create"]
    original = route.side_effect
    attempts = []

    def lose_first_answer(request):
        response = original(request)
        attempts.append(response)
        if len(attempts) == 1:
            raise httpx.ReadError("connection reset after the sandbox was created")
        return response

    route.side_effect = lose_first_answer
    sandbox = await client.create_sandbox({"snapshot": "python"}, idempotency_key="run-1/exec-1")
    assert sandbox.id == SANDBOX_ID
    assert route.call_count == 1  # the retry found the sandbox by its label instead of creating another
    assert len(daytona.sandboxes) == 1
    [body] = daytona.create_bodies
    assert body["labels"] == {IDEMPOTENCY_LABEL: "run-1/exec-1"}


async def test_sandbox_creation_after_a_5xx_without_a_sandbox_creates_exactly_one(daytona, client):
    route = daytona.router.routes["create"]
    original = route.side_effect
    answers = iter([httpx.Response(503, json=error_body(503, "busy", "Unavailable"))])
    route.side_effect = lambda request: next(answers, None) or original(request)
    sandbox = await client.create_sandbox({}, idempotency_key="k")
    assert sandbox.id == SANDBOX_ID
    assert len(daytona.sandboxes) == 1


async def test_the_idempotency_lookup_sends_labels_as_json(daytona, client):
    await client.create_sandbox({}, idempotency_key="run-9/exec-3")
    lookup = daytona.router.routes["list"].calls[0].request
    assert lookup.url.params["labels"] == '{"daytonaflow.io/idempotency-key":"run-9/exec-3"}'


async def test_listing_follows_cursors_and_accepts_bare_lists(daytona, client):
    pages = iter(
        [
            httpx.Response(200, json={"items": [fixture("sandbox", id="a")], "nextCursor": "c2"}),
            httpx.Response(200, json={"items": [fixture("sandbox", id="b")], "nextCursor": None}),
            httpx.Response(200, json=[fixture("sandbox", id="c")]),
        ]
    )
    daytona.router.routes["list"].side_effect = lambda request: next(pages)
    assert [s.id for s in await client.list_sandboxes()] == ["a", "b"]
    assert daytona.router.routes["list"].calls[1].request.url.params["cursor"] == "c2"
    assert [s.id for s in await client.list_sandboxes()] == ["c"]


async def test_plain_text_command_logs_are_accepted(daytona, client):
    daytona.sessions["s"] = []
    command_id = await client.start_session_command(SANDBOX_ID, "s", "echo hi", index=0)
    daytona.router.routes["logs"].mock(return_value=httpx.Response(200, text="hi\n"))
    logs = await client.get_session_command_logs(SANDBOX_ID, "s", command_id)
    assert logs.output == "hi\n"


def test_integration_from_env_needs_a_key():
    assert DaytonaIntegration.from_env({}) is None


def test_integration_from_env_defaults_to_daytona_cloud():
    integration = DaytonaIntegration.from_env({"DAYTONA_API_KEY": "k"})
    assert integration is not None
    assert integration.api_url == DEFAULT_API_URL == "https://app.daytona.io/api"
    assert integration.target is None


def test_integration_from_env_reads_url_and_target():
    env = {"DAYTONA_API_KEY": "k", "DAYTONA_API_URL": f"{API_URL}/", "DAYTONA_TARGET": "eu"}
    integration = DaytonaIntegration.from_env(env)
    assert integration is not None
    assert (integration.api_url, integration.api_key, integration.target) == (API_URL, "k", "eu")


def test_the_integration_never_shows_its_key():
    assert API_KEY not in repr(DaytonaIntegration(API_URL, API_KEY))


async def test_a_server_ignoring_the_label_filter_never_hands_back_a_strangers_sandbox(daytona, client):
    stranger = fixture("sandbox", id="sandbox-someone-else", labels={"team": "other"})
    daytona.router.routes["list"].side_effect = lambda request: httpx.Response(
        200, json={"items": [stranger], "nextCursor": None}
    )
    sandbox = await client.create_sandbox({}, idempotency_key="run-1/exec-1")
    assert sandbox.id == SANDBOX_ID
    assert len(daytona.create_bodies) == 1


async def test_code_run_posts_code_language_and_timeout(daytona, client):
    route = daytona.router.post(f"{TOOLBOX_URL}/{SANDBOX_ID}/process/code-run").mock(
        return_value=httpx.Response(200, json={"exitCode": 0, "result": "Hello, World!\n"})
    )
    result = await client.code_run(SANDBOX_ID, 'print("Hello, World!")', "python", timeout_seconds=5)
    assert (result.exit_code, result.result) == (0, "Hello, World!\n")
    assert json.loads(route.calls[0].request.content) == {
        "code": 'print("Hello, World!")',
        "language": "python",
        "timeout": 5,
    }


async def test_git_clone_sends_the_spec_fields(daytona, client):
    await client.git_clone(
        SANDBOX_ID, "https://github.com/o/r.git", "/home/daytona/r", branch="main", username="u", password="p"
    )
    assert daytona.clones == [
        {
            "url": "https://github.com/o/r.git",
            "path": "/home/daytona/r",
            "branch": "main",
            "username": "u",
            "password": "p",
        }
    ]


async def test_files_are_uploaded_as_multipart_to_the_given_path(daytona, client):
    await client.upload_file(SANDBOX_ID, "/home/daytona/a b.txt", b"\x00binary\xff")
    assert daytona.files["/home/daytona/a b.txt"] == b"\x00binary\xff"


def test_the_integration_gives_each_event_loop_its_own_client():
    integration = DaytonaIntegration(API_URL, API_KEY)

    async def client_id() -> int:
        return id(integration.client)

    async def same_loop_twice() -> bool:
        return integration.client is integration.client

    first = asyncio.run(client_id())
    second = asyncio.run(client_id())
    assert first != second
    assert asyncio.run(same_loop_twice())


def test_httpcore_finds_sniffio_so_a_request_never_searches_for_a_missing_module():
    # httpcore asks sniffio which event loop runs on every request and falls back only on an
    # ImportError: without the package each request walks sys.path (about half a loopback call).
    import importlib.util

    assert importlib.util.find_spec("sniffio") is not None
