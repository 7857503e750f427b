"""The official Daytona SDKs against a real ``daytonaflow serve``: the CLI a user starts, on loopback.

One server for the whole session (its banner's ``export`` line gives the URL and key, as a user
reads it); sandboxes are made per module or per test by the fixtures below.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

daytona = pytest.importorskip("daytona", reason="the official Daytona SDK (`daytona`) is a test dependency")

from daytona import AsyncDaytona, Daytona, Sandbox  # noqa: E402
from sdk_testkit import Served  # noqa: E402

_EXPORT = re.compile(r"^export DAYTONA_API_URL=(?P<url>\S+) DAYTONA_API_KEY=(?P<key>\S+)$")
_START_SECONDS = 60.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.sandbox)


@pytest.fixture(scope="session")
def served() -> Iterator[Served]:
    root = Path(tempfile.mkdtemp(prefix="daytonaflow-sdk-"))
    root.chmod(0o711)  # the unprivileged sandbox uid must traverse to its home
    state_dir = root / "state"
    key = uuid.uuid4().hex
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "daytonaflow"),
            "serve",
            "--port",
            "0",
            "--state-dir",
            str(state_dir),
        ],
        env={**os.environ, "DAYTONAFLOW_SERVE_API_KEY": key},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    banner: list[str] = []
    deadline = time.monotonic() + _START_SECONDS
    found = None
    while found is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        banner.append(line)
        found = _EXPORT.match(line.strip())
    if found is None:
        process.kill()
        pytest.fail("daytonaflow serve did not start:\n" + "".join(banner), pytrace=False)
    try:
        yield Served(found["url"], found["key"], state_dir)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        with contextlib.suppress(OSError):
            subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=False)


@pytest.fixture(scope="session")
def client(served: Served) -> Daytona:
    """The synchronous client, configured as the SDK's docs show."""
    return Daytona(served.config())


@pytest.fixture
async def async_client(served: Served) -> AsyncIterator[AsyncDaytona]:
    async with AsyncDaytona(served.config()) as instance:
        yield instance


@pytest.fixture(scope="module")
def shared_sandbox(client: Daytona) -> Iterator[Sandbox]:
    """One sandbox for a module's read-mostly tests (creating one per test would dominate the time)."""
    sandbox = client.create()
    yield sandbox
    client.delete(sandbox)


@pytest.fixture
def sandbox(client: Daytona) -> Iterator[Sandbox]:
    """A sandbox of the test's own, deleted afterwards whatever the test did to it."""
    sandbox = client.create()
    yield sandbox
    with contextlib.suppress(Exception):
        client.delete(sandbox)
