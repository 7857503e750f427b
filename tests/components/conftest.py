"""Fixtures of the component tests; the doubles themselves live in ``comp_support``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import respx
from comp_support import API_KEY, API_URL, FakeClock, FakeContext, FakeDaytona, NoSleep

from daytonaflow.components import DaytonaIntegration, RetryPolicy, _timing


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Time the components see; their waits between polls move it instead of sleeping."""
    fake = FakeClock()
    monkeypatch.setattr(_timing, "now", fake)
    monkeypatch.setattr(_timing, "sleep", fake.sleep)
    return fake


@pytest.fixture
def sleeps() -> NoSleep:
    return NoSleep()


@pytest.fixture
def retry(sleeps: NoSleep) -> RetryPolicy:
    return RetryPolicy(attempts=4, base_delay=0.2, max_delay=2.0, sleep=sleeps, jitter=lambda top: top)


@pytest.fixture
async def integration(retry: RetryPolicy) -> AsyncIterator[DaytonaIntegration]:
    connection = DaytonaIntegration(API_URL, API_KEY, retry=retry)
    yield connection
    await connection.aclose()


@pytest.fixture
def daytona() -> Iterator[FakeDaytona]:
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield FakeDaytona(router)


@pytest.fixture
def make_ctx(integration: DaytonaIntegration) -> Any:
    def build(config: dict[str, Any], **kwargs: Any) -> FakeContext:
        return FakeContext(config=config, integration=integration, **kwargs)

    return build
