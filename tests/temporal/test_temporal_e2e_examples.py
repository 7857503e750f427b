"""The three example canvases on Temporal (real worker process, dev server, ``daytonaflow serve``, real
sandboxes) emit the same events as on the embedded engine: per node the same id, channel, event
type and data, up to what differs by nature between two runs (ids, tokens, timestamps)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from git_repository import make_repository
from temporal_testkit import Rig, live_sandboxes, wait_ended

from daytonaflow.runner import Canvas, Engine, RunStore, load_canvas

pytestmark = pytest.mark.sandbox
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_RUN_SECONDS = 300.0
#: Values that differ between any two runs of one canvas, whatever the engine (and every ``...At``
#: key, a timestamp).
_VOLATILE_KEYS = frozenset({"token", "url", "commandId", "sessionId"})
#: A duration printed by a command (unittest's "Ran 1 test in 0.001s").
_DURATION = re.compile(r"\b\d+\.\d+s\b")
#: Values of which only the keys are stable (HTTP dates).
_KEYS_ONLY = frozenset({"headers"})

EventShape = tuple[str, str, str, Any]


def _stable(value: Any, sandbox_ids: list[str]) -> Any:
    """``value`` with this run's sandbox ids replaced and volatile values masked (keys stay)."""
    if isinstance(value, dict):
        return {key: _stable_item(key, item, sandbox_ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_stable(item, sandbox_ids) for item in value]
    if isinstance(value, str):
        for sandbox_id in sandbox_ids:
            value = value.replace(sandbox_id, "<sandbox>")
        return _DURATION.sub("<seconds>", value)
    return value


def _stable_item(key: str, item: Any, sandbox_ids: list[str]) -> Any:
    if key in _VOLATILE_KEYS or key.endswith("At"):
        return "<volatile>"
    if key in _KEYS_ONLY and isinstance(item, dict):
        return sorted(item)
    return _stable(item, sandbox_ids)


def _event_shapes(events: list[Any], resources: list[Any]) -> list[EventShape]:
    sandbox_ids = [r.resource_id for r in resources if r.kind == "daytona.sandbox"]
    return [(e.node_id, e.channel, e.event["type"], _stable(e.event["data"], sandbox_ids)) for e in events]


async def _embedded(canvas: Canvas, run_input: Any, integration: Any, tmp_path: Path) -> list[EventShape]:
    with RunStore(tmp_path / "embedded.db") as store:
        engine = Engine(store, integration=integration)
        try:
            record = await engine.run(canvas, run_input)
        finally:
            await engine.aclose()
        assert record.status == "succeeded", record.error
        return _event_shapes(store.events(record.id), store.resources(record.id))


async def _on_temporal(canvas: Canvas, run_input: Any, rig: Rig) -> list[EventShape]:
    run_id = await rig.runs.start(canvas, run_input)
    await wait_ended(rig.client, run_id, timeout=_RUN_SECONDS)
    snapshot = await rig.runs.get(run_id)
    assert snapshot.record.status == "succeeded", snapshot.record.error
    return _event_shapes(snapshot.events(run_id), snapshot.resources(run_id))


async def _same_events_on_both(canvas: Canvas, run_input: Any, rig: Rig, tmp_path: Path) -> list[EventShape]:
    rig.workers.start()
    expected = await _embedded(canvas, run_input, rig.integration, tmp_path)
    actual = await _on_temporal(canvas, run_input, rig)
    assert actual == expected
    assert await live_sandboxes(rig.integration) == []
    return actual


async def test_hello_emits_the_embedded_engines_events(rig: Rig, tmp_path: Path) -> None:
    events = await _same_events_on_both(load_canvas(EXAMPLES / "hello.yaml"), {"name": "Ada"}, rig, tmp_path)
    by_node = {node: data for node, _, _, data in events}
    assert by_node["say-hello"]["result"].startswith("Hello, Ada! Python 3")
    assert by_node["delete-sandbox"] == {"deleted": True, "id": "<sandbox>"}


async def test_preview_emits_the_embedded_engines_events(rig: Rig, tmp_path: Path) -> None:
    events = await _same_events_on_both(load_canvas(EXAMPLES / "preview.yaml"), None, rig, tmp_path)
    page = next(data for node, _, _, data in events if node == "fetch-page")
    assert (page["status"], page["body"]) == (200, "Hello from sandbox <sandbox>\n")


@pytest.mark.parametrize("passing", [True, False], ids=["tests-pass", "tests-fail"])
async def test_repository_emits_the_embedded_engines_events(rig: Rig, tmp_path: Path, passing: bool) -> None:
    canvas = load_canvas(EXAMPLES / "repository.yaml")
    url = make_repository(tmp_path, passing=passing)
    events = await _same_events_on_both(canvas, {"repository": url}, rig, tmp_path)
    branch = "passed" if passing else "failed"
    assert [node for node, *_ in events] == [
        "start",
        "checkout",
        "run-tests",
        f"tests-{branch}",
        f"cleanup-after-{'success' if passing else 'failure'}",
    ]
