"""A small run: a manual trigger, a sandbox, a clone, two commands (of the same component)."""

from datetime import UTC, datetime

import pytest

from daytonaflow.expressions import ChainEntry, ExpressionContext

FIXED_NOW = datetime(2026, 3, 5, 14, 7, 9, 123456, tzinfo=UTC)


def event(data: object, event_type: str = "default") -> dict[str, object]:
    return {"type": event_type, "data": data, "timestamp": "2026-03-05T14:00:00Z"}


CHAIN = [
    ChainEntry(
        "node-1",
        "Create Sandbox",
        "daytona.createSandbox",
        event({"id": "sb-123", "state": "started", "labels": {"team": "ci"}, "cpu": 2, "ratio": 0.5}),
    ),
    ChainEntry(
        "node-2",
        "Clone",
        "daytona.executeCommand",
        event({"exitCode": 0, "result": "cloned\n", "values": [3, 1, 2], "empty": [], "nothing": None}),
    ),
    ChainEntry(
        "node-3",
        "Run tests",
        "daytona.executeCommand",
        event({"exitCode": 1, "result": "2 failed", "ok": False, "names": ["a", "b"]}, "failed"),
    ),
]
ROOT = event({"branch": "main", "repo": "https://github.com/acme/app", "count": 3}, "manual")


@pytest.fixture
def ctx() -> ExpressionContext:
    return ExpressionContext(CHAIN, ROOT, clock=lambda: FIXED_NOW)
