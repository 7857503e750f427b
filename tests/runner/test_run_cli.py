"""The daytonaflow command: exit codes, validation output, JSON lines, history, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from run_fakes import make_canvas
from sandbox_dirs import traversable_temp_dir

from daytonaflow.cli import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, EXIT_USAGE, _engine, main
from daytonaflow.runner import RunStore

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def write_canvas(tmp_path: Path, document: dict[str, Any], name: str = "canvas.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document))
    return path


def fetch_canvas(url: str) -> dict[str, Any]:
    return make_canvas(
        [
            {"id": "fetch", "component": "http", "configuration": {"url": url}},
            {"id": "ok", "component": "http", "configuration": {"url": "{{ previous().data.url }}"}},
        ],
        [("start", "fetch"), ("fetch", "ok", "success")],
        name="fetch",
    )


def test_help_lists_the_commands_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "validate", "components", "runs", "sandboxes", "expr", "serve"):
        assert command in out
    assert "daytonaflow run examples/hello.yaml" in out


def test_every_subcommand_has_help_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("run", "validate", "components", "runs", "sandboxes"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "examples:" in capsys.readouterr().out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == EXIT_USAGE


def test_the_examples_are_valid(capsys: pytest.CaptureFixture[str]) -> None:
    for example in ("hello.yaml", "repository.yaml", "preview.yaml"):
        assert main(["validate", str(EXAMPLES / example)]) == EXIT_OK, capsys.readouterr().err


def test_validate_reports_every_problem_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = make_canvas(
        [
            {"id": "exec", "component": "daytona.executeCode", "configuration": {"language": "python"}},
            {"id": "ghost", "component": "daytona.teleport"},
        ],
        [("start", "exec"), ("exec", "ghost", "default")],
    )
    assert main(["validate", str(write_canvas(tmp_path, document)), "--json"]) == EXIT_FAILED
    report = json.loads(capsys.readouterr().out)
    located = {(issue["node"], issue["field"]) for issue in report["issues"]}
    assert ("exec", "configuration.sandbox") in located
    assert ("exec", "configuration.code") in located
    assert ("ghost", "component") in located
    assert ("exec", "edges.1.channel") in located


def test_a_successful_run_exits_0_and_streams_json_lines(
    tmp_path: Path, db: Path, web: str, capsys: pytest.CaptureFixture[str]
) -> None:
    canvas = write_canvas(tmp_path, fetch_canvas(web + "/hello"))
    assert main(["run", str(canvas), "--json"]) == EXIT_OK
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["kind"] == "run.started"
    fetched = next(line for line in lines if line["kind"] == "node.emitted" and line["node_id"] == "fetch")
    assert fetched["channel"] == "success"
    assert fetched["event"]["data"]["body"] == "answer to /hello\n"
    assert lines[-1]["kind"] == "run.finished" and lines[-1]["status"] == "succeeded"


def test_a_failure_no_edge_handles_fails_the_run_naming_the_node_and_why(
    tmp_path: Path, db: Path, web: str, capsys: pytest.CaptureFixture[str]
) -> None:
    canvas = write_canvas(tmp_path, fetch_canvas(web + "/error"))
    assert main(["run", str(canvas)]) == EXIT_FAILED
    out = capsys.readouterr().out
    assert 'node "fetch" emitted on "failure" and no edge handles it: HTTP 500' in out
    with RunStore(db) as store:
        (run,) = store.list_runs()
        assert run.status == "failed"
        fetch = next(e for e in store.executions(run.id) if e.node_id == "fetch")
        assert fetch.channel == "failure"


def test_a_failure_an_edge_handles_leaves_the_outcome_to_the_rest_of_the_run(
    tmp_path: Path, db: Path, web: str, capsys: pytest.CaptureFixture[str]
) -> None:
    document = fetch_canvas(web + "/error")
    document["spec"]["nodes"].append(
        {"id": "report", "component": "http", "configuration": {"url": web + "/"}}
    )
    document["spec"]["edges"].append({"sourceId": "fetch", "targetId": "report", "channel": "failure"})
    canvas = write_canvas(tmp_path, document)
    assert main(["run", str(canvas)]) == EXIT_OK
    assert "succeeded" in capsys.readouterr().out
    with RunStore(db) as store:
        (run,) = store.list_runs()
        assert [e.node_id for e in store.executions(run.id)] == ["start", "fetch", "report"]


def test_a_failed_node_exits_1_with_its_error(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canvas = write_canvas(tmp_path, fetch_canvas("http://127.0.0.1:9/nothing-listens-here"))
    assert main(["run", str(canvas)]) == EXIT_FAILED
    out = capsys.readouterr().out
    assert "failed" in out
    assert 'node "fetch"' in out


def test_an_invalid_canvas_is_not_run(tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    canvas = write_canvas(tmp_path, make_canvas([{"id": "x", "component": "nope"}], [("start", "x")]))
    assert main(["run", str(canvas)]) == EXIT_FAILED
    assert 'node "x" field "component"' in capsys.readouterr().err
    assert not db.exists() or RunStore(db).list_runs() == []


def test_the_input_must_be_a_json_object(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canvas = write_canvas(tmp_path, make_canvas([], []))
    assert main(["run", str(canvas), "--input", "[1, 2]"]) == EXIT_USAGE
    assert "JSON object" in capsys.readouterr().err
    assert main(["run", str(canvas), "--input", "{oops"]) == EXIT_USAGE
    assert "not valid JSON" in capsys.readouterr().err


def test_runs_lists_history_and_shows_a_run(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs"]) == EXIT_OK
    assert "no runs yet" in capsys.readouterr().out
    canvas = write_canvas(tmp_path, make_canvas([], [], name="only-start"))
    assert main(["run", str(canvas), "--input", '{"who": "ada"}']) == EXIT_OK
    capsys.readouterr()
    assert main(["runs", "--json"]) == EXIT_OK
    (run,) = json.loads(capsys.readouterr().out)
    assert (run["canvas"], run["status"]) == ("only-start", "succeeded")
    assert main(["runs", "show", run["id"][:6], "--json"]) == EXIT_OK
    shown = json.loads(capsys.readouterr().out)
    assert shown["events"][0]["event"]["data"] == {"who": "ada"}
    assert main(["runs", "show", "zzzz"]) == EXIT_FAILED


def test_a_foreign_database_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    foreign = tmp_path / "foreign.db"
    foreign.write_bytes(b"definitely not sqlite" * 100)
    assert main(["runs", "--db", str(foreign)]) == EXIT_FAILED
    assert "not a usable daytonaflow run database" in capsys.readouterr().err
    assert foreign.read_bytes() == b"definitely not sqlite" * 100


def test_components_lists_and_documents(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["components", "--json"]) == EXIT_OK
    names = {manifest["name"] for manifest in json.loads(capsys.readouterr().out)}
    assert {"http", "daytona.createSandbox", "daytona.executeCommand"} <= names
    assert main(["components", "http", "--markdown"]) == EXIT_OK
    assert "HTTP Request" in capsys.readouterr().out
    assert main(["components", "no.such"]) == EXIT_FAILED


def start_cli_run(canvas: Path, db: Path) -> subprocess.Popen[str]:
    """`daytonaflow run CANVAS --json` in a subprocess, its JSON lines readable as they come."""
    return subprocess.Popen(
        [sys.executable, "-m", "daytonaflow.cli", "run", str(canvas), "--json", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=canvas.parent,  # not the checkout: its folders must not shadow the installed package
    )


def test_ctrl_c_cancels_the_run_and_exits_130(tmp_path: Path, web: str) -> None:
    db = tmp_path / "runs.db"
    canvas = write_canvas(tmp_path, fetch_canvas(web + "/hang"))
    process = start_cli_run(canvas, db)
    assert process.stdout is not None
    for line in process.stdout:
        if json.loads(line)["kind"] == "node.started":
            break
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=30)
    assert process.returncode == EXIT_CANCELLED
    finished = json.loads(rest.splitlines()[-1])
    assert (finished["kind"], finished["status"]) == ("run.finished", "cancelled")
    with RunStore(db) as store:
        (run,) = store.list_runs()
        assert run.status == "cancelled"
        assert {e.node_id: e.status for e in store.executions(run.id)}["fetch"] == "cancelled"


def kill_mid_run(canvas: Path, db: Path) -> str:
    """Start `daytonaflow run` in a subprocess, SIGKILL it once a node started; returns the run id."""
    process = start_cli_run(canvas, db)
    assert process.stdout is not None
    for line in process.stdout:
        update = json.loads(line)
        if update["kind"] == "node.started":
            break
    process.kill()
    process.wait()
    run_id: str = update["run_id"]
    return run_id


def test_runs_resume_finishes_a_killed_run(
    tmp_path: Path, web: str, hangs_released: threading.Event, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.db"
    killed_id = kill_mid_run(write_canvas(tmp_path, fetch_canvas(web + "/hang")), db)
    hangs_released.set()
    with RunStore(db) as store:
        assert store.get_run(killed_id).status == "running"
    assert main(["runs", "resume", "--db", str(db)]) == EXIT_OK
    assert f"run {killed_id} (fetch): succeeded" in capsys.readouterr().out
    with RunStore(db) as store:
        assert store.get_run(killed_id).status == "succeeded"
        assert [e.node_id for e in store.executions(killed_id)] == ["start", "fetch", "ok"]
    assert main(["runs", "resume", "--db", str(db)]) == EXIT_OK
    assert "nothing to resume" in capsys.readouterr().out


def test_the_next_run_resumes_a_killed_run_too(
    tmp_path: Path, web: str, hangs_released: threading.Event, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.db"
    killed_id = kill_mid_run(write_canvas(tmp_path, fetch_canvas(web + "/hang")), db)
    hangs_released.set()
    other = write_canvas(tmp_path, make_canvas([], [], name="other"), "other.yaml")
    assert main(["run", str(other), "--db", str(db)]) == EXIT_OK
    assert "resuming 1 unfinished run" in capsys.readouterr().out
    with RunStore(db) as store:
        assert store.get_run(killed_id).status == "succeeded"


def test_runs_resumed_by_the_cli_resolve_secrets_like_new_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(json.dumps({"api": {"token": "from-the-file"}}))
    monkeypatch.setenv("DAYTONAFLOW_SECRET_API_OTHER", "from-the-env")
    with RunStore(tmp_path / "runs.db") as store:
        engine = _engine(store, secrets_file)
        assert engine.secrets.get("api", "token") == "from-the-file"
        assert engine.secrets.get("api", "other") == "from-the-env"
    with pytest.raises(SystemExit):
        main(["runs", "--help"])
    assert "--secrets FILE" in capsys.readouterr().out


@pytest.fixture
def host_without_namespaces(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A ``bwrap`` first on PATH that fails as on a host without user namespaces; no cloud key."""
    # The probe runs bwrap as the unprivileged sandbox uid, so the fake must be reachable by it.
    with traversable_temp_dir("daytonaflow-fake-bwrap-") as fake_bin:
        fake_bin.chmod(0o755)
        bwrap = fake_bin / "bwrap"
        bwrap.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
        bwrap.chmod(0o755)
        monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.delenv("DAYTONA_API_KEY", raising=False)
        yield


