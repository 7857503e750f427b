"""The official Python SDK's process calls (``sandbox.process``) against a real ``daytonaflow serve``.

Runs against the SDK in the venv and, with ``PYTHONPATH=/tmp/sdk-old``, the oldest one claimed
(0.129.0); a test branches on the version only where the SDK's own API differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import time
import uuid
from collections.abc import Iterator

import pytest
from daytona import AsyncDaytona, CodeRunParams, DaytonaError, Sandbox, SessionExecuteRequest
from daytona_toolbox_api_client.exceptions import ApiException

_SDK = tuple(int(part) for part in importlib.metadata.version("daytona").split(".")[:2])
# Leeway for a loaded machine: the timeout must fire neither early nor late by half a second.
_EARLY, _LATE = 0.1, 0.5


@pytest.fixture
def session_id(shared_sandbox: Sandbox) -> Iterator[str]:
    name = f"s-{uuid.uuid4().hex[:10]}"
    shared_sandbox.process.create_session(name)
    yield name
    with contextlib.suppress(DaytonaError):  # the test may have deleted it itself
        shared_sandbox.process.delete_session(name)


def _wait_for_exit(sandbox: Sandbox, session: str, command_id: str, within: float = 60.0) -> int:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        exit_code = sandbox.process.get_session_command(session, command_id).exit_code
        if exit_code is not None:
            return exit_code
        time.sleep(0.05)
    raise AssertionError(f"command {command_id} did not end within {within}s")


def _timed_out_after(run: object, seconds: int) -> float:
    """How long ``run()`` took to raise the SDK's timeout error (best of two on a busy machine)."""
    elapsed = []
    for _ in range(2):
        started = time.monotonic()
        # code_run passes the toolbox's 408 on as the generated client's ApiException.
        with pytest.raises((DaytonaError, ApiException), match=r"(?i)timeout"):
            run()  # type: ignore[operator]
        elapsed.append(time.monotonic() - started)
        if seconds - _EARLY <= elapsed[-1] < seconds + _LATE:
            break
    return min(elapsed)


# ---- exec --------------------------------------------------------------------------------------------------


def test_exec_returns_the_exit_code_and_output(shared_sandbox: Sandbox) -> None:
    response = shared_sandbox.process.exec("echo out; echo err >&2; exit 3")
    assert response.exit_code == 3
    assert response.result.split() == ["out", "err"]
    assert response.artifacts.stdout == response.result


def test_exec_honours_cwd_and_env(shared_sandbox: Sandbox) -> None:
    response = shared_sandbox.process.exec("pwd; echo $GREETING", cwd="/tmp", env={"GREETING": "hi-there"})
    assert response.exit_code == 0
    assert response.result.split("\n")[:2] == ["/tmp", "hi-there"]


def test_exec_timeout_ends_on_time_and_kills_the_process_group(shared_sandbox: Sandbox) -> None:
    seconds = 1000 + uuid.uuid4().int % 1000  # a sleep no other test runs, to find its survivors

    def run() -> None:
        shared_sandbox.process.exec(f"sleep {seconds} & sleep {seconds}", timeout=2)

    elapsed = _timed_out_after(run, 2)
    assert 2 - _EARLY <= elapsed < 2 + _LATE
    processes = shared_sandbox.process.exec("ps -eo args").result.splitlines()
    assert f"sleep {seconds}" not in processes


def test_exec_timeout_raises_the_sdks_timeout_error(shared_sandbox: Sandbox) -> None:
    import daytona

    # 0.129 maps no status to an error class; 0.226 picks its class by the error's source and code.
    expected = getattr(daytona, "DaytonaProcessExecutionTimeoutError", DaytonaError)
    with pytest.raises(expected, match="timeout"):
        shared_sandbox.process.exec("sleep 30", timeout=1)


# ---- code_run ----------------------------------------------------------------------------------------------


def test_code_run_runs_python_with_argv_and_env(shared_sandbox: Sandbox) -> None:
    code = "import os, sys\nprint(sys.argv[1:], os.environ['WHO'])\nsys.exit(4)"
    response = shared_sandbox.process.code_run(code, params=CodeRunParams(argv=["a", "b"], env={"WHO": "me"}))
    assert response.exit_code == 4
    assert response.result.strip() == "['a', 'b'] me"


def test_code_run_result_has_no_charts_artifacts(shared_sandbox: Sandbox) -> None:
    response = shared_sandbox.process.code_run("print('plain')")
    assert response.artifacts.stdout.strip() == "plain"
    assert response.artifacts.charts == []


def test_code_run_timeout_ends_on_time(shared_sandbox: Sandbox) -> None:
    def run() -> None:
        shared_sandbox.process.code_run("import time\ntime.sleep(300)", timeout=2)

    elapsed = _timed_out_after(run, 2)
    assert 2 - _EARLY <= elapsed < 2 + _LATE


# ---- sessions ----------------------------------------------------------------------------------------------


def test_create_session_then_get_session_and_list_sessions(shared_sandbox: Sandbox, session_id: str) -> None:
    session = shared_sandbox.process.get_session(session_id)
    assert (session.session_id, session.commands) == (session_id, [])
    assert session_id in [s.session_id for s in shared_sandbox.process.list_sessions()]


