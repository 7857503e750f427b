"""The Daytona connection a host engine hands to every Daytona component (opaque to the engine)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from daytonaflow.components._errors import DaytonaNotConfiguredError

if TYPE_CHECKING:
    # The client (httpx, its models) is imported when first built: a host deciding whether it
    # has a key (the CLI, before it starts the embedded server) does not pay for it.
    from daytonaflow.components._retry import RetryPolicy
    from daytonaflow.components.client import DaytonaClient

API_KEY_ENV = "DAYTONA_API_KEY"
API_URL_ENV = "DAYTONA_API_URL"
TARGET_ENV = "DAYTONA_TARGET"


class DaytonaIntegration:
    """API URL, API key and default target, plus the client built from them on first use."""

    def __init__(
        self,
        api_url: str,
        api_key: str,
        target: str | None = None,
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.api_key = api_key
        self.target = target or None
        self._retry = retry
        self._client: DaytonaClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        # Never show the key.
        return f"DaytonaIntegration(api_url={self.api_url!r}, target={self.target!r})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> DaytonaIntegration | None:
        """From ``DAYTONA_API_KEY`` / ``DAYTONA_API_URL`` / ``DAYTONA_TARGET``; None without a key."""
        api_key = env.get(API_KEY_ENV)
        if not api_key:
            return None
        from daytonaflow.components.client import DEFAULT_API_URL

        return cls(env.get(API_URL_ENV) or DEFAULT_API_URL, api_key, env.get(TARGET_ENV) or None)

    @property
    def client(self) -> DaytonaClient:
        """The client for the running event loop (its connections belong to one loop)."""
        loop = _running_loop()
        if self._client is None or self._client_loop is not loop:
            from daytonaflow.components.client import DaytonaClient

            self._client = DaytonaClient(self.api_url, self.api_key, retry=self._retry)
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and self._client_loop is _running_loop():
            await self._client.aclose()
        self._client = None
        self._client_loop = None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def integration_of(value: Any) -> DaytonaIntegration:
    """``ctx.integration`` as a :class:`DaytonaIntegration`, or a clear error when it is missing."""
    if isinstance(value, DaytonaIntegration):
        return value
    if value is None:
        raise DaytonaNotConfiguredError(
            f"no Daytona integration configured: set {API_KEY_ENV} "
            f"(and {API_URL_ENV} for a server other than Daytona Cloud)"
        )
    raise DaytonaNotConfiguredError(
        f"the engine passed a {type(value).__name__} as integration, not a DaytonaIntegration"
    )
