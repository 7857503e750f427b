"""``daytonaflow up`` as a user runs it: a real process on loopback, real HTTP requests to its
webhook URLs, the run database read afterwards. Canvases use core components only (no sandboxes)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from serve_process import daytonaflow_cli

from daytonaflow.runner import RunRecord, RunStore
from daytonaflow.runner.triggers import armed_triggers

SECRET = "hook-secret-value-7f3a"
_URL = re.compile(r"POST (?P<url>http://\S+)")


def hook_canvas(path: Path, *, action: dict[str, Any] | None = None, name: str = "hooked") -> Path:
    path.write_text(
        json.dumps(
            {
                "metadata": {"name": name},
                "spec": {
                    "nodes": [
                        {
                            "id": "push",
                            "name": "Push",
                            "type": "TYPE_TRIGGER",
                            "component": "webhook",
                            "configuration": {"secret": {"secret": "hook", "key": "KEY"}},
                        },
                        action or {"id": "done", "name": "Done", "component": "noop"},
                    ],
                    "edges": [{"sourceId": "push", "targetId": (action or {"id": "done"})["id"]}],
                },
            }
        )
    )
    return path


def pause(seconds: int) -> dict[str, Any]:
    return {"id": "pause", "name": "Pause", "component": "wait", "configuration": {"waitFor": seconds}}


@dataclass
class Up:
    process: subprocess.Popen[str]
    db: Path
    url: str
    output: list[str] = field(default_factory=list)

    def post(
        self, body: bytes, *, secret: str = SECRET, url: str | None = None, **headers: str
    ) -> httpx.Response:
        signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        sent = {"X-Signature-256": f"sha256={signature}", "Content-Type": "application/json", **headers}
        return httpx.post(url or self.url, content=body, headers=sent, timeout=10)

    def stop(self) -> tuple[int, str]:
        """SIGTERM; the exit code and everything it printed."""
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        return code, "".join(self.output)


def _drain(process: subprocess.Popen[str], output: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)


@contextlib.contextmanager
def running_up(canvas: Path, db: Path, *args: str, env: Mapping[str, str] | None = None) -> Iterator[Up]:
    """``up`` on ``canvas``; ``env`` adds to the environment (secrets, a backend)."""
    env = {
        **os.environ,
        "DAYTONAFLOW_SECRET_HOOK_KEY": SECRET,
        "NO_COLOR": "1",
        "COLUMNS": "200",
        **(env or {}),
    }
    process = subprocess.Popen(
        [daytonaflow_cli(), "up", str(canvas), "--db", str(db), "--port", "0", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        url = None
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            found = _URL.search(line)
            url = found["url"] if found else None
        assert url is not None, "".join(output)
        threading.Thread(target=_drain, args=(process, output), daemon=True).start()
        yield Up(process, db, url, output)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def runs(db: Path) -> list[RunRecord]:
    with RunStore(db) as store:
        return store.list_runs()


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def finished(db: Path, count: int) -> Callable[[], bool]:
    return lambda: len([r for r in runs(db) if r.finished]) >= count


def test_a_signed_request_starts_one_run_with_its_body_as_the_event_data(tmp_path: Path) -> None:
    with running_up(hook_canvas(tmp_path / "hook.json"), tmp_path / "runs.db") as up:
        assert up.url.endswith("/webhooks/hooked/push")
        reply = up.post(b'{"ref": "main", "commits": 2}', **{"X-Event": "push"})
        assert reply.status_code == 202
        assert reply.json()["status"] == "queued"
        wait_for(finished(up.db, 1))
        code, _ = up.stop()
    (record,) = runs(tmp_path / "runs.db")
    assert record.status == "succeeded"
    assert record.canvas_name == "hooked"
    assert record.input["body"] == {"ref": "main", "commits": 2}
    assert record.input["headers"]["X-Event"] == ["push"]
    with RunStore(tmp_path / "runs.db") as store:
        (trigger,) = [event for event in store.events(record.id) if event.node_id == "push"]
        (queued,) = store.trigger_events("hooked")
    assert trigger.event["type"] == "webhook"
    assert (queued.id, queued.run_id) == (reply.json()["eventId"], record.id)
    assert code == 0


def test_a_wrong_signature_gets_401_and_starts_nothing(tmp_path: Path) -> None:
    with running_up(hook_canvas(tmp_path / "hook.json"), tmp_path / "runs.db") as up:
        wrong = up.post(b'{"ref": "main"}', secret="a-guess")
        missing = httpx.post(up.url, content=b'{"ref": "main"}', timeout=10)
        assert (wrong.status_code, wrong.json()) == (401, {"message": "invalid signature"})
        assert missing.status_code == 401
        code, output = up.stop()
    assert code == 0
    assert runs(tmp_path / "runs.db") == []
    with RunStore(tmp_path / "runs.db") as store:
        assert store.trigger_events("hooked") == []
    assert SECRET not in output


def test_unknown_canvases_and_nodes_get_404(tmp_path: Path) -> None:
    with running_up(hook_canvas(tmp_path / "hook.json"), tmp_path / "runs.db") as up:
        base = up.url.rsplit("/webhooks/", 1)[0]
        assert up.post(b"{}", url=f"{base}/webhooks/other/push").status_code == 404
        assert up.post(b"{}", url=f"{base}/webhooks/hooked/done").status_code == 404
        up.stop()
    assert runs(tmp_path / "runs.db") == []


def test_a_body_over_512_kib_gets_413_and_starts_nothing(tmp_path: Path) -> None:
    with running_up(hook_canvas(tmp_path / "hook.json"), tmp_path / "runs.db") as up:
        big = json.dumps({"blob": "x" * (512 * 1024)}).encode()
        assert up.post(big).status_code == 413
        # Sent in chunks, without a Content-Length to refuse it by: cut off once past the bound.
        chunks = (big[i : i + 65536] for i in range(0, len(big), 65536))
        streamed = httpx.post(up.url, content=chunks, headers={"X-Signature-256": "sha256=00"}, timeout=10)
        assert streamed.status_code == 413
        # Exactly at the bound is accepted.
        at_bound = json.dumps({"blob": "x" * (512 * 1024 - 12)}).encode()
        assert len(at_bound) == 512 * 1024
        assert up.post(at_bound).status_code == 202
        wait_for(finished(up.db, 1))
        up.stop()
    assert len(runs(tmp_path / "runs.db")) == 1


def test_a_body_that_is_not_json_gets_400(tmp_path: Path) -> None:
    with running_up(hook_canvas(tmp_path / "hook.json"), tmp_path / "runs.db") as up:
        reply = up.post(b"ref=main")
        up.stop()
    assert (reply.status_code, reply.json()) == (400, {"message": "the body is not JSON"})
    assert runs(tmp_path / "runs.db") == []


def test_events_beyond_the_concurrency_limit_wait_and_run_one_after_another(tmp_path: Path) -> None:
    canvas = hook_canvas(tmp_path / "hook.json", action=pause(1))
    with running_up(canvas, tmp_path / "runs.db", "--max-concurrent-runs", "1") as up:
        replies = [up.post(json.dumps({"n": n}).encode()) for n in range(3)]
        assert [reply.status_code for reply in replies] == [202, 202, 202]
        wait_for(finished(up.db, 3))
        up.stop()
    records = sorted(runs(tmp_path / "runs.db"), key=lambda record: record.created_at)
    assert [record.input["body"]["n"] for record in records] == [0, 1, 2]
    assert all(record.status == "succeeded" for record in records)
    for earlier, later in itertools.pairwise(records):
        assert earlier.finished_at is not None and later.created_at >= earlier.finished_at


def test_an_accepted_event_survives_a_restart_and_runs_exactly_once(tmp_path: Path) -> None:
    canvas = hook_canvas(tmp_path / "hook.json", action=pause(1))
    db = tmp_path / "runs.db"
    with running_up(canvas, db, "--max-concurrent-runs", "1") as up:
        assert [up.post(json.dumps({"n": n}).encode()).status_code for n in range(2)] == [202, 202]
        code, _ = up.stop()
    assert code == 0
    with RunStore(db) as store:
        # Stopped mid-way: the first run unfinished on disk, the second event still queued.
        assert [event.status for event in store.trigger_events("hooked")] == ["started", "queued"]
    with running_up(canvas, db, "--max-concurrent-runs", "1") as up:
        wait_for(finished(db, 2))
        up.stop()
    records = runs(db)
    assert sorted(record.input["body"]["n"] for record in records) == [0, 1]
    assert all(record.status == "succeeded" for record in records)


def test_sigterm_stops_it_cleanly(tmp_path: Path) -> None:
    with running_up(hook_canvas(tmp_path / "hook.json"), tmp_path / "runs.db") as up:
        code, output = up.stop()
    assert code == 0
    assert "Traceback" not in output
    assert output.rstrip().endswith("daytonaflow up: stopped")


def test_it_prints_the_armed_triggers(tmp_path: Path) -> None:
    canvas = tmp_path / "both.json"
    document = json.loads(hook_canvas(tmp_path / "hook.json").read_text())
    document["spec"]["nodes"].append(
        {
            "id": "nightly",
            "type": "TYPE_TRIGGER",
            "component": "schedule",
            "configuration": {"type": "cron", "cronExpression": "0 3 1 1 *", "timezone": "0"},
        }
    )
    document["spec"]["edges"].append({"sourceId": "nightly", "targetId": "done"})
    canvas.write_text(json.dumps(document))
    with running_up(canvas, tmp_path / "runs.db") as up:
        listed = httpx.get(up.url.rsplit("/webhooks/", 1)[0] + "/triggers", timeout=10).json()
        with RunStore(tmp_path / "runs.db") as store:
            # What the UI shows while `up` runs.
            shown = armed_triggers(store, "hooked")
        _, output = up.stop()
    assert shown == [
        {"nodeId": "push", "component": "webhook", "url": up.url},
        {"nodeId": "nightly", "component": "schedule", "nextFire": listed["triggers"][1]["nextFire"]},
    ]
    with RunStore(tmp_path / "runs.db") as store:
        assert armed_triggers(store, "hooked") == []
    assert "hooked / push (webhook): POST http://127.0.0.1:" in output
    assert re.search(r"hooked / nightly \(schedule\): next fire \d{4}-01-01T03:00:00Z", output)
    assert [trigger["nodeId"] for trigger in listed["triggers"]] == ["push", "nightly"]


def test_a_bad_canvas_is_a_clear_error_without_traceback(tmp_path: Path) -> None:
    canvas = tmp_path / "bad.json"
    document = json.loads(hook_canvas(tmp_path / "hook.json").read_text())
    document["spec"]["nodes"][0]["configuration"] = {"authentication": "signature"}
    canvas.write_text(json.dumps(document))
    result = subprocess.run(
        [daytonaflow_cli(), "up", str(canvas), "--db", str(tmp_path / "runs.db"), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "300"},
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert str(canvas) in result.stderr
    assert (
        'node "Push" (id push) field "configuration.secret": is required when authentication' in result.stderr
    )


def test_a_canvas_without_schedule_or_webhook_is_refused(tmp_path: Path) -> None:
    canvas = tmp_path / "manual.json"
    canvas.write_text(
        json.dumps(
            {
                "metadata": {"name": "manual"},
                "spec": {
                    "nodes": [{"id": "start", "type": "TYPE_TRIGGER", "component": "start"}],
                    "edges": [],
                },
            }
        )
    )
    result = subprocess.run(
        [daytonaflow_cli(), "up", str(canvas), "--db", str(tmp_path / "runs.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "no schedule or webhook trigger" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_second_up_on_the_same_database_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    canvas = hook_canvas(tmp_path / "hook.json")
    with running_up(canvas, tmp_path / "runs.db") as up:
        second = subprocess.run(
            [daytonaflow_cli(), "up", str(canvas), "--db", str(up.db), "--port", "0"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "DAYTONAFLOW_SECRET_HOOK_KEY": SECRET, "NO_COLOR": "1", "COLUMNS": "300"},
        )
        # The first one still serves, its armed triggers untouched.
        with RunStore(up.db) as store:
            assert [trigger["url"] for trigger in armed_triggers(store, "hooked")] == [up.url]
        assert up.post(b"{}").status_code == 202
        up.stop()
    assert second.returncode == 1
    assert "Traceback" not in second.stderr
    assert f"{up.db}: another `daytonaflow up` (pid {up.process.pid}) keeps this run database's" in (
        second.stderr.replace("\n", " ")
    )
