"""Helpers of the runner's process-level tests: worker processes killed with SIGKILL, and the embedded
local server (skipped where bubblewrap cannot run)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from daytonaflow.localserver import LocalServer
from daytonaflow.runner import ResourceRecord, RunStore


def sandbox_resources(store: RunStore, run_id: str) -> list[ResourceRecord]:
    """The sandboxes a run recorded (without the creation intents recorded before each create)."""
    return [r for r in store.resources(run_id) if r.kind == "daytona.sandbox"]


@contextlib.contextmanager
def running_local_server(state_dir: Path) -> Iterator[Any]:
    """A started ``LocalServer`` keeping its state in ``state_dir``, stopped on exit."""
    instance = LocalServer(state_dir=state_dir)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


def spawn_worker(worker: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``python worker args...``; the worker prints ``ready`` once its runs are under way."""
    return subprocess.Popen(
        [sys.executable, str(worker), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def kill_after_ready(process: subprocess.Popen[str], delay: float) -> None:
    """SIGKILL the worker ``delay`` seconds after it said ``ready`` (or at once if it died first)."""
    assert process.stdout is not None
    process.stdout.readline()
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()


async def live_sandboxes(integration: Any) -> list[str]:
    """The ids of the sandboxes the server still has (not destroyed)."""
    return [
        sandbox.id for sandbox in await integration.client.list_sandboxes() if sandbox.state != "destroyed"
    ]
