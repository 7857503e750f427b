"""Clock and adaptive polling: first checks within milliseconds, backing off to seconds.

Deadlines are wall-clock epoch seconds so they survive an engine restart in persisted metadata.
Tests replace :func:`now` and :func:`sleep` to move time without waiting.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

FIRST_POLL_DELAY = 0.005
MAX_POLL_DELAY = 2.0
#: A wait handed to the engine (``ctx.hook_wait_limit``) is checked again after this, first...
FIRST_CHECK_DELAY = 0.1
#: ...doubling up to this: a long wait is noticed within seconds of its end (SuperPlane checks every 5 s).
MAX_CHECK_DELAY = 5.0


def now() -> float:
    return time.time()


async def sleep(seconds: float) -> None:
    """Wait between polls (tests replace it, with :func:`now`, to move time without waiting)."""
    await asyncio.sleep(seconds)


def iso_utc(epoch: float) -> str:
    """``2026-01-19T12:00:00Z`` (second precision, like Daytona's timestamps)."""
    moment = datetime.fromtimestamp(epoch, UTC).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


def next_poll_delay(previous: float | None) -> float:
    """Double the previous delay, from :data:`FIRST_POLL_DELAY` up to :data:`MAX_POLL_DELAY`."""
    if previous is None or previous <= 0:
        return FIRST_POLL_DELAY
    return min(MAX_POLL_DELAY, previous * 2)


def next_check_delay(previous: float | None) -> float:
    """Double the previous check's delay, from :data:`FIRST_CHECK_DELAY` up to :data:`MAX_CHECK_DELAY`."""
    if previous is None or previous <= 0:
        return FIRST_CHECK_DELAY
    return min(MAX_CHECK_DELAY, previous * 2)


def until_deadline(delay: float, deadline: float | None) -> float:
    """``delay``, shortened so the check after a deadline comes right at it."""
    if deadline is None:
        return delay
    return max(0.0, min(delay, deadline - now()))