def test_execute_session_command_splits_stdout_and_stderr(shared_sandbox: Sandbox, session_id: str) -> None:
    request = SessionExecuteRequest(command="echo out; echo err >&2; exit 5")
    response = shared_sandbox.process.execute_session_command(session_id, request)
    assert response.exit_code == 5
    assert (response.stdout, response.stderr) == ("out\n", "err\n")
    assert response.cmd_id


def test_session_commands_share_cwd_and_environment(shared_sandbox: Sandbox, session_id: str) -> None:
    for command in ("cd /tmp", "export KEPT=yes"):
        shared_sandbox.process.execute_session_command(session_id, SessionExecuteRequest(command=command))
    response = shared_sandbox.process.execute_session_command(
        session_id, SessionExecuteRequest(command="echo $(pwd) $KEPT")
    )
    assert response.stdout == "/tmp yes\n"


def test_run_async_then_get_session_command_and_its_logs(shared_sandbox: Sandbox, session_id: str) -> None:
    request = SessionExecuteRequest(
        command="echo o1; echo e1 >&2; sleep 0.3; echo o2; exit 2", run_async=True
    )
    started = shared_sandbox.process.execute_session_command(session_id, request)
    assert started.exit_code is None
    assert _wait_for_exit(shared_sandbox, session_id, started.cmd_id) == 2
    command = shared_sandbox.process.get_session_command(session_id, started.cmd_id)
    assert command.command == request.command
    logs = shared_sandbox.process.get_session_command_logs(session_id, started.cmd_id)
    assert (logs.stdout, logs.stderr) == ("o1\no2\n", "e1\n")


def test_var_async_the_deprecated_spelling_runs_asynchronously_too(
    shared_sandbox: Sandbox, session_id: str
) -> None:
    with pytest.warns(DeprecationWarning):
        request = SessionExecuteRequest(command="sleep 0.2; echo late", var_async=True)
    started = shared_sandbox.process.execute_session_command(session_id, request)
    assert started.exit_code is None
    assert _wait_for_exit(shared_sandbox, session_id, started.cmd_id) == 0
    assert shared_sandbox.process.get_session_command_logs(session_id, started.cmd_id).stdout == "late\n"


def test_get_session_command_logs_async_streams_each_stream_live(
    shared_sandbox: Sandbox, session_id: str
) -> None:
    command = "echo first; echo oops >&2; sleep 1; echo second"
    started = shared_sandbox.process.execute_session_command(
        session_id, SessionExecuteRequest(command=command, run_async=True)
    )
    stdout: list[tuple[float, str]] = []
    stderr: list[str] = []

    async def follow() -> None:
        await shared_sandbox.process.get_session_command_logs_async(
            session_id,
            started.cmd_id,
            lambda chunk: stdout.append((time.monotonic(), chunk)),
            stderr.append,
        )

    asyncio.run(follow())
    ended = time.monotonic()
    assert "".join(chunk for _, chunk in stdout) == "first\nsecond\n"
    assert "".join(stderr) == "oops\n"
    # The first line came while the command still slept: streamed, not sent at the end.
    assert ended - stdout[0][0] >= 0.5


def test_delete_session_removes_it(shared_sandbox: Sandbox, session_id: str) -> None:
    shared_sandbox.process.delete_session(session_id)
    with pytest.raises(DaytonaError, match="not found"):
        shared_sandbox.process.get_session(session_id)
    assert session_id not in [s.session_id for s in shared_sandbox.process.list_sessions()]


# ---- the async client -------------------------------------------------------------------------------


async def test_async_client_exec_code_run_and_a_followed_session(async_client: AsyncDaytona) -> None:
    sandbox = await async_client.create()
    try:
        executed = await sandbox.process.exec("echo $X", env={"X": "async"})
        assert (executed.exit_code, executed.result.strip()) == (0, "async")
        ran = await sandbox.process.code_run("print(6 * 7)")
        assert ran.result.strip() == "42"
        await sandbox.process.create_session("a")
        started = await sandbox.process.execute_session_command(
            "a", SessionExecuteRequest(command="echo out; echo err >&2", run_async=True)
        )
        out: list[str] = []
        err: list[str] = []
        await sandbox.process.get_session_command_logs_async("a", started.cmd_id, out.append, err.append)
        assert ("".join(out), "".join(err)) == ("out\n", "err\n")
        logs = await sandbox.process.get_session_command_logs("a", started.cmd_id)
        assert (logs.stdout, logs.stderr) == ("out\n", "err\n")
        await sandbox.process.delete_session("a")
        assert [s.session_id for s in await sandbox.process.list_sessions()] == []
    finally:
        await async_client.delete(sandbox)


async def test_async_client_exec_timeout_ends_on_time(async_client: AsyncDaytona) -> None:
    sandbox = await async_client.create()
    try:
        started = time.monotonic()
        with pytest.raises(DaytonaError, match="timeout"):
            await sandbox.process.exec("sleep 300", timeout=2)
        assert 2 - _EARLY <= time.monotonic() - started < 2 + _LATE
    finally:
        await async_client.delete(sandbox)
