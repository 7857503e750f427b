"""Load-time validation: every problem at once, each naming the node and the field."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from run_fakes import FAKE_COMPONENTS, make_canvas

from daytonaflow.runner import CanvasError, CanvasIssue, load_canvas, parse_canvas, validate_canvas


def issues_of(document: dict[str, Any]) -> list[CanvasIssue]:
    return validate_canvas(parse_canvas(document), FAKE_COMPONENTS)


def test_a_valid_canvas_has_no_issues() -> None:
    document = make_canvas(
        [
            {"id": "a", "component": "test.acquire"},
            {"id": "b", "component": "test.release", "configuration": {"id": '{{ $["a"].data.id }}'}},
        ],
        [("start", "a"), ("a", "b")],
    )
    assert issues_of(document) == []


def test_every_problem_is_reported_at_once_with_node_and_field() -> None:
    document = make_canvas(
        [
            {"id": "echo", "component": "test.echo", "configuration": {}},
            {"id": "branch", "component": "test.branch", "configuration": {"ok": 3}},
            {"id": "ghost", "component": "test.nope"},
        ],
        [("start", "echo"), ("echo", "branch", "success"), ("start", "missing")],
    )
    issues = issues_of(document)
    assert CanvasIssue("echo", "configuration.value", "is required") in issues
    assert CanvasIssue("branch", "configuration.ok", "must be a boolean") in issues
    assert any(
        i.node == "ghost" and i.field == "component" and "unknown component" in i.message for i in issues
    )
    assert any(i.node == "echo" and i.field == "edges.1.channel" and '"success"' in i.message for i in issues)
    assert any(
        i.node == "start" and i.field == "edges.2.targetId" and '"missing"' in i.message for i in issues
    )
    assert len(issues) == 5


def test_a_cycle_is_valid_as_in_superplane() -> None:
    document = make_canvas(
        [
            {"id": "a", "component": "test.echo", "configuration": {"value": 1}},
            {"id": "b", "component": "test.echo", "configuration": {"value": "<< $['a'].data.value >>"}},
        ],
        [("start", "a"), ("a", "b"), ("b", "a")],
    )
    assert issues_of(document) == []


def test_an_expression_may_only_reference_upstream_nodes() -> None:
    document = make_canvas(
        [
            {"id": "left", "component": "test.echo", "configuration": {"value": 1}},
            {
                "id": "right",
                "component": "test.echo",
                "configuration": {"value": '{{ $["left"].data.value }}'},
            },
        ],
        [("start", "left"), ("start", "right")],
    )
    (issue,) = issues_of(document)
    assert (issue.node, issue.field) == ("right", "configuration.value")
    assert '$["left"] is not an upstream node' in issue.message


def test_upstream_nodes_match_by_name_id_or_component() -> None:
    document = make_canvas(
        [
            {"id": "a", "name": "Make it", "component": "test.acquire"},
            {
                "id": "b",
                "component": "test.echo",
                "configuration": {
                    "value": '{{ $["Make it"].data.id }}{{ $["a"].data.id }}{{ $["test.acquire"].data.id }}'
                },
            },
        ],
        [("start", "a"), ("a", "b")],
    )
    assert issues_of(document) == []


def test_references_are_checked_along_every_path_into_a_node() -> None:
    # A diamond with a side branch: "join" sees both arms; "side" sees neither, "tail" sees all.
    echo = {"component": "test.echo"}
    document = make_canvas(
        [
            {"id": "left", **echo, "configuration": {"value": 1}},
            {"id": "right", "name": "Right arm", **echo, "configuration": {"value": 2}},
            {"id": "side", **echo, "configuration": {"value": '{{ $["Right arm"].data.value }}'}},
            {
                "id": "join",
                **echo,
                "configuration": {"value": '{{ $["left"].data.value }}{{ $["Right arm"].data.value }}'},
            },
            {
                "id": "tail",
                **echo,
                "configuration": {"value": '{{ $["Right arm"].data.value }}{{ $["side"].data.value }}'},
            },
        ],
        [
            ("start", "left"),
            ("start", "right"),
            ("left", "join"),
            ("right", "join"),
            ("start", "side"),
            ("join", "tail"),
            ("side", "tail"),
        ],
    )
    issues = issues_of(document)
    assert [(issue.node, issue.field) for issue in issues] == [("side", "configuration.value")]
    assert issues[0].message == ('$["Right arm"] is not an upstream node (upstream: Manual Run)')


def refers_to_holder(node_id: str) -> dict[str, Any]:
    return {"id": node_id, "component": "test.echo", "configuration": {"value": '{{ $["Holder"] }}'}}


def plain(node_id: str, name: str = "") -> dict[str, Any]:
    return {"id": node_id, "name": name or node_id, "component": "test.echo", "configuration": {"value": 1}}


def test_a_node_beside_the_path_that_found_a_key_still_needs_it_upstream() -> None:
    # "joined" finds Holder through "holder"; "other", also searched, has no Holder above it.
    document = make_canvas(
        [plain("holder", "Holder"), plain("other"), refers_to_holder("joined"), refers_to_holder("below")],
        [
            ("start", "holder"),
            ("start", "other"),
            ("holder", "joined"),
            ("other", "joined"),
            ("other", "below"),
        ],
    )
    assert [(issue.node, issue.field) for issue in issues_of(document)] == [("below", "configuration.value")]


def test_a_node_with_no_key_upstream_does_not_hide_another_path_that_has_it() -> None:
    # "lacking" is searched first and has no Holder above it; "merged" has it through "middle".
    document = make_canvas(
        [plain("holder", "Holder"), plain("middle"), refers_to_holder("lacking"), refers_to_holder("merged")],
        [
            ("start", "holder"),
            ("holder", "middle"),
            ("start", "lacking"),
            ("lacking", "merged"),
            ("middle", "merged"),
        ],
    )
    assert [(issue.node, issue.field) for issue in issues_of(document)] == [
        ("lacking", "configuration.value")
    ]


def test_a_key_found_nowhere_upstream_is_reported_for_every_node_naming_it() -> None:
    chain = [
        {"id": f"n{i}", "component": "test.echo", "configuration": {"value": '{{ $["nope"] }}'}}
        for i in range(30)
    ]
    ids = ["start", *(node["id"] for node in chain)]
    issues = issues_of(make_canvas(chain, list(itertools.pairwise(ids))))
    assert [issue.node for issue in issues] == [node["id"] for node in chain]
    assert all('$["nope"] is not an upstream node' in issue.message for issue in issues)


def test_a_long_chain_naming_its_first_node_everywhere_is_valid() -> None:
    chain = [{"id": "first", "component": "test.echo", "configuration": {"value": 0}}]
    chain += [
        {"id": f"n{i}", "component": "test.echo", "configuration": {"value": '{{ $["first"].data.value }}'}}
        for i in range(2000)
    ]
    ids = ["start", *(node["id"] for node in chain)]
    assert issues_of(make_canvas(chain, list(itertools.pairwise(ids)))) == []


def test_an_expression_syntax_error_names_the_node_and_field() -> None:
    document = make_canvas(
        [{"id": "e", "component": "test.echo", "configuration": {"value": {"nested": ["ok", "{{ 1 + }}"]}}}],
        [("start", "e")],
    )
    (issue,) = issues_of(document)
    assert (issue.node, issue.field) == ("e", "configuration.value.nested.1")


def test_a_canvas_needs_a_start_trigger() -> None:
    document = make_canvas([], [])
    document["spec"]["nodes"] = [{"id": "e", "component": "test.echo", "configuration": {"value": 1}}]
    (issue,) = issues_of(document)
    assert 'no "start" trigger' in issue.message


def test_an_unknown_trigger_and_an_edge_into_a_trigger_are_reported() -> None:
    document = make_canvas(
        [{"id": "e", "component": "test.echo", "configuration": {"value": 1}}], [("e", "start")]
    )
    document["spec"]["nodes"].append({"id": "cron", "type": "TYPE_TRIGGER", "component": "schedule"})
    issues = issues_of(document)
    assert any(i.node == "cron" and i.field == "component" and "unknown trigger" in i.message for i in issues)
    assert any(i.node == "start" and i.field == "edges.0.targetId" for i in issues)


def test_structural_errors_name_the_node_by_id() -> None:
    document = make_canvas(
        [{"id": "e", "component": "test.echo", "configuration": {"value": 1}, "colour": 1}], []
    )
    del document["spec"]["nodes"][0]["id"]
    with pytest.raises(CanvasError) as caught:
        parse_canvas(document)
    fields = {(i.node, i.field, i.message) for i in caught.value.issues}
    assert ("#0", "id", "is required") in fields
    assert ("e", "colour", "is not a known field") in fields


def test_canvas_files_load_from_yaml_and_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text(
        "apiVersion: v1\nkind: Canvas\nmetadata: {name: demo}\nspec:\n  nodes:\n"
        "    - {id: start, name: Manual Run, type: TYPE_TRIGGER, component: start}\n"
        "    - {id: e, type: TYPE_COMPONENT, component: {name: test.echo}, configuration: {value: 1},"
        " position: {x: 10, y: 20}}\n"
        "  edges:\n    - {sourceId: start, targetId: e, channel: default}\n"
    )
    canvas = load_canvas(yaml_file)
    assert canvas.node("e").component == "test.echo"
    assert validate_canvas(canvas, FAKE_COMPONENTS) == []
    json_file = tmp_path / "c.json"
    json_file.write_text(canvas.model_dump_json(by_alias=True))
    assert load_canvas(json_file) == canvas


def test_a_file_that_is_not_yaml_is_a_clear_canvas_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes: [unclosed")
    with pytest.raises(CanvasError, match="not valid YAML"):
        load_canvas(bad)


def test_a_superplane_export_loads_as_is() -> None:
    document = {
        "apiVersion": "v1",
        "kind": "Canvas",
        "metadata": {"id": "4e9ae08d", "name": "exported", "createdAt": "2026-01-19T12:00:00Z"},
        "spec": {
            "nodes": [
                {
                    "id": "manual",
                    "name": "manual_start",
                    "type": "TYPE_TRIGGER",
                    "trigger": {"name": "start"},
                    "configuration": {"templates": [{"name": "Demo", "payload": {"n": 1}}]},
                    "position": {"x": 120, "y": 500},
                    "paused": False,
                    "isCollapsed": False,
                },
                {
                    "id": "echo",
                    "name": "test.echo",
                    "type": "TYPE_COMPONENT",
                    "component": {"name": "test.echo"},
                    "integration": {"id": "abc", "name": ""},
                    "configuration": {"value": "{{ root().data.n }}", "customName": "Echo it"},
                    "errorMessage": "",
                },
            ],
            "edges": [{"source_id": "manual", "target_id": "echo"}],
        },
    }
    canvas = parse_canvas(document)
    assert validate_canvas(canvas, FAKE_COMPONENTS) == []
    assert canvas.node("echo").configuration == {"value": "{{ root().data.n }}"}
    assert canvas.start_templates() == [{"name": "Demo", "payload": {"n": 1}}]


def test_a_paused_node_is_refused() -> None:
    document = make_canvas(
        [{"id": "e", "component": "test.echo", "configuration": {"value": 1}, "paused": True}],
        [("start", "e")],
    )
    assert [(i.node, i.field) for i in issues_of(document)] == [("e", "paused")]


def test_issues_show_the_node_name_beside_its_id() -> None:
    issue = CanvasIssue("code", "configuration.language", "must be one of ...", node_name="Run code")
    assert str(issue) == 'node "Run code" (id code) field "configuration.language": must be one of ...'
