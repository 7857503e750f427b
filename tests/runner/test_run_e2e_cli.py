"""The CLI on real backends: the embedded server by default, a Daytona API when DAYTONA_API_KEY is set."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from run_support import running_local_server, sandbox_resources
from sandbox_dirs import traversable_temp_dir

from daytonaflow.cli import EXIT_OK, main
from daytonaflow.runner import RunStore

pytestmark = pytest.mark.sandbox
HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello.yaml"


@pytest.fixture
def traversable_dir() -> Iterator[Path]:
    with traversable_temp_dir("daytonaflow-runner-cli-") as root:
        yield root


@pytest.fixture
def remote(traversable_dir: Path) -> Iterator[Any]:
    """A server standing in for Daytona's cloud: the CLI reaches it only through the environment."""
    with running_local_server(traversable_dir / "remote") as instance:
        yield instance


def test_without_an_api_key_hello_runs_on_the_embedded_server(
    traversable_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DAYTONA_API_KEY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(traversable_dir))
    db = traversable_dir / "runs.db"
    assert main(["run", str(HELLO), "--db", str(db), "--json"]) == EXIT_OK
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    said = next(
        line for line in lines if line.get("node_id") == "say-hello" and line["kind"] == "node.emitted"
    )
    assert said["event"]["data"]["result"].startswith("Hello, World!")
    assert (traversable_dir / "daytonaflow").is_dir()  # the embedded server kept its state there


def test_with_an_api_key_the_cli_uses_that_api(
    remote: Any, traversable_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DAYTONA_API_KEY", remote.api_key)
    monkeypatch.setenv("DAYTONA_API_URL", remote.api_url)
    monkeypatch.delenv("DAYTONA_TARGET", raising=False)
    db = traversable_dir / "runs.db"
    assert main(["run", str(HELLO), "--db", str(db), "--keep-sandboxes"]) == EXIT_OK
    capsys.readouterr()
    with RunStore(db) as store:
        (run,) = store.list_runs()
        (sandbox,) = sandbox_resources(store, run.id)
    # deleteSandbox ran, so there is nothing to keep; create one by hand for `sandboxes`.
    headers = {"Authorization": f"Bearer {remote.api_key}"}
    created = httpx.post(f"{remote.api_url}/sandbox", json={}, headers=headers, timeout=60).json()
    assert main(["sandboxes", "--json"]) == EXIT_OK
    listed = [item["id"] for item in json.loads(capsys.readouterr().out)]
    assert created["id"] in listed and sandbox.resource_id not in listed
    assert main(["sandboxes", "delete", created["id"]]) == EXIT_OK
    capsys.readouterr()
    assert main(["sandboxes", "--json"]) == EXIT_OK
    assert created["id"] not in [item["id"] for item in json.loads(capsys.readouterr().out)]
