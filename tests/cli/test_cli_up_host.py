"""The trigger host behind ``daytonaflow up``, in process: a schedule fired by a FAKE clock starts a
run with SuperPlane's tick, and a full queue answers 429 instead of growing without bound."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
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
        engine = Engine(store, secrets=EnvSecretsProvider({"DAYTONAFLOW_SECRET_HOOK_KEY": "k"}))
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
            signature = hmac.new(b"k", body, hashlib.sha256).hexdigest()
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


async def test_a_secret_the_providers_do_not_hold_answers_500_naming_it_and_starts_nothing(
    engine: Engine,
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
        {"message": 'the webhook\'s secret "other" key "KEY" is not available'},
    )
    assert engine.store.trigger_events("host") == []
