"""The official Daytona SDKs against a real ``daytonaflow serve``: the CLI a user starts, on loopback.

One server for the whole session (its banner's ``export`` line gives the URL and key, as a user
reads it); sandboxes are made per module or per test by the fixtures below.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

daytona = pytest.importorskip("daytona", reason="the official Daytona SDK (`daytona`) is a test dependency")

from daytona import AsyncDaytona, Daytona, Sandbox  # noqa: E402
from sdk_testkit import Served  # noqa: E402
from serve_process import ServeStartError, serve_process  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.sandbox)


@pytest.fixture(scope="session")
def served() -> Iterator[Served]:
    try:
        with serve_process(prefix="daytonaflow-sdk-") as process:
            yield Served(process.api_url, process.api_key, process.state_dir)
    except ServeStartError as error:
        pytest.fail(str(error), pytrace=False)


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
