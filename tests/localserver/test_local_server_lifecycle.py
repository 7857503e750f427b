"""The server's own lifecycle: clean shutdown, restart adoption, the ``serve`` CLI."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from localserver_testkit import TEST_LIMITS, make_state_root

from daytonaflow.localserver import LocalServer, LocalServerError, _bwrap, running_server, sandboxes
from daytonaflow.localserver.agent_client import AgentClient
from daytonaflow.localserver.sandboxes import SandboxRecord, _agent_pid

pytestmark = pytest.mark.sandbox


@pytest.fixture
def state_dir() -> Iterator[Path]:
    root = make_state_root()
    yield root / "state"
    shutil.rmtree(root, ignore_errors=True)


def _processes_with(needle: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle.encode() in (entry / "cmdline").read_bytes().replace(b"\0", b" "):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _wait_gone(needle: str, within: float = 10.0) -> list[int]:
    deadline = time.monotonic() + within
    while (left := _processes_with(needle)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def _client(server_url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=server_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def _start_background_sleep(http: httpx.Client, toolbox_url: str, seconds: int) -> str:
    sandbox_id: str = http.post("/sandbox", json={}).json()["id"]
    result = http.post(
        f"{toolbox_url}/{sandbox_id}/process/execute",
        json={"command": f"echo kept > kept.txt; nohup sleep {seconds} >/dev/null 2>&1 &"},
    )
    assert result.status_code == 200
    assert _processes_with(f"sleep {seconds}")
    return sandbox_id


def test_stop_ends_every_sandbox_process(state_dir: Path) -> None:
    with (
        LocalServer(state_dir=state_dir, limits=TEST_LIMITS) as server,
        _client(server.api_url, server.api_key) as http,
    ):
        _start_background_sleep(http, server.toolbox_url, 4301)
    assert _wait_gone("sleep 4301") == []
    assert _processes_with(str(state_dir)) == []


def test_a_restarted_server_adopts_sandboxes_as_stopped_with_their_files(state_dir: Path) -> None:
    with (
        LocalServer(state_dir=state_dir, limits=TEST_LIMITS) as first,
        _client(first.api_url, first.api_key) as http,
    ):
        sandbox_id = _start_background_sleep(http, first.toolbox_url, 4302)
    with (
        LocalServer(state_dir=state_dir, limits=TEST_LIMITS) as second,
        _client(second.api_url, second.api_key) as http,
    ):
        assert second.adopted == [sandbox_id]
        assert http.get(f"/sandbox/{sandbox_id}").json()["state"] == "stopped"
        started = http.post(f"/sandbox/{sandbox_id}/start").json()
        assert started["state"] == "started", started
        result = http.post(
            f"{second.toolbox_url}/{sandbox_id}/process/execute", json={"command": "cat kept.txt"}
        )
        assert result.json()["result"] == "kept\n"
        assert _processes_with("sleep 4302") == []


def test_two_servers_cannot_share_a_state_directory(state_dir: Path) -> None:
    second = LocalServer(state_dir=state_dir, limits=TEST_LIMITS)
    with (
        LocalServer(state_dir=state_dir, limits=TEST_LIMITS),
        pytest.raises(LocalServerError, match="used by another server"),
    ):
        second.start()


def test_a_running_server_tells_other_commands_how_to_share_it(state_dir: Path) -> None:
    with LocalServer(state_dir=state_dir, limits=TEST_LIMITS) as server:
        shared = running_server(state_dir)
        assert shared is not None
        assert (shared.api_url, shared.api_key, shared.pid) == (server.api_url, server.api_key, os.getpid())
        # It holds the API key: for its owner's eyes only.
        assert (state_dir / "endpoint.json").stat().st_mode & 0o777 == 0o600
        headers = {"Authorization": f"Bearer {shared.api_key}"}
        assert httpx.get(f"{shared.api_url}/config", headers=headers).status_code == 200
    assert running_server(state_dir) is None
    assert not (state_dir / "endpoint.json").exists()


def test_an_endpoint_file_left_by_a_dead_server_is_not_used(state_dir: Path) -> None:
    with LocalServer(state_dir=state_dir, limits=TEST_LIMITS):
        left = (state_dir / "endpoint.json").read_text()
    (state_dir / "endpoint.json").write_text(left)
    assert running_server(state_dir, wait=0) is None


def test_a_configured_api_key_is_the_one_required(state_dir: Path) -> None:
    with LocalServer(state_dir=state_dir, api_key="fixed-key", limits=TEST_LIMITS) as server:
        assert server.api_key == "fixed-key"
        assert (
            httpx.get(f"{server.api_url}/config", headers={"Authorization": "Bearer fixed-key"}).status_code
            == 200
        )


def _serve(
    state_dir: Path, key_args: tuple[str, ...] = ("--api-key", "cli-key"), env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    command = "import sys; from daytonaflow.localserver.cli import main; sys.exit(main(sys.argv[1:]))"
    process = subprocess.Popen(
        [sys.executable, "-c", command, "--port", "0", *key_args, "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    banner = ""
    while "Serving" not in banner:
        line = process.stdout.readline()
        assert line, banner
        banner += line
    return process, banner


def _banner_value(banner: str, label: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in banner.splitlines() if line.startswith(label))


def test_serve_prints_url_key_and_limits_then_stops_cleanly_on_sigterm(state_dir: Path) -> None:
    process, banner = _serve(state_dir)
    api_url = _banner_value(banner, "API URL")
    assert _banner_value(banner, "API key") == "cli-key"
    assert "limit processes:" in banner
    assert "limit memory:" in banner
    with _client(api_url, "cli-key") as http:
        toolbox = http.get("/config").json()["proxyToolboxUrl"]
        _start_background_sleep(http, toolbox, 4303)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "Stopped." in output
    assert _wait_gone("sleep 4303") == []


def test_serve_takes_its_key_from_the_environment_keeping_it_out_of_the_process_list(
    state_dir: Path,
) -> None:
    env = {**os.environ, "DAYTONAFLOW_SERVE_API_KEY": "env-key"}
    process, banner = _serve(state_dir, key_args=(), env=env)
    try:
        assert _banner_value(banner, "API key") == "env-key"
        assert b"env-key" not in Path(f"/proc/{process.pid}/cmdline").read_bytes()
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert process.returncode == 0


def test_sandboxes_of_a_killed_server_die_with_it_and_are_adopted(state_dir: Path) -> None:
    process, banner = _serve(state_dir)
    with _client(_banner_value(banner, "API URL"), "cli-key") as http:
        toolbox = http.get("/config").json()["proxyToolboxUrl"]
        sandbox_id = _start_background_sleep(http, toolbox, 4304)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert _wait_gone("sleep 4304") == []
    with LocalServer(state_dir=state_dir, limits=TEST_LIMITS) as server:
        assert server.adopted == [sandbox_id]


def test_sandboxes_end_when_the_server_is_gone_even_without_bwraps_parent_death_signal(
    state_dir: Path,
) -> None:
    """A server killed between fork and bwrap arming --die-with-parent leaves bwrap running: the
    agent's lifeline (a pipe whose only write end the server holds) ends the sandbox anyway.
    Closing that write end is what the kernel does when the server dies."""
    with LocalServer(state_dir=state_dir, limits=TEST_LIMITS, keep_spare=False) as server:
        with _client(server.api_url, server.api_key) as http:
            sandbox_id = _start_background_sleep(http, server.toolbox_url, 4243)
        assert server.state is not None
        manager = server.state.manager
        bwrap = manager.running[sandbox_id].proc
        os.close(manager._lifeline_write)
        manager._lifeline_write = -1  # closed here; the fd number may be reused meanwhile
        assert _wait_gone("sleep 4243") == []
        bwrap.wait(timeout=10)


def _agents_under(state_dir: Path) -> list[int]:
    """Agents whose sandbox mounts come from ``state_dir`` (other servers' sandboxes excluded)."""
    found = []
    for pid in _processes_with("agent.pyc"):
        with contextlib.suppress(OSError):
            process = Path(f"/proc/{pid}")
            is_agent = (process / "comm").read_text().startswith("python")  # not bwrap, whose argv names it
            if is_agent and str(state_dir) in (process / "mountinfo").read_text():
                found.append(pid)
    return found


def test_a_sandbox_whose_server_dies_before_its_first_ping_ends_too(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent waits for the server's readiness ping watching its lifeline: a server gone
    before it pinged must not leave the agent waiting forever."""
    never_answered = threading.Event()

    async def ping_never_sent(self: AgentClient, op: str, **fields: Any) -> dict[str, Any]:
        never_answered.set()
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    monkeypatch.setattr(AgentClient, "call", ping_never_sent)
    with LocalServer(state_dir=state_dir, limits=TEST_LIMITS, keep_spare=False) as server:
        creating = threading.Thread(
            target=lambda: _client(server.api_url, server.api_key).post("/sandbox", json={}), daemon=True
        )
        creating.start()
        assert never_answered.wait(30)
        deadline = time.monotonic() + 30
        while not (agents := _agents_under(state_dir)):
            assert time.monotonic() < deadline, "the agent never started"
            time.sleep(0.05)
        assert server.state is not None
        manager = server.state.manager
        os.close(manager._lifeline_write)
        manager._lifeline_write = -1
        deadline = time.monotonic() + 10
        while _agents_under(state_dir):
            assert time.monotonic() < deadline, f"agents {agents} outlived their server's lifeline"
            time.sleep(0.05)


def test_limits_below_what_a_request_may_ask_for_still_create_and_restart_sandboxes(state_dir: Path) -> None:
    """Request ranges bound what a client asks for at the door; the server's own defaults and what
    a stored sandbox was given are applied as they are."""
    small = dataclasses.replace(TEST_LIMITS, memory_bytes=128 << 20, disk_bytes=32 << 20)
    with (
        LocalServer(state_dir=state_dir, limits=small, keep_spare=False) as server,
        _client(server.api_url, server.api_key) as http,
    ):
        created = http.post("/sandbox", json={})
        assert created.status_code == 200, created.text
        sandbox_id = created.json()["id"]
        assert http.post(f"/sandbox/{sandbox_id}/stop").status_code == 200
        started = http.post(f"/sandbox/{sandbox_id}/start")
        assert started.status_code == 200, started.text
        assert started.json()["state"] == "started"


class _SlowScan:
    """Stands in for one sandbox's disk scan: blocks until released, counting scans in progress."""

    def __init__(self, real: Any, slow_id: str) -> None:
        self.real, self.slow_id = real, slow_id
        self.started = threading.Event()
        self.release = threading.Event()
        self.in_progress = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self, record: SandboxRecord, running: Any) -> int:
        if record.id != self.slow_id:
            return int(self.real(record, running))
        with self._lock:
            self.in_progress += 1
            self.most_at_once = max(self.most_at_once, self.in_progress)
        self.started.set()
        try:
            self.release.wait(60)
            return int(self.real(record, running))
        finally:
            with self._lock:
                self.in_progress -= 1


@contextlib.contextmanager
def _one_slow_scan(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, str, str, _SlowScan]]:
    """An accounting-mode server (its monitor scans each home) with two sandboxes, the first of
    whose scans hangs until the test ends."""
    with (
        LocalServer(
            state_dir=state_dir,
            limits=TEST_LIMITS,
            keep_spare=False,
            monitor_interval=0.2,
            disk_mode="accounting",
        ) as server,
        _client(server.api_url, server.api_key) as http,
    ):
        assert server.state is not None
        manager = server.state.manager
        slow_id = http.post("/sandbox", json={}).json()["id"]
        other_id = http.post("/sandbox", json={}).json()["id"]
        scan = _SlowScan(manager._disk_used, slow_id)
        monkeypatch.setattr(manager, "_disk_used", scan)
        try:
            assert scan.started.wait(30), "the slow scan never began"
            yield manager, slow_id, other_id, scan
        finally:
            scan.release.set()