@pytest.mark.usefixtures("host_without_namespaces")
def test_a_host_without_sandboxes_gets_bubblewraps_reason_and_the_cloud_alternative(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(EXAMPLES / "hello.yaml")]) == EXIT_FAILED
    error = " ".join(capsys.readouterr().err.split())
    assert "bwrap: No permissions to create new namespace" in error
    assert "set DAYTONA_API_KEY to run on Daytona's cloud" in error


@pytest.mark.usefixtures("host_without_namespaces")
def test_an_invalid_canvas_is_reported_as_such_while_the_local_server_could_not_start(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The server starts beside the engine's loading: its failure must not hide the canvas's own.
    document = make_canvas(
        [{"id": "exec", "component": "daytona.executeCode", "configuration": {"language": "python"}}],
        [("start", "exec")],
    )
    canvas = write_canvas(tmp_path, document)
    assert main(["run", str(canvas)]) == EXIT_FAILED
    error = " ".join(capsys.readouterr().err.split())
    assert "configuration.code" in error
    assert "bwrap" not in error


def test_a_canvas_of_built_in_components_only_starts_no_sandbox_server(
    tmp_path: Path, db: Path, web: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from daytonaflow.localserver import LocalServer

    started: list[LocalServer] = []
    monkeypatch.setattr(LocalServer, "start", lambda self: started.append(self) or self)
    monkeypatch.delenv("DAYTONA_API_KEY", raising=False)
    assert main(["run", str(write_canvas(tmp_path, fetch_canvas(web + "/hello")))]) == EXIT_OK
    assert started == []


def test_a_canvas_using_a_sandbox_component_starts_the_embedded_server(
    tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from daytonaflow.localserver import LocalServer, LocalServerError

    def refuse(self: LocalServer) -> LocalServer:
        raise LocalServerError("test: no server here")

    monkeypatch.setattr(LocalServer, "start", refuse)
    monkeypatch.delenv("DAYTONA_API_KEY", raising=False)
    assert main(["run", str(EXAMPLES / "hello.yaml")]) == EXIT_FAILED
    assert "test: no server here" in capsys.readouterr().err
