"""SuperPlane's canvas documents, current and older exports, load as they are."""

from __future__ import annotations

from typing import Any

from run_fakes import FAKE_COMPONENTS, make_canvas

from daytonaflow.runner import CanvasGraph, parse_canvas, validate_canvas
from daytonaflow.runner.canvas import NodeType


def echo(node_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "component": "test.echo", "configuration": {"value": 1}, **extra}


def messages(document: dict[str, Any]) -> list[str]:
    issues = validate_canvas(parse_canvas(document), FAKE_COMPONENTS)
    return [f"{issue.node} {issue.field}: {issue.message}" for issue in issues]


def test_a_canvas_without_api_version_and_kind_is_a_v1_canvas() -> None:
    document = make_canvas([echo("a")], [("start", "a")])
    del document["apiVersion"], document["kind"]
    canvas = parse_canvas(document)
    assert (canvas.api_version, canvas.kind) == ("v1", "Canvas")
    assert messages(document) == []


def test_node_concurrency_is_accepted_and_kept() -> None:
    document = make_canvas(
        [echo("a", concurrency={"key": "{{ $['start'].data.x }}", "max": 2})], [("start", "a")]
    )
    assert parse_canvas(document).node("a").concurrency == {"key": "{{ $['start'].data.x }}", "max": 2}
    assert messages(document) == []


def test_spec_control_and_change_management_are_accepted() -> None:
    document = make_canvas([echo("a")], [("start", "a")])
    document["spec"]["control"] = {"approvers": []}
    document["spec"]["changeManagement"] = {"enabled": False}
    assert messages(document) == []


def test_an_api_export_with_status_is_accepted() -> None:
    document = make_canvas([echo("a")], [("start", "a")])
    document["status"] = {"lastExecutions": [], "lastEvents": []}
    assert messages(document) == []


def test_older_exports_name_the_component_in_a_reference_per_kind() -> None:
    nulls = {"blueprint": None, "widget": None, "appInstallation": None}
    document = make_canvas([], [("start", "a")])
    document["spec"]["nodes"] = [
        {"id": "start", "type": "TYPE_TRIGGER", "component": None, "trigger": {"name": "start"}, **nulls},
        {
            "id": "a",
            "type": "TYPE_COMPONENT",
            "component": {"name": "test.echo"},
            "trigger": None,
            "configuration": {"value": 1},
            **nulls,
        },
        {
            "id": "note",
            "type": "TYPE_WIDGET",
            "component": None,
            "trigger": None,
            "blueprint": None,
            "widget": {"name": "annotation"},
            "appInstallation": None,
            "configuration": {"text": "hi"},
        },
    ]
    canvas = parse_canvas(document)
    assert [(node.type, node.component) for node in canvas.spec.nodes] == [
        (NodeType.TRIGGER, "start"),
        (NodeType.ACTION, "test.echo"),
        (NodeType.WIDGET, "annotation"),
    ]
    assert messages(document) == []


def test_the_docs_action_reference_names_the_component() -> None:
    document = make_canvas([], [("start", "a")])
    document["spec"]["nodes"].append(
        {"id": "a", "type": "TYPE_ACTION", "action": {"name": "test.echo"}, "configuration": {"value": 1}}
    )
    assert parse_canvas(document).node("a").component == "test.echo"


def test_a_node_naming_no_component_loads_and_validation_says_so() -> None:
    document = make_canvas([{"id": "a", "configuration": {}}], [("start", "a")])
    assert messages(document) == ["a component: is required"]


def test_an_edge_with_an_empty_channel_listens_on_default() -> None:
    document = make_canvas([echo("a")], [("start", "a", "")])
    assert parse_canvas(document).spec.edges[0].channel == "default"


def test_annotation_colors_and_customname_from_the_ui_are_accepted() -> None:
    document = make_canvas(
        [echo("a", configuration={"value": 1, "customName": "Echo one"})], [("start", "a")]
    )
    document["spec"]["nodes"].append(
        {
            "id": "n",
            "name": "note",
            "type": "TYPE_WIDGET",
            "component": "annotation",
            "configuration": {"text": "x", "color": "yellow", "width": 371, "height": 300},
            "isCollapsed": False,
            "position": {"x": 1, "y": 2},
        }
    )
    assert messages(document) == []


# --- loops -------------------------------------------------------------------------------------


def loop_canvas() -> CanvasGraph:
    # start -> a -> b -> c -> a (a loop), and c -> d out of it.
    document = make_canvas(
        [echo("a"), echo("b"), echo("c"), echo("d")],
        [("start", "a"), ("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")],
    )
    return CanvasGraph(parse_canvas(document))


def test_ancestors_on_a_cycle_include_the_node_itself_and_end() -> None:
    graph = loop_canvas()
    assert graph.ancestors("b") == {"start", "a", "b", "c"}
    assert graph.ancestors("d") == {"start", "a", "b", "c"}


def test_has_upstream_on_a_cycle_finds_nodes_behind_it_and_ends_when_absent() -> None:
    graph = loop_canvas()
    assert graph.has_upstream("a", "c")  # through the loop
    assert graph.has_upstream("a", "a")
    assert not graph.has_upstream("a", "d")
    assert not graph.has_upstream("b", "nowhere")
    # Answers remembered on the way stay right for the other nodes of the loop.
    assert graph.has_upstream("c", "b") and not graph.has_upstream("c", "d")


def test_a_loop_validates_with_references_across_it() -> None:
    document = make_canvas(
        [
            echo("a"),
            {"id": "b", "component": "test.echo", "configuration": {"value": '{{ $["b"].data.value }}'}},
        ],
        [("start", "a"), ("a", "b"), ("b", "a")],
    )
    assert messages(document) == []
