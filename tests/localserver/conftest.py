"""One real LocalServer per test module, real sandboxes, real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from localserver_testkit import Api, client, served

from daytonaflow.localserver import LocalServer


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with served() as instance:
        yield instance


@pytest.fixture(scope="module")
def api(server: LocalServer) -> Iterator[Api]:
    with client(server) as api:
        yield api


@pytest.fixture
def sandbox(api: Api) -> Iterator[dict[str, Any]]:
    created = api.create()
    yield created
    api.delete(created["id"])


@pytest.fixture(scope="module")
def neighbour(api: Api) -> Iterator[dict[str, Any]]:
    """A sandbox that lives through the whole module: attacks on others must leave it intact."""
    created = api.create(name="neighbour", labels={"role": "neighbour"})
    api.run(created["id"], "echo neighbour-secret > /home/daytona/marker.txt")
    yield created
    api.delete(created["id"])
