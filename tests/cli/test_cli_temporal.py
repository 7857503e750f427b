"""`daytonaflow worker`, `run --engine temporal` and `runs --engine temporal` against a real Temporal
dev server and real worker processes: the same progress, tables, documents and exit codes as the
embedded engine."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from sandbox_dirs import traversable_temp_dir
from temporal_testkit import WorkerProcess

from daytonaflow.cli import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, main

#: These canvases use core components only: their workers never call a sandbox backend, and point at
#: a loopback port nothing listens on, so a call would fail the run instead of passing unseen.
NO_BACKEND = {"DAYTONA_API_KEY": "never-used", "DAYTONA_API_URL": "http://127.0.0.1:9/api"}
#: How long a step of a run may take on a loaded machine before a test gives up.
DEADLINE = 120.0
Capture = pytest.CaptureFixture[str]
#: The ``start_worker`` fixture (tests/cli/conftest.py): a task queue and an environment.
StartWorker = Callable[[str, dict[str, str]], WorkerProcess]
IS_ONE = "root().data.n == 1"


def canvas_document(
    name: str, nodes: list[dict[str, Any]], edges: list[tuple[str, str, str]]
) -> dict[str, Any]:
    start = {"id": "start", "name": "Manual Run", "type": "TYPE_TRIGGER", "component": "start"}
    return {
        "apiVersion": "v1",
        "kind": "Canvas",
        "metadata": {"name": name},
        "spec": {
            "nodes": [start, *({"type": "TYPE_ACTION", "configuration": {}, **node} for node in nodes)],
            "edges": [{"sourceId": s, "targetId": t, "channel": c} for s, t, c in edges],
        },
    }


def write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / f"{document['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def relay(tmp_path: Path) -> Path:
    """start → noop → if (true) → noop: routing by channel, no sandbox."""
    return write(
        tmp_path,
        canvas_document(
            "relay",
            [
                {"id": "pass", "name": "Pass", "component": "noop"},
                {
                    "id": "check",
                    "name": "Check",
                    "component": "if",
                    "configuration": {"expression": "root().data.n == 1"},
                },
                {"id": "done", "name": "Done", "component": "noop"},
            ],
            [("start", "pass", "default"), ("pass", "check", "default"), ("check", "done", "true")],
        ),
    )


def failing(tmp_path: Path) -> Path:
    """A countdown to a moment long past: the wait node fails, and with it the run."""
    return write(
        tmp_path,
        canvas_document(
            "late",
            [
                {"id": "pass", "name": "Pass", "component": "noop"},
                {
                    "id": "late",
                    "name": "Too Late",
                    "component": "wait",
                    "configuration": {"mode": "countdown", "waitUntil": "2000-01-01T00:00:00Z"},
                },
            ],
            [("start", "pass", "default"), ("pass", "late", "default")],
        ),
    )


def waiting(tmp_path: Path) -> Path:
    """A wait of ten minutes: a run that is still going when the test cancels it."""
    return write(
        tmp_path,
        canvas_document(
            "pause",
            [{"id": "pause", "name": "Pause", "component": "wait", "configuration": {"waitFor": "600"}}],
            [("start", "pause", "default")],
        ),
    )


def normalized(text: str) -> list[str]:
    """Output with what differs from run to run (ids, durations, where the run lives) blanked."""
    text = re.sub(r" --temporal 127\.0\.0\.1:\d+", "", text)
    text = re.sub(r"\b[0-9a-f]{12}\b", "RUN", text)
    text = re.sub(r"\b\d+(\.\d+)? (ms|s|min)\b", "TIME", text)
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "WHEN", text)
    # A table's columns are as wide as their widest value: "9 ms" and "65 ms" draw lines apart.
    text = re.sub(r"─+", "─", re.sub(r"━+", "━", re.sub(r" +", " ", text)))
    return [line.rstrip() for line in text.splitlines()]


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def on_temporal(temporal_server: str, task_queue: str) -> list[str]:
    """The options that send a command to the test's dev server and task queue."""
    return ["--temporal", temporal_server, "--task-queue", task_queue]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


@pytest.fixture
def worker(start_worker: StartWorker, task_queue: str) -> WorkerProcess:
    return start_worker(task_queue, NO_BACKEND).wait_ready()


def daytonaflow(*argv: str, **popen: Any) -> subprocess.Popen[str]:
    """A real `daytonaflow` process (for what needs signals or runs alongside the test)."""
    cli = str(Path(sys.executable).parent / "daytonaflow")
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([cli, *argv], env=environment, text=True, **popen)


