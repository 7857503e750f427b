"""The trigger host behind ``daytonaflow up``, in process: a schedule fired by a FAKE clock starts a
run with SuperPlane's tick, and a full queue answers 429 instead of growing without bound."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from daytonaflow import _up
from daytonaflow._up import TriggerHost
from daytonaflow.runner import Engine, RunStore, parse_canvas
from daytonaflow.secrets import EnvSecretsProvider

KEY = "hook-key-1234"
HOOK = {"id": "push", "component": "webhook", "configuration": {"secret": {"secret": "hook", "key": "KEY"}}}


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def canvas(trigger: dict[str, Any], action: dict[str, Any] | None = None) -> Any:
    step = action or {"id": "done", "component": "noop"}
    return parse_canvas(
        {
            "metadata": {"name": "host"},
            "spec": {
                "nodes": [{"type": "TYPE_TRIGGER", **trigger}, step],
                "edges": [{"sourceId": trigger["id"], "targetId": step["id"]}],
            },
        }
    )


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    with RunStore(tmp_path / "runs.db") as store:
        secrets = {"DAYTONAFLOW_SECRET_HOOK_KEY": KEY, "DAYTONAFLOW_SECRET_EMPTY_KEY": ""}
        engine = Engine(store, secrets=EnvSecretsProvider(secrets))
        yield engine
        await engine.aclose()


async def test_a_schedule_due_on_the_fake_clock_starts_a_run_with_its_tick(engine: Engine) -> None:
    clock = FakeClock(datetime(2026, 6, 1, 8, 59, 30, tzinfo=UTC))
    daily = {"type": "days", "daysInterval": 1, "hour": 9, "minute": 0, "timezone": "Europe/Paris"}
    host = TriggerHost(
        engine,
        [canvas({"id": "daily", "component": "schedule", "configuration": daily})],
        max_concurrent=1,
        now=clock,
    )
    (armed,) = host.arm()
    assert armed.next_fire == datetime(2026, 6, 2, 7, 0, tzinfo=UTC)  # 09:00 in Paris, summer time
    assert host.fire_due_schedules() == []
    clock.now = datetime(2026, 6, 2, 7, 0, 1, tzinfo=UTC)
    assert len(host.fire_due_schedules()) == 1
    (run_id,) = await host.queue.pump()
    record = await engine.wait(run_id)
    assert record.status == "succeeded"
    (tick,) = [event.event for event in engine.store.events(run_id) if event.node_id == "daily"]
    assert tick == {
        "type": "scheduler.tick",
        "data": {
            "calendar": {
                "year": "2026",
                "month": "June",
                "day": "2",
                "hour": "09",
                "minute": "00",
                "second": "00",
                "week_day": "Tuesday",
            },
            "timezone": "Europe/Paris (UTC+02:00)",
        },
        "timestamp": "2026-06-02T07:00:00Z",
    }
    await host.queue.aclose()


async def test_a_full_queue_answers_429_and_records_nothing_more(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_up, "MAX_QUEUED_EVENTS", 1)
    hook = {
        "id": "push",
        "component": "webhook",
        "configuration": {"secret": {"secret": "hook", "key": "KEY"}},
    }
    slow = {"id": "pause", "component": "wait", "configuration": {"waitFor": 30}}
    host = TriggerHost(engine, [canvas(hook, slow)], max_concurrent=1)
    host.arm()
    transport = httpx.ASGITransport(app=host.app())
    statuses = []
    async with httpx.AsyncClient(transport=transport, base_url="http://up") as client:
        for n in range(3):
            body = json.dumps({"n": n}).encode()
            signature = hmac.new(KEY.encode(), body, hashlib.sha256).hexdigest()
            reply = await client.post(
                "/webhooks/host/push", content=body, headers={"X-Signature-256": signature}
            )
            statuses.append(reply.status_code)
            await asyncio.sleep(0.05)  # the first event's run takes the only slot
    assert statuses == [202, 202, 429]
    assert [event.status for event in engine.store.trigger_events("host")] == ["started", "queued"]
    await host.queue.aclose()


async def test_two_canvases_of_one_name_are_refused(engine: Engine) -> None:
    hook = {"id": "push", "component": "webhook", "configuration": {"authentication": "none"}}
    with pytest.raises(_up.UpError, match="more than one canvas is named host"):
        TriggerHost(engine, [canvas(hook), canvas(hook)], max_concurrent=1)


def test_the_clock_is_never_read_when_one_is_given(engine: Engine) -> None:
    clock = FakeClock(datetime(2030, 1, 1, tzinfo=UTC))
    minutes = {"type": "minutes", "minutesInterval": 10}
    host = TriggerHost(
        engine,
        [canvas({"id": "m", "component": "schedule", "configuration": minutes})],
        max_concurrent=1,
        now=clock,
    )
    (armed,) = host.arm()
    assert armed.next_fire == clock.now + timedelta(minutes=10)


async def test_a_secret_the_providers_do_not_hold_answers_a_generic_500_and_logs_its_name(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    hook = {
        "id": "push",
        "component": "webhook",
        "configuration": {"secret": {"secret": "other", "key": "KEY"}},
    }
    host = TriggerHost(engine, [canvas(hook)], max_concurrent=1)
    host.arm()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=host.app()), base_url="http://up"
    ) as client:
        reply = await client.post("/webhooks/host/push", content=b"{}", headers={"X-Signature-256": "00"})
    assert (reply.status_code, reply.json()) == (
        500,
        {"message": "the webhook cannot check requests now; see the `daytonaflow up` log"},
    )
    # The unauthenticated caller learns nothing of the setup; the operator's log names it.
    assert "'other' key 'KEY' is not usable" in caplog.text
    assert engine.store.trigger_events("host") == []


def signed_headers(body: bytes, key: str = KEY, **more: str) -> dict[str, str]:
    return {"X-Signature-256": hmac.new(key.encode(), body, hashlib.sha256).hexdigest(), **more}


def client(host: TriggerHost, address: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=host.app(), client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://up")


async def asgi_post(
    host: TriggerHost, headers: dict[str, str], receive: Any, path: str = "/webhooks/host/push"
) -> list[dict[str, Any]]:
    """One POST straight through the ASGI app, its body from ``receive``; returns what was sent."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8787),
    }
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await host.app()(scope, receive, send)
    return sent


