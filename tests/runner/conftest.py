"""Fixtures for the runner tests: a run database in a temp dir, fake components, an engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from run_fakes import FAKE_COMPONENTS, FakeBackend

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
