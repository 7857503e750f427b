"""The CLI's rough edges on a real backend (a local server standing in for Daytona, real bubblewrap
sandboxes): sandbox id prefixes, whole ids off a terminal, live command output without the waiting
spam, timeouts said as such, a working directory under the sandbox user's home."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from run_fakes import make_canvas
from run_support import running_local_server
from sandbox_dirs import traversable_temp_dir

from daytonaflow.cli import EXIT_FAILED, EXIT_OK, main

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def remote() -> Iterator[Any]:
    """A server standing in for Daytona's cloud: the CLI reaches it only through the environment."""
    with (
        traversable_temp_dir("daytonaflow-cli-edges-") as root,
        running_local_server(root / "remote") as instance,
    ):
        yield instance


@pytest.fixture
def on_remote(remote: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("DAYTONA_API_KEY", remote.api_key)
    monkeypatch.setenv("DAYTONA_API_URL", remote.api_url)
    monkeypatch.delenv("DAYTONA_TARGET", raising=False)
    monkeypatch.setenv("DAYTONAFLOW_DB", str(tmp_path / "runs.db"))
    return remote


def _create(remote: Any) -> str:
    headers = {"Authorization": f"Bearer {remote.api_key}"}
    sandbox_id: str = httpx.post(f"{remote.api_url}/sandbox", json={}, headers=headers, timeout=60).json()[
        "id"
    ]
    return sandbox_id


def _listed(capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(["sandboxes", "--json"]) == EXIT_OK
    return [item["id"] for item in json.loads(capsys.readouterr().out)]


def test_sandboxes_delete_takes_a_unique_prefix_of_the_id(
    on_remote: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox_id = _create(on_remote)
    others = set(_listed(capsys)) - {sandbox_id}
    prefix = next(
        sandbox_id[:n]
        for n in range(4, len(sandbox_id))
        if not any(o.startswith(sandbox_id[:n]) for o in others)
    )
    assert main(["sandboxes", "delete", prefix]) == EXIT_OK
    assert f"deleted {sandbox_id}" in capsys.readouterr().out
    assert sandbox_id not in _listed(capsys)


def test_sandboxes_delete_of_an_unknown_id_is_a_clear_error(
    on_remote: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sandboxes", "delete", "no-such-sandbox"]) == EXIT_FAILED
    assert 'no sandbox "no-such-sandbox"' in capsys.readouterr().err


def test_off_a_terminal_sandboxes_shows_whole_ids(on_remote: Any, capsys: pytest.CaptureFixture[str]) -> None:
    sandbox_id = _create(on_remote)
    try:
        assert main(["sandboxes"]) == EXIT_OK
        out = capsys.readouterr().out
        assert sandbox_id in out and "…" not in out
    finally:
        main(["sandboxes", "delete", sandbox_id])
        capsys.readouterr()


def _command_canvas(tmp_path: Path, **configuration: Any) -> Path:
    document = make_canvas(
        [
            {"id": "sandbox", "name": "Create Sandbox", "component": "daytona.createSandbox"},
            {
                "id": "cmd",
                "name": "Count",
                "component": "daytona.executeCommand",
                "configuration": {"sandbox": '{{ $["Create Sandbox"].data.id }}', **configuration},
            },
        ],
        [("start", "sandbox"), ("sandbox", "cmd")],
        name="count",
    )
    path = tmp_path / "count.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_running_commands_output_is_shown_line_by_line_and_waiting_once(
    on_remote: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canvas = _command_canvas(tmp_path, command="for i in 1 2 3 4; do echo step $i; sleep 0.3; done")
    assert main(["run", str(canvas)]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("Count | ")] == [
        f"Count | step {n}" for n in (1, 2, 3, 4)
    ]
    assert sum("waiting" in line for line in lines) <= 1


def test_a_timed_out_command_is_shown_as_timed_out(
    on_remote: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canvas = _command_canvas(tmp_path, command="echo started; sleep 30", timeout=1)
    assert main(["run", str(canvas)]) == EXIT_FAILED  # no edge handles its failure
    out = capsys.readouterr().out
    assert 'node "cmd" emitted on "failed" and no edge handles it: timed out after 1 s' in out
    (line,) = [line for line in out.splitlines() if line.startswith("Count [")]
    assert "on failed" in line and "timed out: started" in line
    assert "exit 124" not in out


def test_a_working_directory_under_the_home_runs_there(
    on_remote: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox = '{{ $["Create Sandbox"].data.id }}'
    document = make_canvas(
        [
            {"id": "sandbox", "name": "Create Sandbox", "component": "daytona.createSandbox"},
            {
                "id": "mkdir",
                "component": "daytona.executeCommand",
                "configuration": {"sandbox": sandbox, "command": "mkdir -p 'my app'", "cwd": "~"},
            },
            {
                "id": "pwd",
                "component": "daytona.executeCommand",
                "configuration": {"sandbox": sandbox, "command": "pwd", "cwd": "$HOME/my app"},
            },
        ],
        [("start", "sandbox"), ("sandbox", "mkdir"), ("mkdir", "pwd", "success")],
        name="home",
    )
    canvas = tmp_path / "home.yaml"
    canvas.write_text(yaml.safe_dump(document))
    assert main(["run", str(canvas), "--json"]) == EXIT_OK
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (where,) = [e for e in events if e["kind"] == "node.emitted" and e["node_id"] == "pwd"]
    assert where["channel"] == "success", where
    assert where["event"]["data"]["result"].strip().endswith("/my app")


def test_an_unhandled_failed_command_fails_the_run_with_its_exit_code_and_last_line(
    on_remote: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canvas = _command_canvas(tmp_path, command="echo working; echo 'no such target: deploy' >&2; exit 3")
    assert main(["run", str(canvas)]) == EXIT_FAILED
    out = capsys.readouterr().out
    assert "no edge handles it: exit code 3: no such target: deploy" in out


def test_timed_out_code_fails_the_run_saying_its_limit_in_milliseconds(
    on_remote: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = make_canvas(
        [
            {"id": "sandbox", "name": "Create Sandbox", "component": "daytona.createSandbox"},
            {
                "id": "code",
                "component": "daytona.executeCode",
                "configuration": {
                    "sandbox": '{{ $["Create Sandbox"].data.id }}',
                    "code": "import time\ntime.sleep(30)",
                    "timeout": 1500,
                },
            },
        ],
        [("start", "sandbox"), ("sandbox", "code")],
    )
    canvas = tmp_path / "code.yaml"
    canvas.write_text(yaml.safe_dump(document))
    assert main(["run", str(canvas)]) == EXIT_FAILED
    assert (
        'node "code" emitted on "failed" and no edge handles it: timed out after 1500 ms'
        in capsys.readouterr().out
    )
