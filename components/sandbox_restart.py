"""Bringing back a sandbox whose processes died under a node, and saying so when that is not enough.

The embedded backend runs inside the runner's process: when that process is killed, every
sandbox's processes die with it, and the next server keeps the sandboxes (their files intact) as
``stopped``. A node resumed afterwards gets "not started" answers. Starting the sandbox again is
safe for work that had not begun; a command that had already started died with the sandbox and
is never run a second time behind the user's back.
"""

from __future__ import annotations

import asyncio

from daytonaflow.components import timing
from daytonaflow.components.client import DaytonaClient
from daytonaflow.components.errors import DaytonaError
from daytonaflow.components.wire import FAILED_STATES, GONE_STATES, STARTED
from daytonaflow.errors import ComponentError

#: States of a sandbox that exists with its files but without processes: a start brings it back.
STOPPED_STATES = frozenset({"stopped", "archived"})
RESTART_TIMEOUT_SECONDS = 120.0


class SandboxRestartError(ComponentError):
    """A stopped sandbox could not be started again."""


class InterruptedCommandError(ComponentError):
    """A command had started when its sandbox's processes died; it is not run again."""


async def is_stopped(client: DaytonaClient, sandbox_id: str) -> bool:
    """Whether the sandbox exists but is stopped (a lookup that fails counts as no)."""
    try:
        sandbox = await client.get_sandbox(sandbox_id)
    except DaytonaError:
        return False
    return sandbox.state in STOPPED_STATES


async def restart(client: DaytonaClient, sandbox_id: str) -> None:
    """Start the stopped sandbox and wait (without blocking the engine) until it is started."""
    try:
        sandbox = await client.start_sandbox(sandbox_id)
        ends_at = timing.now() + RESTART_TIMEOUT_SECONDS
        delay: float | None = None
        while sandbox.state != STARTED:
            if sandbox.state in FAILED_STATES or sandbox.state in GONE_STATES or timing.now() >= ends_at:
                reason = f": {sandbox.error_reason}" if sandbox.error_reason else ""
                raise SandboxRestartError(
                    f"sandbox {sandbox_id} was stopped and did not start again"
                    f" (state {sandbox.state}{reason})"
                )
            delay = timing.next_poll_delay(delay)
            await asyncio.sleep(delay)
            sandbox = await client.get_sandbox(sandbox_id)
    except DaytonaError as error:
        raise SandboxRestartError(
            f"sandbox {sandbox_id} was stopped and could not be started again: {error}"
        ) from None


def interrupted(node_id: str, what: str, sandbox_id: str) -> InterruptedCommandError:
    """The failure of a node whose started command died with its sandbox's processes."""
    return InterruptedCommandError(
        f'node "{node_id}": {what} was interrupted: sandbox {sandbox_id} was found stopped, so its'
        " processes, the command's among them, had died (on the embedded backend they die with the"
        " runner process). It had already started, so it is not run again; sandbox"
        f" {sandbox_id} is left stopped with its files (the run's end deletes it unless sandboxes are kept)"
    )
