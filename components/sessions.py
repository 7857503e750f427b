"""Commands run asynchronously in a Daytona session, resumable from persisted metadata.

A step starts a command in a session (``runAsync``) and returns at once; scheduled checks ask
for its status until it exits or its deadline passes. Everything a check needs is plain JSON
in the node's metadata (:class:`StepState`), so after an engine restart the next check picks
up the same command instead of running it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daytonaflow.components import sandbox_restart, timing
from daytonaflow.components.client import DaytonaClient
from daytonaflow.components.errors import (
    DaytonaApiError,
    DaytonaConnectionError,
    DaytonaNotFoundError,
    DaytonaServerError,
)

#: Exit codes of coreutils ``timeout`` when it ended the command (TERM, then KILL).
TIMEOUT_EXIT_CODES = frozenset({124, 137})
#: How long past its deadline a command may still run before the session is deleted under it.
KILL_GRACE_SECONDS = 10.0
POST_DEADLINE_POLL_DELAY = 0.2


def session_name(run_id: str, execution_id: str, purpose: str) -> str:
    """A session ID unique to one node execution, stable across restarts."""
    digest = hashlib.sha256(f"{run_id}/{execution_id}".encode()).hexdigest()[:20]
    return f"daytonaflow-{purpose}-{digest}"


@dataclass
class StepState:
    """One command of a session, as persisted in metadata."""

    sandbox: str
    session: str
    #: How many commands ran in the session before this one (to find it again after a restart).
    index: int
    started_at: float
    deadline: float | None
    command_id: str | None = None
    delay: float | None = None
    #: Set (and persisted) before the command is sent: from then on it may be running, so it must
    #: never be started again in a sandbox that lost its processes.
    launched: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "sandbox": self.sandbox,
            "session": self.session,
            "index": self.index,
            "startedAt": self.started_at,
            "deadline": self.deadline,
            "commandId": self.command_id,
            "delay": self.delay,
            "launched": self.launched,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepState:
        return cls(
            sandbox=str(data["sandbox"]),
            session=str(data["session"]),
            index=int(data["index"]),
            started_at=float(data["startedAt"]),
            deadline=None if data.get("deadline") is None else float(data["deadline"]),
            command_id=data.get("commandId"),
            delay=data.get("delay"),
            launched=bool(data.get("launched", False)),
        )

    def next_check_delay(self) -> float:
        """Back off; land the check on the deadline, then on the end of the grace after it."""
        self.delay = timing.next_poll_delay(self.delay)
        if self.deadline is None:
            return self.delay
        current = timing.now()
        if current >= self.deadline:
            # The in-sandbox timeout ends the command any moment now: look again soon.
            self.delay = min(self.delay, POST_DEADLINE_POLL_DELAY)
        limit = self.deadline if current < self.deadline else self.deadline + KILL_GRACE_SECONDS
        return max(0.0, min(self.delay, limit - current))


@dataclass(frozen=True)
class StepResult:
    exit_code: int | None
    output: str
    timed_out: bool


async def start(
    client: DaytonaClient, step: StepState, command: str, on_launch: Callable[[], None] | None = None
) -> None:
    """Start ``command`` in the step's session, or find it when a previous attempt already did.

    ``step.command_id`` is set on return. The session is created when missing. ``on_launch`` is
    called once ``step.launched`` is set, just before the command is sent (to persist it).
    """
    if step.command_id is not None:
        return
    if not await client.create_session(step.sandbox, step.session) and await _adopt(client, step):
        return
    step.launched = True
    if on_launch is not None:
        on_launch()
    attempt = 0
    while True:
        attempt += 1
        try:
            step.command_id = (await client.session_execute(step.sandbox, step.session, command)).cmd_id
            return
        except (DaytonaServerError, DaytonaConnectionError):
            # The start may or may not have happened. The session is this step's alone, so its
            # command list says which: adopt the command, or start it again (never twice).
            if attempt >= client.retry.attempts:
                raise
            await client.retry.sleep(client.retry.delay(attempt))
            if await _adopt(client, step):
                return


async def _adopt(client: DaytonaClient, step: StepState) -> bool:
    """Take the step's command from the session when it already started; False when it did not."""
    commands = (await client.get_session(step.sandbox, step.session)).commands or []
    if len(commands) > step.index:
        step.command_id = commands[step.index].id
        return True
    return False


async def poll(client: DaytonaClient, step: StepState) -> StepResult | None:
    """The command's result once it exited (or was ended past its deadline); None while it runs."""
    assert step.command_id is not None, "poll() before start()"
    status = await client.get_session_command(step.sandbox, step.session, step.command_id)
    current = timing.now()
    past_deadline = step.deadline is not None and current >= step.deadline
    if status.exit_code is None:
        if step.deadline is None or current < step.deadline + KILL_GRACE_SECONDS:
            return None
        # The in-sandbox timeout did not end it: end the session, which ends its processes.
        output = await _output(client, step)
        await kill(client, step)
        return StepResult(exit_code=124, output=output, timed_out=True)
    timed_out = past_deadline and status.exit_code in TIMEOUT_EXIT_CODES
    return StepResult(status.exit_code, await _output(client, step), timed_out)


async def _output(client: DaytonaClient, step: StepState) -> str:
    assert step.command_id is not None
    logs = await client.get_session_command_logs(step.sandbox, step.session, step.command_id)
    if logs.output:
        return logs.output
    return logs.stdout + logs.stderr


async def kill(client: DaytonaClient, step: StepState) -> None:
    """Delete the session (ending whatever still runs in it); a session already gone is fine, and so
    is a stopped sandbox: its sessions died with its processes."""
    try:
        await client.delete_session(step.sandbox, step.session)
    except DaytonaNotFoundError:
        return
    except DaytonaApiError:
        if not await sandbox_restart.is_stopped(client, step.sandbox):
            raise
