"""The agent keeps every byte a command printed, however late its output pump gets to run.

On a host running hundreds of sandboxes the thread copying a command's pipe may not run for a
while after the command exited; a background child holding the pipe open means end of file
never comes. The agent module runs here in-process (it is standard library only), with a pump
that starts late, as a starved thread does.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daytonaflow.localserver import _agent

_PUMP_DELAY_SECONDS = 0.3


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_agent._Agent]:
    # What the agent's main() provides before serving, and the sandbox's paths on this host.
    for name, module in (
        ("contextlib", contextlib),
        ("json", json),
        ("socket", socket),
        ("threading", threading),
    ):
        monkeypatch.setattr(_agent, name, module, raising=False)
    monkeypatch.setattr(_agent, "_STATE_DIR", str(tmp_path / "run"))
    monkeypatch.setattr(_agent, "_HOME", str(tmp_path))
    real_pump: Callable[..., None] = _agent._pump

    def late_pump(*args: Any) -> None:
        time.sleep(_PUMP_DELAY_SECONDS)
        real_pump(*args)

    monkeypatch.setattr(_agent, "_pump", late_pump)
    instance = _agent._Agent({"env": {"PATH": "/usr/bin:/bin"}})
    yield instance
    # Let the background children end and every thread finish while the module is still patched.
    for session in list(instance.sessions.values()):
        for command in session.commands.values():
            command.drained.wait(10)
        session.kill()
    time.sleep(0.2)


def test_execute_returns_all_output_though_a_background_child_holds_the_pipe(
    agent: _agent._Agent, tmp_path: Path
) -> None:
    result = agent.run(["/bin/sh", "-c", "sleep 1 & echo printed-before-exit"], str(tmp_path), {}, None)
    assert result["exitCode"] == 0
    assert result["result"] == "printed-before-exit\n"


def test_a_session_command_ends_with_all_its_output_though_a_background_child_holds_it(
    agent: _agent._Agent,
) -> None:
    session = _agent._Session(agent, "s", {"PATH": "/usr/bin:/bin"})
    agent.sessions["s"] = session
    command = session.execute("sleep 1 & echo printed-before-exit; echo to-stderr >&2")
    assert command.done.wait(10)
    assert command.exit_code == 0
    assert command.stdout.text() == "printed-before-exit\n"
    assert command.stderr.text() == "to-stderr\n"
