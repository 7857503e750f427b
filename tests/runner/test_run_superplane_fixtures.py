"""End to end: canvases in SuperPlane's export shapes run unchanged on the embedded local server.

They use the core components (``if``, ``noop``, ``merge``, ``wait``, ``filter``) beside the
Daytona ones; see fixtures/README.md for where their shape comes from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from run_support import live_sandboxes, sandbox_resources

from daytonaflow.runner import Canvas, ComponentRegistry, Engine, RunStore, load_canvas, validate_canvas

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "superplane"


def ran(store: RunStore, run_id: str, canvas: Canvas) -> dict[str, dict[str, Any]]:
    """The event data of every node that emitted, by node name."""
    return {canvas.node(event.node_id).name: event.event["data"] for event in store.events(run_id)}


@pytest.mark.parametrize("name", ["sandbox-check.canvas.yaml", "parallel-steps.canvas.yaml"])
def test_the_fixture_is_valid_with_the_installed_components(name: str) -> None:
    assert [
        str(issue) for issue in validate_canvas(load_canvas(FIXTURES / name), ComponentRegistry.discover())
    ] == []


@pytest.mark.sandbox
async def test_the_sandbox_check_takes_the_true_branch_and_deletes_the_sandbox(
    real_engine: Engine, store: RunStore, integration: Any
) -> None:
    canvas = load_canvas(FIXTURES / "sandbox-check.canvas.yaml")
    record = await real_engine.run(canvas, {"directory": "/tmp"})
    assert record.status == "succeeded", record.error
    data = ran(store, record.id, canvas)
    assert data["Look for the directory"]["exitCode"] == 0
    assert "Directory present" in data
    assert data["Remove Sandbox"]["deleted"] is True
    assert [resource.state for resource in sandbox_resources(store, record.id)] == ["released"]
    assert await live_sandboxes(integration) == []


@pytest.mark.sandbox
async def test_the_sandbox_check_takes_the_false_branch_when_the_directory_is_missing(
    real_engine: Engine, store: RunStore, integration: Any
) -> None:
    canvas = load_canvas(FIXTURES / "sandbox-check.canvas.yaml")
    record = await real_engine.run(canvas, {"directory": "/no/such/directory"})
    assert record.status == "succeeded", record.error
    data = ran(store, record.id, canvas)
    assert data["Look for the directory"]["exitCode"] != 0
    assert "Directory present" not in data
    assert data["Remove Sandbox"]["deleted"] is True
    assert await live_sandboxes(integration) == []


@pytest.mark.sandbox
async def test_the_parallel_steps_merge_pause_filter_and_delete_the_sandbox(
    real_engine: Engine, store: RunStore, integration: Any
) -> None:
    canvas = load_canvas(FIXTURES / "parallel-steps.canvas.yaml")
    record = await real_engine.run(canvas, {})
    assert record.status == "succeeded", record.error
    data = ran(store, record.id, canvas)
    assert data["Squares"]["result"].strip() == "285"
    assert data["Cubes"]["result"].strip() == "2025"
    assert {"Both done", "Short pause", "Both exited 0"} <= set(data)
    assert data["Delete"]["deleted"] is True
    assert [resource.state for resource in sandbox_resources(store, record.id)] == ["released"]
    assert await live_sandboxes(integration) == []
