"""How an execution ends, recorded before the clean-up that destroys its evidence.

A component that deletes a session or a sandbox on its way out records the payload it is about
to emit (or the failure it is about to raise) in the node's metadata first. If the engine dies
after the clean-up but before it commits the outcome, the re-run finds the record and replays
it (after repeating the idempotent clean-up) instead of asking Daytona about a session or
sandbox that no longer exists. Recorded payloads are the emitted ones: bounded, with secret
values already masked.
"""

from __future__ import annotations

from typing import Any

from daytonaflow.component import ExecutionContext
from daytonaflow.errors import ComponentError
from daytonaflow.events import Payload

OUTCOME_KEY = "outcome"


def record_emit(ctx: ExecutionContext, channel: str, payload: Payload) -> None:
    data = payload.model_dump(mode="json", by_alias=True, exclude_none=True)
    ctx.metadata.set({**ctx.metadata.get(), OUTCOME_KEY: {"channel": channel, "data": data}})


def record_failure(ctx: ExecutionContext, message: str) -> None:
    ctx.metadata.set({**ctx.metadata.get(), OUTCOME_KEY: {"failure": message}})


def recorded(ctx: ExecutionContext) -> dict[str, Any] | None:
    """The recorded outcome, or None while the execution has not ended."""
    value = ctx.metadata.get().get(OUTCOME_KEY)
    return value if isinstance(value, dict) else None


def is_failure(record: dict[str, Any]) -> bool:
    return "failure" in record


def replay(ctx: ExecutionContext, record: dict[str, Any], payload_type: type[Payload]) -> None:
    """Emit the recorded payload again, or raise the recorded failure again."""
    if is_failure(record):
        raise ComponentError(str(record["failure"]))
    ctx.emit(str(record["channel"]), payload_type.model_validate(record["data"]))


def emit(ctx: ExecutionContext, channel: str, payload: Payload) -> None:
    """Record, then emit: for outcomes with no clean-up in between (replayed alike)."""
    record_emit(ctx, channel, payload)
    ctx.emit(channel, payload)
