"""examples/webhook-report.yaml, as far as the git components go: their nodes' configuration is
valid, the request picks nothing but a checked branch, the push runs in a sandbox where no tested
code ran, and every path of the run ends in deleteSandbox. (The canvas's end-to-end run needs the
webhook trigger and uploadFile as well; it is tested where all of them are.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from daytonaflow.components import COMPONENTS
from daytonaflow.expressions import ExpressionContext, evaluate_expression
from daytonaflow.runner import load_canvas

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "webhook-report.yaml"
BY_NAME = {component.name: component for component in COMPONENTS}


@pytest.fixture(scope="module")
def document():
    return load_canvas(EXAMPLE).to_document()


def _nodes(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["id"]: node for node in document["spec"]["nodes"]}


def test_the_git_nodes_configurations_are_valid(document):
    git_nodes = [node for node in document["spec"]["nodes"] if node["component"].startswith("daytona.git")]
    assert [node["component"] for node in git_nodes] == [
        "daytona.gitCheckout",
        "daytona.gitCommit",
        "daytona.gitPush",
    ]
    for node in git_nodes:
        component = BY_NAME[node["component"]]
        assert component.validate_config(node["configuration"], allow_expressions=True) == [], node["id"]


def test_the_repository_and_the_test_command_are_the_canvas_s_not_the_request_s(document):
    nodes = _nodes(document)
    # Only the branch may come from the request; everything else the run does is configured here.
    from_request = {
        (node_id, field)
        for node_id, node in nodes.items()
        for field, value in node.get("configuration", {}).items()
        if "root()" in json.dumps(value)
    }
    assert from_request == {
        ("check-branch", "expression"),
        ("checkout", "branch"),
        ("report-checkout", "branch"),
    }
    assert nodes["checkout"]["configuration"]["repository"] == "https://github.com/org/app.git"
    assert nodes["run-tests"]["configuration"]["command"] == "python3 -m unittest -v"
    after = {(edge["sourceId"], edge["channel"]): edge["targetId"] for edge in document["spec"]["edges"]}
    assert after[("webhook", "default")] == "check-branch"
    assert after[("check-branch", "true")] == "checkout"
    assert ("check-branch", "false") not in after


@pytest.mark.parametrize(
    ("body", "passes"),
    [
        ({}, True),
        ({"branch": "main"}, True),
        ({"branch": "feature/report-1.2_x"}, True),
        ({"branch": "--upload-pack=touch /tmp/x"}, False),
        ({"branch": "main; rm -rf /"}, False),
        ({"branch": ""}, False),
        ({"branch": "x" * 101}, False),
    ],
)
def test_check_branch_lets_through_no_branch_or_a_plain_branch_name_only(document, body, passes):
    expression = _nodes(document)["check-branch"]["configuration"]["expression"]
    context = ExpressionContext([], {"type": "webhook", "data": {"body": body, "headers": {}}})
    assert evaluate_expression(expression, context) is passes


def test_the_report_is_pushed_from_a_fresh_sandbox_made_after_the_tested_one_is_deleted(document):
    nodes = _nodes(document)
    edges = document["spec"]["edges"]
    after = {(edge["sourceId"], edge["channel"]): edge["targetId"] for edge in edges}
    failure_path, node = [], after[("run-tests", "failed")]
    while True:
        failure_path.append(node)
        if (node, "default") not in after:
            break
        node = after[(node, "default")]
    assert [nodes[node]["component"] for node in failure_path] == [
        "daytona.deleteSandbox",
        "daytona.createRepositorySandbox",
        "daytona.uploadFile",
        "daytona.gitCheckout",
        "daytona.gitCommit",
        "daytona.gitPush",
        "daytona.deleteSandbox",
    ]
    tested, fresh = '{{ $["Checkout"].data.sandboxId }}', '{{ $["Report Checkout"].data.sandboxId }}'
    assert nodes[failure_path[0]]["configuration"]["sandbox"] == tested
    report_checkout = nodes[failure_path[1]]["configuration"]
    # The same repository, as configured in the canvas (not read from the tested sandbox), and no
    # bootstrap: no code of the repository runs where the push credentials go.
    assert report_checkout["repository"] == '{{ $["Checkout"].data.repository }}'
    assert "bootstrap" not in report_checkout
    for node in failure_path[2:]:
        assert nodes[node]["configuration"]["sandbox"] == fresh, node


def test_every_path_ends_in_delete_sandbox_of_the_sandboxes_it_made(document):
    nodes = _nodes(document)
    edges = document["spec"]["edges"]
    after = {(edge["sourceId"], edge["channel"]): edge["targetId"] for edge in edges}
    sources = {edge["sourceId"] for edge in edges}
    sinks = [node for node in nodes if node not in sources]
    assert sinks and all(nodes[sink]["component"] == "daytona.deleteSandbox" for sink in sinks)
    # Each outcome channel of the nodes that branch leads somewhere (nothing to commit included).
    assert {("run-tests", "success"), ("run-tests", "failed"), ("commit-report", "nothing")} <= set(after)
    assert nodes[after[("run-tests", "success")]]["configuration"]["sandbox"] == (
        '{{ $["Checkout"].data.sandboxId }}'
    )
    assert nodes[after[("commit-report", "nothing")]]["configuration"]["sandbox"] == (
        '{{ $["Report Checkout"].data.sandboxId }}'
    )
