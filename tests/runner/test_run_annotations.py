"""Annotation widgets (SuperPlane's ``TYPE_WIDGET`` sticky notes): kept in the canvas, never run."""

from __future__ import annotations

from typing import Any

from run_fakes import FAKE_COMPONENTS, make_canvas

from daytonaflow.runner import Engine, parse_canvas, validate_canvas


def with_note(configuration: dict[str, Any], component: str = "annotation") -> dict[str, Any]:
    document = make_canvas(
        [{"id": "a", "component": "test.echo", "configuration": {"value": 1}}], [("start", "a")]
    )
    note = {"id": "note", "type": "TYPE_WIDGET", "component": component, "configuration": configuration}
    document["spec"]["nodes"].append(note)
    return document


def messages(document: dict[str, Any]) -> list[str]:
    return [f"{i.field}: {i.message}" for i in validate_canvas(parse_canvas(document), FAKE_COMPONENTS)]


def test_an_annotation_with_text_and_a_colour_is_valid() -> None:
    assert messages(with_note({"text": "## Notes\nhello", "color": "blue"})) == []


def test_an_unknown_widget_is_named() -> None:
    assert messages(with_note({}, component="chart")) == [
        'component: unknown widget "chart" (known: "annotation")'
    ]


def test_an_annotation_colour_outside_superplanes_set_is_refused() -> None:
    assert messages(with_note({"text": "x", "color": "pink"})) == [
        "configuration.color: must be one of yellow, blue, green, red, purple, gray"
    ]


def test_an_annotation_emits_nothing() -> None:
    document = with_note({"text": "x"})
    document["spec"]["edges"].append({"sourceId": "note", "targetId": "a", "channel": "default"})
    assert messages(document) == ["edges.1.sourceId: is an annotation: it emits nothing"]


async def test_a_canvas_with_annotations_runs_without_running_them(engine: Engine) -> None:
    record = await engine.run(parse_canvas(with_note({"text": "x"})))
    assert record.status == "succeeded"
    assert {execution.node_id for execution in engine.store.executions(record.id)} == {"start", "a"}
