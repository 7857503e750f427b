"""A real ``daytonaflow serve`` subprocess, started as a user starts it, shared by test packages.

The banner's ``export DAYTONA_API_URL=... DAYTONA_API_KEY=...`` line is how a user learns where the
server listens; the tests read it the same way instead of choosing a port themselves.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

_EXPORT = re.compile(r"^export DAYTONA_API_URL=(?P<url>\S+) DAYTONA_API_KEY=(?P<key>\S+)$")
_START_SECONDS = 60.0
_STOP_SECONDS = 60.0


class ServeStartError(RuntimeError):
    """``daytonaflow serve`` exited or stayed silent before printing its export line."""


@dataclass(frozen=True)
class ServedProcess:
    """Where a running ``daytonaflow serve`` answers, and its state directory."""

    api_url: str
    api_key: str
    state_dir: Path
    output: list[str] = field(default_factory=list, compare=False, repr=False)

    def log_text(self) -> str:
        """Everything the server printed so far (its banner included), for a failing test's report."""
        return "".join(self.output)

    def env(self) -> dict[str, str]:
        """The variables a client process (the CLI, a worker) needs to use this server."""
        return {"DAYTONA_API_URL": self.api_url, "DAYTONA_API_KEY": self.api_key}


def daytonaflow_cli() -> str:
    """The ``daytonaflow`` console script installed next to the interpreter running the tests."""
    return str(Path(sys.executable).parent / "daytonaflow")


@contextlib.contextmanager
def serve_process(prefix: str = "daytonaflow-serve-") -> Iterator[ServedProcess]:
    """Start ``daytonaflow serve --port 0`` on a fresh state directory; SIGINT it and remove the
    directory afterwards, whatever its sandboxes left behind."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o711)  # the unprivileged sandbox uid must traverse to its home
    state_dir = root / "state"
    key = uuid.uuid4().hex
    process = subprocess.Popen(
        [daytonaflow_cli(), "serve", "--port", "0", "--state-dir", str(state_dir)],
        env={**os.environ, "DAYTONAFLOW_SERVE_API_KEY": key},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    drain: threading.Thread | None = None
    try:
        found = _read_export_line(process, output)
        # The pipe must keep being read: a server whose log fills it would block mid-request.
        drain = threading.Thread(target=_drain, args=(process, output), daemon=True)
        drain.start()
        yield ServedProcess(found["url"], found["key"], state_dir, output)
    finally:
        _stop(process, drain)
        with contextlib.suppress(OSError):
            subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=False)


def _read_export_line(process: subprocess.Popen[str], banner: list[str]) -> re.Match[str]:
    assert process.stdout is not None
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        banner.append(line)
        found = _EXPORT.match(line.strip())
        if found is not None:
            return found
    raise ServeStartError("daytonaflow serve did not start:\n" + "".join(banner))


def _drain(process: subprocess.Popen[str], output: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)


def _stop(process: subprocess.Popen[str], drain: threading.Thread | None) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if drain is not None:
        drain.join(timeout=_STOP_SECONDS)
    elif process.stdout is not None:
        process.stdout.read()
    if process.stdout is not None:
        process.stdout.close()
