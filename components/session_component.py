"""The shared lifecycle of components that run one command in a session and report how it ended.

``execute`` starts the command asynchronously and looks at it once; each check asks for the
command's status, reschedules with a growing delay while it runs, and emits on ``success``
(exit 0) or ``failed`` (non-zero or timed out) with the bounded output. The command's session
is deleted once it ended (and on cancel, which ends the command).

A sandbox found stopped under the node (its processes died, e.g. with the embedded backend's
runner process) is started again once when the command had not been sent yet, and the command
then runs; a command already sent died with the processes and fails the node instead (see
:mod:`daytonaflow.components.sandbox_restart`).
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from typing import ClassVar, TypeVar

from daytonaflow.component import FAILED_CHANNEL, SUCCESS_CHANNEL, ExecutionContext
from daytonaflow.components import outcome, sandbox_restart, sessions, timing
from daytonaflow.components.base import ComponentConfig, DaytonaComponent
from daytonaflow.components.client import DaytonaClient
from daytonaflow.components.errors import DaytonaApiError, DaytonaError
from daytonaflow.components.output import redact
from daytonaflow.components.sandbox_env import injected_secret_values
from daytonaflow.components.sessions import StepResult, StepState
from daytonaflow.events import Payload

ConfigT = TypeVar("ConfigT", bound=ComponentConfig)
ResultT = TypeVar("ResultT")


class SessionCommandComponent(DaytonaComponent[ConfigT], abc.ABC):
    channels = (SUCCESS_CHANNEL, FAILED_CHANNEL)
    #: Names the session, e.g. ``daytonaflow-code-<digest>``.
    session_purpose: ClassVar[str]

    @abc.abstractmethod
    def sandbox_of(self, config: ConfigT) -> str: ...

    @abc.abstractmethod
    def timeout_seconds(self, config: ConfigT) -> float | None: ...

    @abc.abstractmethod
    async def prepare(self, client: DaytonaClient, config: ConfigT, step: StepState) -> str:
        """Do what must precede the command (upload files) and return the command line."""

    @abc.abstractmethod
    def payload(self, config: ConfigT, result: StepResult) -> Payload: ...

    @abc.abstractmethod
    def describe(self, config: ConfigT) -> str:
        """The command as a failure message names it, e.g. ``command "make test"``."""

    # --- lifecycle ----------------------------------------------------------------------------

    def new_step(self, ctx: ExecutionContext, config: ConfigT) -> StepState:
        started = timing.now()
        timeout = self.timeout_seconds(config)
        return StepState(
            sandbox=self.sandbox_of(config),
            session=sessions.session_name(ctx.run_id, ctx.execution_id, self.session_purpose),
            index=0,
            started_at=started,
            deadline=None if timeout is None else started + timeout,
        )

    async def execute(self, ctx: ExecutionContext) -> None:
        config = self.parse_config(ctx)
        if ctx.metadata.get().get("step"):
            await self.check(ctx)  # resumed after an engine restart
            return
        step = self.new_step(ctx, config)
        # Persisted before the command starts: a restart then finds the session instead of starting anew.
        ctx.metadata.set({"step": step.to_json()})
        # The check starts the command, then looks once at once: short commands are often done
        # already, and then nothing waits.
        await self.check(ctx)

    async def _start(self, ctx: ExecutionContext, config: ConfigT, step: StepState) -> None:
        client = self.client(ctx)
        command = await self.prepare(client, config, step)
        await sessions.start(client, step, command, lambda: self._persist(ctx, step))
        ctx.metadata.set({"step": step.to_json()})
        ctx.logger.info(
            "started command %s in session %s of sandbox %s", step.command_id, step.session, step.sandbox
        )

    @staticmethod
    def _persist(ctx: ExecutionContext, step: StepState) -> None:
        ctx.metadata.set({**ctx.metadata.get(), "step": step.to_json()})

    def _reschedule(self, ctx: ExecutionContext, step: StepState) -> None:
        delay = step.next_check_delay()
        ctx.metadata.set({**ctx.metadata.get(), "step": step.to_json()})
        ctx.schedule_check(delay)

    async def check(self, ctx: ExecutionContext) -> None:
        config = self.parse_config(ctx)
        if await self.replayed(ctx, config):
            return
        step = StepState.from_json(ctx.metadata.get()["step"])
        result = await self.restarting(ctx, config, step, lambda: self._advance(ctx, config, step))
        if result is None:
            self._reschedule(ctx, step)
            return
        await self.finish(ctx, config, step, result)

    async def _advance(self, ctx: ExecutionContext, config: ConfigT, step: StepState) -> StepResult | None:
        if step.command_id is None:
            await self._start(ctx, config, step)
        return await sessions.poll(self.client(ctx), step)

    async def restarting(
        self,
        ctx: ExecutionContext,
        config: ConfigT,
        step: StepState,
        advance: Callable[[], Awaitable[ResultT]],
    ) -> ResultT:
        """``advance()``; when it fails because the sandbox is stopped, start the sandbox once and
        advance again from the start of the command, or fail if the command had been sent."""
        try:
            return await advance()
        except DaytonaApiError:
            if not await sandbox_restart.is_stopped(self.client(ctx), step.sandbox):
                raise
        if step.launched or step.command_id is not None:
            message = str(sandbox_restart.interrupted(ctx.node_id, self.describe(config), step.sandbox))
            outcome.record_failure(ctx, message)
            raise sandbox_restart.InterruptedCommandError(message)
        ctx.logger.warning("sandbox %s was stopped: starting it again to run the command", step.sandbox)
        await sandbox_restart.restart(self.client(ctx), step.sandbox)
        # The command starts now: its time limit counts from here.
        timeout = self.timeout_seconds(config)
        step.started_at = timing.now()
        step.deadline = None if timeout is None else step.started_at + timeout
        self._persist(ctx, step)
        return await advance()

    async def cleanup(self, client: DaytonaClient, config: ConfigT, step: StepState) -> None:
        """Remove what :meth:`prepare` left in the sandbox (default: nothing)."""
        return None

    async def finish(
        self, ctx: ExecutionContext, config: ConfigT, step: StepState, result: StepResult
    ) -> None:
        channel = SUCCESS_CHANNEL if result.exit_code == 0 and not result.timed_out else FAILED_CHANNEL
        payload = self.payload(config, await self.masked(ctx, step, result))
        # Recorded before the session goes: a re-run after a crash replays it (see outcome).
        outcome.record_emit(ctx, channel.name, payload)
        await self.tidy(ctx, config, step)
        ctx.emit(channel.name, payload)

    async def tidy(self, ctx: ExecutionContext, config: ConfigT, step: StepState) -> None:
        """End the session and remove what :meth:`prepare` left; idempotent, never fatal."""
        client = self.client(ctx)
        try:
            await sessions.kill(client, step)
            await self.cleanup(client, config, step)
        except DaytonaError as error:
            ctx.logger.warning("could not clean up after command %s: %s", step.command_id, error)

    async def replayed(self, ctx: ExecutionContext, config: ConfigT) -> bool:
        """Whether the execution had already ended (then its outcome is emitted again)."""
        record = outcome.recorded(ctx)
        if record is None:
            return False
        data = ctx.metadata.get().get("step")
        if data:
            await self.tidy(ctx, config, StepState.from_json(data))
        outcome.replay(ctx, record, self.payload_type)
        return True

    async def masked(self, ctx: ExecutionContext, step: StepState, result: StepResult) -> StepResult:
        """``result`` with the values of the secrets injected into the sandbox masked in its output."""
        values = await injected_secret_values(self.client(ctx), step.sandbox, ctx.secrets)
        if not values:
            return result
        return StepResult(result.exit_code, redact(result.output, values), result.timed_out)

    async def cancel(self, ctx: ExecutionContext) -> None:
        data = ctx.metadata.get().get("step")
        if data:
            await sessions.kill(self.client(ctx), StepState.from_json(data))