def wait_for_line(path: Path, wanted: Callable[[str], bool], process: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        for line in path.read_text(errors="replace").splitlines():
            if wanted(line):
                return line
        assert process.poll() is None, f"exited {process.returncode}: {path.read_text()}"
        time.sleep(0.1)
    raise AssertionError(f"no such line within {DEADLINE} s: {path.read_text()}")


def start_pausing_run(tmp_path: Path, on_temporal: list[str]) -> tuple[subprocess.Popen[str], str]:
    """`daytonaflow run --json` of the waiting canvas, once its wait node waits; and the run id."""
    out = tmp_path / "run.jsonl"
    with out.open("w") as stdout:
        process = daytonaflow("run", str(waiting(tmp_path)), *on_temporal, "--json", stdout=stdout)
    line = wait_for_line(out, lambda text: '"kind":"node.waiting"' in text, process)
    return process, json.loads(line)["run_id"]


def test_the_worker_says_once_it_is_ready_where_it_polls(
    worker: WorkerProcess, temporal_server: str, task_queue: str
) -> None:
    ready = [line for line in worker.log().splitlines() if line.startswith("worker ready:")]
    assert ready == [f"worker ready: task queue {task_queue} on {temporal_server} (namespace default)"]


@pytest.mark.sandbox
def test_a_worker_on_an_embedded_server_of_its_own_says_workers_must_share_one_backend(
    start_worker: StartWorker, task_queue: str
) -> None:
    with traversable_temp_dir("daytonaflow-cli-worker-") as state:
        # No DAYTONA_API_KEY: the worker starts the embedded server, as `daytonaflow run` would.
        worker = start_worker(task_queue, {"DAYTONA_API_KEY": "", "XDG_DATA_HOME": str(state)})
        worker.wait_ready()
        note = next(line for line in worker.log().splitlines() if line.startswith("note:"))
        assert "sandboxes run on this machine's embedded server (http://127.0.0.1:" in note
        assert "Several workers must share one backend: point them all at one `daytonaflow serve`" in note
        assert worker.stop() == 0


def test_a_worker_stopped_with_sigterm_exits_0(worker: WorkerProcess) -> None:
    assert worker.stop() == 0, worker.log()


def test_a_run_on_temporal_shows_the_embedded_engines_progress_and_summary(
    tmp_path: Path, db: Path, worker: WorkerProcess, on_temporal: list[str], capsys: Capture
) -> None:
    canvas = str(relay(tmp_path))
    assert main(["run", canvas, "--db", str(db), "--input", '{"n": 1}']) == EXIT_OK
    embedded = capsys.readouterr().out
    assert main(["run", canvas, *on_temporal, "--input", '{"n": 1}']) == EXIT_OK
    temporal = capsys.readouterr().out
    assert "Done [noop] emitted on default" in temporal
    assert normalized(temporal) == normalized(embedded)


def test_a_failing_node_fails_the_run_on_temporal_as_on_embedded(
    tmp_path: Path, db: Path, worker: WorkerProcess, on_temporal: list[str], capsys: Capture
) -> None:
    canvas = str(failing(tmp_path))
    assert main(["run", canvas, "--db", str(db)]) == EXIT_FAILED
    embedded = capsys.readouterr().out
    assert main(["run", canvas, *on_temporal]) == EXIT_FAILED
    temporal = capsys.readouterr().out
    assert "Too Late [wait] failed" in temporal
    assert normalized(temporal) == normalized(embedded)


def test_json_progress_on_temporal_has_the_embedded_engines_kinds_and_fields(
    tmp_path: Path, db: Path, worker: WorkerProcess, on_temporal: list[str], capsys: Capture
) -> None:
    canvas = str(relay(tmp_path))
    assert main(["run", canvas, "--db", str(db), "--input", '{"n": 1}', "--json"]) == EXIT_OK
    embedded = json_lines(capsys.readouterr().out)
    assert main(["run", canvas, *on_temporal, "--input", '{"n": 1}', "--json"]) == EXIT_OK
    temporal = json_lines(capsys.readouterr().out)
    assert [(line["kind"], sorted(line)) for line in temporal] == [
        (line["kind"], sorted(line)) for line in embedded
    ]
    assert temporal[-1]["status"] == "succeeded"


def test_runs_on_temporal_lists_a_finished_run(
    tmp_path: Path, worker: WorkerProcess, on_temporal: list[str], capsys: Capture
) -> None:
    assert main(["run", str(relay(tmp_path)), *on_temporal, "--input", '{"n": 1}', "--json"]) == EXIT_OK
    run_id = json_lines(capsys.readouterr().out)[0]["run_id"]
    assert main(["runs", *on_temporal, "--json"]) == EXIT_OK
    listed = {run["id"]: run for run in json.loads(capsys.readouterr().out)}
    assert listed[run_id]["canvas"] == "relay"
    assert listed[run_id]["status"] == "succeeded"
    assert main(["runs", "list", *on_temporal]) == EXIT_OK
    assert run_id in capsys.readouterr().out


def test_runs_show_of_a_temporal_run_draws_the_embedded_engines_tables(
    tmp_path: Path, db: Path, worker: WorkerProcess, on_temporal: list[str], capsys: Capture
) -> None:
    canvas = str(relay(tmp_path))
    assert main(["run", canvas, "--db", str(db), "--input", '{"n": 1}', "--json"]) == EXIT_OK
    embedded_id = json_lines(capsys.readouterr().out)[0]["run_id"]
    assert main(["run", canvas, *on_temporal, "--input", '{"n": 1}', "--json"]) == EXIT_OK
    temporal_id = json_lines(capsys.readouterr().out)[0]["run_id"]
    assert main(["runs", "show", embedded_id, "--db", str(db)]) == EXIT_OK
    embedded = capsys.readouterr().out
    # A prefix finds a Temporal run too, as it finds one in the run database.
    assert main(["runs", "show", temporal_id[:8], *on_temporal]) == EXIT_OK
    temporal = capsys.readouterr().out
    assert "Check" in temporal and "if.executed" in temporal
    assert normalized(temporal) == normalized(embedded)


def test_runs_show_json_of_a_temporal_run_is_the_embedded_engines_document(
    tmp_path: Path, db: Path, worker: WorkerProcess, on_temporal: list[str], capsys: Capture
) -> None:
    canvas = str(relay(tmp_path))
    documents = []
    for where in (["--db", str(db)], on_temporal):
        assert main(["run", canvas, *where, "--input", '{"n": 1}', "--json"]) == EXIT_OK
        run_id = json_lines(capsys.readouterr().out)[0]["run_id"]
        assert main(["runs", "show", run_id, *where, "--json"]) == EXIT_OK
        documents.append(json.loads(capsys.readouterr().out))
    embedded, temporal = documents
    assert sorted(temporal) == sorted(embedded)
    assert sorted(temporal["run"]) == sorted(embedded["run"])
    for table in ("executions", "events"):
        assert [sorted(row) for row in temporal[table]] == [sorted(row) for row in embedded[table]]
    shape = [(e["node"], e["status"], e["channel"]) for e in embedded["executions"]]
    assert [(e["node"], e["status"], e["channel"]) for e in temporal["executions"]] == shape
    assert [e["event"]["data"] for e in temporal["events"]] == [
        e["event"]["data"] for e in embedded["events"]
    ]


def test_runs_cancel_ends_a_waiting_run_cancelled(
    tmp_path: Path, worker: WorkerProcess, on_temporal: list[str], capsys: Capture
) -> None:
    process, run_id = start_pausing_run(tmp_path, on_temporal)
    try:
        assert main(["runs", "cancel", run_id, *on_temporal]) == EXIT_OK
        assert capsys.readouterr().out.strip() == f"run {run_id} (pause): cancelled"
        # The process watching the run sees it end cancelled, as after its own Ctrl-C.
        assert process.wait(DEADLINE) == EXIT_CANCELLED
    finally:
        process.kill()
    assert main(["runs", "show", run_id, *on_temporal, "--json"]) == EXIT_OK
    document = json.loads(capsys.readouterr().out)
    assert document["run"]["status"] == "cancelled"
    assert {e["node"]: e["status"] for e in document["executions"]}["pause"] == "cancelled"


def test_runs_cancel_of_a_finished_run_says_there_is_nothing_to_cancel(
    tmp_path: Path, worker: WorkerProcess, on_temporal: list[str], capsys: Capture
) -> None:
    assert main(["run", str(relay(tmp_path)), *on_temporal, "--input", '{"n": 1}', "--json"]) == EXIT_OK
    run_id = json_lines(capsys.readouterr().out)[0]["run_id"]
    assert main(["runs", "cancel", run_id, *on_temporal]) == EXIT_FAILED
    assert f"run {run_id} already finished (succeeded): nothing to cancel" in capsys.readouterr().err


def test_ctrl_c_cancels_a_run_on_temporal(
    tmp_path: Path, worker: WorkerProcess, on_temporal: list[str], capsys: Capture
) -> None:
    process, run_id = start_pausing_run(tmp_path, on_temporal)
    try:
        process.send_signal(signal.SIGINT)
        assert process.wait(DEADLINE) == EXIT_CANCELLED
    finally:
        process.kill()
    events = json_lines((tmp_path / "run.jsonl").read_text())
    assert events[-1]["kind"] == "run.finished" and events[-1]["status"] == "cancelled"
    assert main(["runs", "show", run_id, *on_temporal, "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["run"]["status"] == "cancelled"


def test_a_run_no_worker_polls_for_warns_with_the_command_that_starts_one(
    tmp_path: Path, start_worker: StartWorker, on_temporal: list[str], task_queue: str
) -> None:
    errors = tmp_path / "run.err"
    with errors.open("w") as stderr:
        process = daytonaflow(
            "run",
            str(relay(tmp_path)),
            *on_temporal,
            "--input",
            '{"n": 1}',
            "--json",
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        warning = wait_for_line(errors, lambda line: line.startswith("warning: no worker polls"), process)
        assert f"task queue {task_queue} on" in warning
        command = shlex.split(warning.split("Start one: ", 1)[1])
        worker = start_worker(task_queue, NO_BACKEND)
        # The very command the warning gives starts the worker the run was waiting for.
        assert command == ["daytonaflow", *worker.command[1:]]
        worker.wait_ready()
        assert process.wait(DEADLINE) == EXIT_OK
    finally:
        process.kill()
