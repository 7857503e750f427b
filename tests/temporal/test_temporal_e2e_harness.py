"""The harness itself: the dev server it starts is a real Temporal frontend, on loopback."""

from __future__ import annotations

import subprocess
from pathlib import Path

from temporal_testkit import LOOPBACK


async def test_dev_server_describes_the_default_namespace(temporal_server: str) -> None:
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
    from temporalio.client import Client

    client = await Client.connect(temporal_server)
    request = DescribeNamespaceRequest(namespace="default")
    described = await client.workflow_service.describe_namespace(request)
    assert described.namespace_info.name == "default"
    assert temporal_server.startswith(f"{LOOPBACK}:")


def test_temporal_cli_lists_the_dev_servers_namespaces(temporal_cli: Path, temporal_server: str) -> None:
    listed = subprocess.run(
        [str(temporal_cli), "operator", "namespace", "list", "--address", temporal_server],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert "default" in listed.stdout