async def test_a_secret_shorter_than_8_characters_answers_500_and_an_empty_key_forges_nothing(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    hook = {**HOOK, "configuration": {"secret": {"secret": "empty", "key": "KEY"}}}
    host = TriggerHost(engine, [canvas(hook)], max_concurrent=1)
    host.arm()
    async with client(host) as http:
        reply = await http.post("/webhooks/host/push", content=b"{}", headers=signed_headers(b"{}", ""))
    assert (reply.status_code, reply.json()) == (
        500,
        {"message": "the webhook cannot check requests now; see the `daytonaflow up` log"},
    )
    assert "is not usable: its value is shorter than 8 characters" in caplog.text
    assert engine.store.trigger_events("host") == []


async def test_a_replayed_delivery_answers_200_duplicate_and_starts_nothing(engine: Engine) -> None:
    host = TriggerHost(engine, [canvas(HOOK)], max_concurrent=1)
    host.arm()
    body = b'{"ref": "main"}'
    async with client(host) as http:
        headers = signed_headers(body, **{"X-GitHub-Delivery": "72d3162e"})
        first = await http.post("/webhooks/host/push", content=body, headers=headers)
        replay = await http.post("/webhooks/host/push", content=body, headers=headers)
        other = await http.post(
            "/webhooks/host/push", content=body, headers=signed_headers(body, **{"X-GitHub-Delivery": "9f1e"})
        )
    assert first.status_code == 202
    assert (replay.status_code, replay.json()) == (
        200,
        {"eventId": first.json()["eventId"], "status": "duplicate"},
    )
    assert other.status_code == 202
    assert len(engine.store.trigger_events("host")) == 2
    await host.queue.aclose()


async def test_a_wrong_token_is_refused_before_the_body_is_read(engine: Engine) -> None:
    hook = {**HOOK, "configuration": {**HOOK["configuration"], "authentication": "bearer"}}
    host = TriggerHost(engine, [canvas(hook)], max_concurrent=1)
    host.arm()
    reads = []

    async def receive() -> dict[str, Any]:
        reads.append(1)
        return {"type": "http.request", "body": b"{}", "more_body": False}

    sent = await asgi_post(host, {"Authorization": "Bearer guess"}, receive)
    assert sent[0]["status"] == 401
    assert reads == []


async def test_a_body_not_sent_within_the_deadline_gets_408(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_up, "BODY_DEADLINE", 0.2)
    host = TriggerHost(engine, [canvas(HOOK)], max_concurrent=1)
    host.arm()
    chunks = iter([{"type": "http.request", "body": b'{"ref":', "more_body": True}])

    async def receive() -> dict[str, Any]:
        for message in chunks:
            return message
        await asyncio.sleep(3600)  # the rest never comes
        raise AssertionError("unreachable")

    sent = await asyncio.wait_for(asgi_post(host, signed_headers(b"{}"), receive), timeout=10)
    assert sent[0]["status"] == 408
    assert engine.store.trigger_events("host") == []


async def test_a_sender_that_leaves_mid_body_is_dropped_quietly(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    host = TriggerHost(engine, [canvas(HOOK)], max_concurrent=1)
    host.arm()

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    await asgi_post(host, signed_headers(b"{}"), receive)
    assert [record for record in caplog.records if record.levelname == "ERROR"] == []
    assert engine.store.trigger_events("host") == []


async def test_the_trigger_list_answers_loopback_clients_only(engine: Engine) -> None:
    host = TriggerHost(engine, [canvas(HOOK)], max_concurrent=1)
    host.arm()
    async with client(host, "203.0.113.7") as remote, client(host, "127.0.0.1") as local:
        assert (await remote.get("/triggers")).status_code == 404
        listed = await local.get("/triggers")
    assert [trigger["nodeId"] for trigger in listed.json()["triggers"]] == ["push"]


def test_a_webhook_without_authentication_on_a_public_address_is_warned_of(engine: Engine) -> None:
    open_hook = {"id": "push", "component": "webhook", "configuration": {"authentication": "none"}}
    host = TriggerHost(engine, [canvas(open_hook)], max_concurrent=1)
    (warning,) = host.exposure_warnings("0.0.0.0")
    assert "webhook push has authentication none and listens on 0.0.0.0" in warning
    assert host.exposure_warnings("127.0.0.1") == []
    assert TriggerHost(engine, [canvas(HOOK)], max_concurrent=1).exposure_warnings("0.0.0.0") == []


async def test_a_schedule_that_keeps_failing_backs_off_and_logs_rarely(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    minutes = {"type": "minutes", "minutesInterval": 1}
    host = TriggerHost(
        engine, [canvas({"id": "m", "component": "schedule", "configuration": minutes})], max_concurrent=1
    )
    host.arm()
    host.now = lambda: datetime.now(UTC) + timedelta(hours=1)  # always due
    calls = []

    def full_disk(*_: Any, **__: Any) -> None:
        calls.append(1)
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(host.book, "fire_due", full_disk)
    loop = asyncio.create_task(host.run_schedules())
    await asyncio.sleep(1.5)
    # Not a busy spin (tens of thousands of passes a second), and not dead on a foreign error.
    assert not loop.done()
    assert 1 <= len(calls) <= 3
    assert caplog.text.count("database or disk is full") == 1
    loop.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loop
    await host.queue.aclose()


async def test_shutdown_clears_the_armed_triggers_and_the_lock_even_when_the_schedule_loop_died(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = TriggerHost(engine, [canvas(HOOK)], max_concurrent=1)
    limits = []

    async def broken_loop() -> None:
        raise RuntimeError("a bug in the schedule loop")

    async def serve_briefly(server: Any, sockets: Any) -> None:
        limits.append(server.config.limit_concurrency)
        assert [row.node_id for row in engine.store.armed_triggers("host")] == ["push"]
        await asyncio.sleep(0.05)  # the schedule loop runs, and dies

    monkeypatch.setattr(host, "run_schedules", broken_loop)
    monkeypatch.setattr(_up._Server, "serve", serve_briefly)
    with pytest.raises(RuntimeError, match="a bug in the schedule loop"):
        await host.serve(host="127.0.0.1", port=0)
    assert engine.store.armed_triggers("host") == []
    assert host.queue._closed
    _up._lock_database(engine.store.path).close()  # free again
    # Connections beyond the bound wait for no buffer: uvicorn answers 503 at once.
    assert limits == [_up.MAX_CONNECTIONS]


def test_a_second_up_on_one_database_is_refused_while_the_first_holds_it(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    first = _up._lock_database(db)
    with pytest.raises(_up.UpError, match=r"another `daytonaflow up` \(pid \d+\) keeps this run database"):
        _up._lock_database(db)
    first.close()
    _up._lock_database(db).close()


async def test_a_busy_run_database_answers_503_soon_and_never_blocks_the_event_loop(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_up, "INTAKE_BUSY_TIMEOUT", 0.3)
    host = TriggerHost(engine, [canvas(HOOK)], max_concurrent=1)
    host.arm()
    beats = 0

    async def heartbeat() -> None:
        nonlocal beats
        while True:
            beats += 1
            await asyncio.sleep(0.01)

    # Another process (a `daytonaflow run`) holds the write lock.
    other = sqlite3.connect(engine.store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    beating = asyncio.create_task(heartbeat())
    try:
        async with client(host) as http:
            started = asyncio.get_running_loop().time()
            reply = await http.post("/webhooks/host/push", content=b"{}", headers=signed_headers(b"{}"))
            waited = asyncio.get_running_loop().time() - started
    finally:
        beating.cancel()
        other.rollback()
        other.close()
    assert (reply.status_code, reply.headers["retry-after"]) == (503, "1")
    assert waited < 5
    # The loop went on serving meanwhile (a blocking call would have frozen the heartbeat).
    assert beats >= 10
    assert engine.store.trigger_events("host") == []
    await host.intake.aclose()