def _crash_and_wait_for_error(manager: Any, sandbox_id: str) -> None:
    manager.running[sandbox_id].proc.kill()
    deadline = time.monotonic() + 20  # a hundred monitor rounds, a third of the slow scan
    while manager.records[sandbox_id].state != "error":
        assert time.monotonic() < deadline, "the crash was not seen while a scan hung"
        time.sleep(0.05)
    assert "exited unexpectedly" in (manager.records[sandbox_id].error_reason or "")


def test_a_slow_disk_scan_of_one_sandbox_does_not_delay_crash_detection_of_another(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _one_slow_scan(state_dir, monkeypatch) as (manager, _slow_id, other_id, _scan):
        _crash_and_wait_for_error(manager, other_id)


def test_a_sandbox_whose_own_scan_hangs_still_has_its_crash_seen(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Likewise when every monitor thread is taken by hung scans: the crash check needs none."""
    with _one_slow_scan(state_dir, monkeypatch) as (manager, slow_id, _other_id, _scan):
        _crash_and_wait_for_error(manager, slow_id)


def test_a_sandbox_whose_check_still_runs_is_skipped_not_checked_again(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _one_slow_scan(state_dir, monkeypatch) as (_manager, _slow_id, _other_id, scan):
        time.sleep(2)  # ten monitor rounds
        assert scan.most_at_once == 1


# ---- sandbox processes are started and killed off the event loop --------------------------------


def _slowed(real: Any, entered: threading.Event, seconds: float) -> Any:
    def slow(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        time.sleep(seconds)
        return real(*args, **kwargs)

    return slow


def _listing_seconds(http: httpx.Client) -> float:
    began = time.monotonic()
    assert http.get("/sandbox").status_code == 200
    return time.monotonic() - began


def test_the_api_answers_while_a_sandbox_process_is_being_started(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A spawn waits for its forked child's exec (long on a busy host): not on the event loop."""
    entered = threading.Event()
    monkeypatch.setattr(sandboxes, "spawn", _slowed(sandboxes.spawn, entered, 3.0))
    with LocalServer(state_dir=state_dir, limits=TEST_LIMITS, keep_spare=False) as server:
        http = _client(server.api_url, server.api_key)
        creating = threading.Thread(target=lambda: http.post("/sandbox", json={}), daemon=True)
        creating.start()
        assert entered.wait(30)
        assert _listing_seconds(http) < 1.5
        creating.join(60)


def test_the_api_answers_while_a_sandbox_is_being_killed(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered = threading.Event()
    with LocalServer(state_dir=state_dir, limits=TEST_LIMITS, keep_spare=False) as server:
        http = _client(server.api_url, server.api_key)
        sandbox_id = http.post("/sandbox", json={}).json()["id"]
        assert server.state is not None
        manager = server.state.manager
        monkeypatch.setattr(manager, "_kill_process", _slowed(manager._kill_process, entered, 3.0))
        deleting = threading.Thread(target=lambda: http.delete(f"/sandbox/{sandbox_id}"), daemon=True)
        deleting.start()
        assert entered.wait(30)
        assert _listing_seconds(http) < 1.5
        deleting.join(60)


def test_creating_using_and_deleting_a_sandbox_never_waits_behind_the_default_executor(
    state_dir: Path,
) -> None:
    """Starts, cgroup joins and kills have executors of the server's own: a default thread pool
    kept busy (by anything else in the process) delays none of them."""
    with LocalServer(state_dir=state_dir, limits=TEST_LIMITS, keep_spare=False) as server:
        http = _client(server.api_url, server.api_key)
        loop = server._loop
        assert loop is not None
        release = threading.Event()
        for _ in range(64):
            loop.call_soon_threadsafe(loop.run_in_executor, None, release.wait, 30)
        try:
            began = time.monotonic()
            sandbox_id = http.post("/sandbox", json={}).json()["id"]
            ran = http.post(f"{server.toolbox_url}/{sandbox_id}/process/execute", json={"command": "echo ok"})
            assert ran.json()["result"] == "ok\n"
            assert http.delete(f"/sandbox/{sandbox_id}").status_code == 200
            assert time.monotonic() - began < 15
        finally:
            release.set()


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to a sandbox uid needs root")
@pytest.mark.parametrize("setpriv", [_bwrap.SETPRIV, None], ids=["setpriv", "popen-setuid"])
def test_a_root_server_runs_each_sandbox_as_its_own_uid_with_no_groups(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, setpriv: str | None
) -> None:
    if setpriv is None:
        monkeypatch.setattr(_bwrap, "SETPRIV", None)
    with LocalServer(state_dir=state_dir, limits=TEST_LIMITS, keep_spare=False) as server:
        http = _client(server.api_url, server.api_key)
        sandbox_id = http.post("/sandbox", json={}).json()["id"]
        assert server.state is not None
        manager = server.state.manager
        uid = manager.uids.of(sandbox_id)
        status = Path(f"/proc/{_agent_pid(manager.running[sandbox_id].proc.pid)}/status").read_text()
        fields = {line.split(":")[0]: line.split()[1:] for line in status.splitlines()}
        assert fields["Uid"] == [str(uid)] * 4
        assert fields["Gid"] == [str(uid)] * 4
        assert fields["Groups"] == []
        assert fields["CapEff"] == ["0000000000000000"]


def test_killing_a_spawned_sandbox_kills_the_child_bwrap_left_waiting_in_its_process_group() -> None:
    """bwrap killed before it gave its clone child the uid map leaves that child waiting on it
    forever (reparented to init, holding a copy of every host mount): the child is still in
    bwrap's process group, which the kill takes down. A shell and its background child stand in
    for bwrap and the waiting clone child."""
    parent = subprocess.Popen(
        ["sh", "-c", "sleep 4391 & echo $!; wait"], stdout=subprocess.PIPE, start_new_session=True
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    _bwrap.kill_spawned(parent)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _running(child):
        assert time.monotonic() < deadline, "the child outlived its killed parent"
        time.sleep(0.02)


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (its new parent, init, may not reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
