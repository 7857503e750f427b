"""examples/webhook-report.yaml, as far as the git components go: their nodes' configuration is
valid, and every path of the run ends in deleteSandbox. (The canvas's end-to-end run needs the
webhook trigger and uploadFile as well; it is tested where all of them are.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from daytonaflow.components import COMPONENTS
from daytonaflow.runner import load_canvas

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "webhook-report.yaml"
BY_NAME = {component.name: component for component in COMPONENTS}


@pytest.fixture(scope="module")
def document():
    return load_canvas(EXAMPLE).to_document()


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


def test_the_failure_path_pushes_the_report_branch_and_every_path_ends_in_delete_sandbox(document):
    nodes = {node["id"]: node for node in document["spec"]["nodes"]}
    edges = document["spec"]["edges"]
    after = {(edge["sourceId"], edge["channel"]): edge["targetId"] for edge in edges}
    failure_path, node = [], after[("run-tests", "failed")]
    while True:
        failure_path.append(nodes[node]["component"])
        if (node, "default") not in after:
            break
        node = after[(node, "default")]
    assert failure_path == [
        "daytona.uploadFile",
        "daytona.gitCheckout",
        "daytona.gitCommit",
        "daytona.gitPush",
        "daytona.deleteSandbox",
    ]
    sources = {edge["sourceId"] for edge in edges}
    sinks = [node for node in nodes if node not in sources]
    assert sinks and all(nodes[sink]["component"] == "daytona.deleteSandbox" for sink in sinks)
    # Each outcome channel of the nodes that branch leads somewhere (nothing to commit included).
    assert {("run-tests", "success"), ("run-tests", "failed"), ("commit-report", "nothing")} <= set(after)
