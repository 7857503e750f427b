"""When and how long the client waits before repeating a failed request."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

#: Statuses worth repeating: rate limiting and server-side failures.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter.

    ``attempts`` counts the first try. Attempt ``n`` (from 1) waits a random time in
    ``[0, min(max_delay, base_delay * 2**(n-1))]``; a ``Retry-After`` answer is honoured up to
    ``max_delay``. ``sleep`` is injectable so tests never wait.
    """

    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 5.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)
    jitter: Callable[[float], float] = field(
        default=lambda ceiling: random.uniform(0, ceiling), compare=False
    )

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(self.max_delay, max(0.0, retry_after))
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return self.jitter(ceiling)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds (HTTP dates are ignored)."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return None
