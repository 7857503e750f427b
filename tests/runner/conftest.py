"""Fixtures for the runner tests: a run database in a temp dir, fake components, an engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from run_fakes import FAKE_COMPONENTS, FakeBackend
from run_support import running_local_server
from sandbox_dirs import traversable_temp_dir

from daytonaflow.runner import Engine, RunStore, RunUpdate


@pytest.fixture
def backend(tmp_path: Path) -> FakeBackend:
    return FakeBackend(tmp_path / "backend")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    with RunStore(tmp_path / "runs.db") as run_store:
        yield run_store


@pytest.fixture
def updates() -> list[RunUpdate]:
    return []


@pytest.fixture
async def engine(store: RunStore, backend: FakeBackend, updates: list[RunUpdate]) -> AsyncIterator[Engine]:
    engine = Engine(store, registry=FAKE_COMPONENTS, integration=backend, observers=[updates.append])
    yield engine
    await engine.aclose()


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    """The embedded local server, one per test module (end-to-end tests only)."""
    with (
        traversable_temp_dir("daytonaflow-runner-e2e-") as root,
        running_local_server(root / "state") as instance,
    ):
        yield instance
