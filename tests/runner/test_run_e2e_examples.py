"""End to end: the example canvases on the embedded local server with the real components."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from git_repository import make_repository
from run_support import live_sandboxes, sandbox_resources

from daytonaflow.runner import Engine, RunStore, RunUpdate, load_canvas, parse_canvas

pytestmark = pytest.mark.sandbox
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def event_data(store: RunStore, run_id: str, node_id: str) -> dict[str, Any]:
    (event,) = [e for e in store.events(run_id) if e.node_id == node_id]
    data: dict[str, Any] = event.event["data"]
    return data


async def test_hello_runs_python_in_a_sandbox_and_deletes_it(
    real_engine: Engine, store: RunStore, integration: Any
) -> None:
    record = await real_engine.run(load_canvas(EXAMPLES / "hello.yaml"), {"name": "Ada"})
    assert record.status == "succeeded", record.error
    hello = event_data(store, record.id, "say-hello")
    assert hello["exitCode"] == 0
    assert hello["result"].startswith("Hello, Ada! Python 3")
    deleted = event_data(store, record.id, "delete-sandbox")
    assert deleted == {"deleted": True, "id": event_data(store, record.id, "create-sandbox")["id"]}
    assert [r.state for r in sandbox_resources(store, record.id)] == ["released"]
    assert await live_sandboxes(integration) == []


async def test_preview_serves_a_page_through_its_preview_url(
    real_engine: Engine, store: RunStore, integration: Any
) -> None:
    record = await real_engine.run(load_canvas(EXAMPLES / "preview.yaml"))
    assert record.status == "succeeded", record.error
    sandbox_id = event_data(store, record.id, "create-sandbox")["id"]
    page = event_data(store, record.id, "fetch-page")
    assert page["status"] == 200
    assert page["body"].strip() == f"Hello from sandbox {sandbox_id}"
    assert await live_sandboxes(integration) == []


@pytest.mark.parametrize("passing", [True, False], ids=["tests-pass", "tests-fail"])
async def test_repository_runs_its_tests_and_takes_the_matching_branch(
    real_engine: Engine, store: RunStore, integration: Any, tmp_path: Path, passing: bool
) -> None:
    url = make_repository(tmp_path, passing=passing)
    record = await real_engine.run(load_canvas(EXAMPLES / "repository.yaml"), {"repository": url})
    assert record.status == "succeeded", record.error
    ran = [e.node_id for e in store.executions(record.id)]
    branch = "passed" if passing else "failed"
    assert ran == [
        "start",
        "checkout",
        "run-tests",
        f"tests-{branch}",
        f"cleanup-after-{'success' if passing else 'failure'}",
    ]
    tests = event_data(store, record.id, "run-tests")
    assert (tests["exitCode"] == 0) is passing
    assert await live_sandboxes(integration) == []


async def test_a_node_error_mid_run_still_deletes_the_sandbox(
    real_engine: Engine, store: RunStore, integration: Any
) -> None:
    document = load_canvas(EXAMPLES / "hello.yaml").to_document()
    # Fail after the sandbox exists: the code exits 3 (failed channel), then a request to a closed port.
    document["spec"]["nodes"][2]["configuration"]["code"] = "raise SystemExit(3)"
    document["spec"]["edges"].append({"sourceId": "say-hello", "targetId": "fetch", "channel": "failed"})
    document["spec"]["nodes"].append(
        {
            "id": "fetch",
            "type": "TYPE_ACTION",
            "component": "http",
            "configuration": {"url": "http://127.0.0.1:9/"},
        }
    )
    record = await real_engine.run(parse_canvas(document))
    assert record.status == "failed"
    assert record.error is not None and record.error.startswith('node "fetch"')
    (resource,) = sandbox_resources(store, record.id)
    assert (resource.kind, resource.state) == ("daytona.sandbox", "reclaimed")
    assert await live_sandboxes(integration) == []


async def test_cancel_mid_command_kills_it_and_deletes_the_sandbox(
    real_engine: Engine, store: RunStore, integration: Any, updates: list[RunUpdate]
) -> None:
    document = load_canvas(EXAMPLES / "hello.yaml").to_document()
    document["spec"]["nodes"][2] = {
        "id": "say-hello",
        "type": "TYPE_ACTION",
        "component": "daytona.executeCommand",
        "configuration": {
            "sandbox": '{{ $["daytona.createSandbox"].data.id }}',
            "command": "sleep 120",
            "timeout": 300,
        },
    }
    run_id = await real_engine.start(parse_canvas(document))
    while not any(u.kind in ("node.started", "node.waiting") and u.node_id == "say-hello" for u in updates):
        await asyncio.sleep(0.01)
    record = await asyncio.wait_for(real_engine.cancel(run_id), 60)
    assert record.status == "cancelled"
    assert {e.node_id: e.status for e in store.executions(run_id)}["say-hello"] == "cancelled"
    assert [r.state for r in sandbox_resources(store, run_id)] == ["reclaimed"]
    assert await live_sandboxes(integration) == []
