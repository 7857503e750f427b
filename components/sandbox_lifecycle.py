"""Creating a sandbox, waiting for ``started`` without blocking, and discarding a half-made one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

from daytonaflow.component import ExecutionContext
from daytonaflow.components import outcome, sandbox_restart, timing
from daytonaflow.components.base import DaytonaComponent
from daytonaflow.components.client import DaytonaClient
from daytonaflow.components.config_parts import SandboxCreationConfig
from daytonaflow.components.errors import DaytonaApiError, DaytonaError, DaytonaNotFoundError
from daytonaflow.components.integration import integration_of
from daytonaflow.components.sandbox_env import resolve_secrets
from daytonaflow.components.wire import FAILED_STATES, GONE_STATES, STARTED, SandboxInfo
from daytonaflow.errors import ComponentError

#: The resource kind sandboxes are tracked under; the engine reclaims leftovers at run end.
SANDBOX_RESOURCE = "daytona.sandbox"
#: A creation whose answer was lost and whose sandbox could not be looked up yet; its resource ID is
#: the idempotency key, and reclaiming it deletes whatever sandbox carries that key's label.
LOST_CREATION_RESOURCE = "daytona.sandbox-creation"


@dataclass
class StartState:
    """Waiting for a sandbox to start, as persisted in metadata."""

    sandbox_id: str
    deadline: float
    delay: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"sandboxId": self.sandbox_id, "deadline": self.deadline, "delay": self.delay}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StartState:
        return cls(str(data["sandboxId"]), float(data["deadline"]), data.get("delay"))

    def next_check_delay(self) -> float:
        self.delay = timing.next_poll_delay(self.delay)
        return timing.until_deadline(self.delay, self.deadline)


async def create(
    ctx: ExecutionContext, client: DaytonaClient, config: SandboxCreationConfig, default_target: str | None
) -> tuple[StartState, SandboxInfo]:
    """Create the sandbox (at most once per node execution) and track it as a run resource."""
    # Resolving first means a missing secret fails the node before anything exists to clean up.
    resolve_secrets(config.secret_specs(), ctx.secrets)
    key = _key(ctx)
    # Recorded before the request, released once its answer is: should this process die in
    # between (or give up on the run), the run's end still finds the sandbox by its label.
    ctx.resources.acquire(LOST_CREATION_RESOURCE, key)
    try:
        sandbox = await client.create_sandbox(config.create_request(default_target), idempotency_key=key)
    except DaytonaError as error:
        if _refused(error):
            ctx.resources.release(LOST_CREATION_RESOURCE, key)
            raise
        await _reconcile_lost_creation(ctx, client, error)
        raise
    ctx.resources.acquire(SANDBOX_RESOURCE, sandbox.id)
    ctx.resources.release(LOST_CREATION_RESOURCE, key)
    ctx.logger.info("created sandbox %s (state %s)", sandbox.id, sandbox.state)
    return StartState(sandbox.id, timing.now() + config.timeout), sandbox


def _refused(error: DaytonaError) -> bool:
    """Whether Daytona refused the create outright (a 4xx): then no sandbox can exist."""
    return isinstance(error, DaytonaApiError) and error.status < 500


async def _reconcile_lost_creation(ctx: ExecutionContext, client: DaytonaClient, cause: DaytonaError) -> None:
    """A create that failed after it may have happened (lost or cut answer, timeout, 5xx): find the
    sandbox by its idempotency label, record it and delete it, so the failed node leaks nothing.

    When the lookup fails too, the key stays recorded: the engine's reclaim at the run's end
    looks the label up again.
    """
    try:
        found = await client.sandboxes_created_with(_key(ctx))
    except DaytonaError as error:
        ctx.logger.warning("create failed (%s) and its sandbox cannot be looked up yet: %s", cause, error)
        return
    for sandbox in found:
        ctx.resources.acquire(SANDBOX_RESOURCE, sandbox.id)
        ctx.logger.warning("create failed (%s) but made sandbox %s: deleting it", cause, sandbox.id)
        await discard(ctx, client, sandbox.id)
    ctx.resources.release(LOST_CREATION_RESOURCE, _key(ctx))


async def delete_created_with(client: DaytonaClient, idempotency_key: str) -> None:
    """Delete every sandbox carrying ``idempotency_key``'s label (a lost creation's leftover)."""
    for sandbox in await client.sandboxes_created_with(idempotency_key):
        await delete_if_present(client, sandbox.id)


def _key(ctx: ExecutionContext) -> str:
    """The idempotency key of the sandbox a node execution creates (stable across restarts)."""
    return f"{ctx.run_id}/{ctx.execution_id}"


async def discard_created(ctx: ExecutionContext, client: DaytonaClient) -> None:
    """Delete the sandbox this execution created, whether or not its ID was recorded yet.

    A cancel that lands while the create request is in flight (or before its answer was saved)
    finds the sandbox by its idempotency label instead of leaking it.
    """
    start = ctx.metadata.get().get("start")
    if start:
        await discard(ctx, client, StartState.from_json(start).sandbox_id)
        return
    for sandbox in await client.sandboxes_created_with(_key(ctx)):
        await discard(ctx, client, sandbox.id)


async def wait_started(
    ctx: ExecutionContext, client: DaytonaClient, sandbox: SandboxInfo | None = None
) -> bool:
    """Whether the sandbox in ``metadata["start"]`` is started; reschedules a check while it is not.

    ``sandbox`` is its latest known state (fetched when None). A sandbox that will never start
    is deleted and the node fails.
    """
    metadata = ctx.metadata.get()
    state = StartState.from_json(metadata["start"])
    if sandbox is None:
        sandbox = await client.get_sandbox(state.sandbox_id)
    if sandbox.state in sandbox_restart.STOPPED_STATES and not metadata.get("restarted"):
        # Stopped before it was handed on (its processes died, e.g. with the embedded backend's
        # runner process): nothing ran in it yet, so starting it again is safe, once.
        metadata["restarted"] = True
        ctx.metadata.set(metadata)
        ctx.logger.warning("sandbox %s was stopped while starting: starting it again", state.sandbox_id)
        sandbox = await client.start_sandbox(state.sandbox_id)
        state.deadline = max(state.deadline, timing.now() + sandbox_restart.RESTART_TIMEOUT_SECONDS)
        metadata["start"] = state.to_json()
        ctx.metadata.set(metadata)
    reason = failure_reason(sandbox, state)
    if reason is not None:
        await fail(ctx, client, state.sandbox_id, reason)
    if sandbox.state == STARTED:
        return True
    delay = state.next_check_delay()
    ctx.metadata.set({**metadata, "start": state.to_json()})
    ctx.schedule_check(delay)
    return False


def failure_reason(sandbox: SandboxInfo, state: StartState) -> str | None:
    """Why the sandbox will never start, or None while it still may."""
    if sandbox.state in FAILED_STATES:
        reason = f": {sandbox.error_reason}" if sandbox.error_reason else ""
        return f"sandbox {sandbox.id} entered state {sandbox.state}{reason}"
    if sandbox.state in GONE_STATES:
        return f"sandbox {sandbox.id} was deleted while starting"
    if sandbox.state != STARTED and timing.now() >= state.deadline:
        return f"sandbox {sandbox.id} did not reach started before the timeout (last state {sandbox.state})"
    return None


async def delete_if_present(client: DaytonaClient, sandbox_id: str) -> bool:
    """Delete the sandbox; False when it was already gone."""
    try:
        await client.delete_sandbox(sandbox_id, force=True)
    except DaytonaNotFoundError:
        return False
    return True


async def discard(ctx: ExecutionContext, client: DaytonaClient, sandbox_id: str) -> None:
    """Delete a sandbox that failed half-way; a failure to delete is logged, not raised over the cause.

    When the delete fails the resource stays tracked, so the engine reclaims it at run end.
    """
    try:
        await delete_if_present(client, sandbox_id)
    except DaytonaError as error:
        ctx.logger.warning("could not delete sandbox %s: %s", sandbox_id, error)
        return
    ctx.resources.release(SANDBOX_RESOURCE, sandbox_id)


async def fail(ctx: ExecutionContext, client: DaytonaClient, sandbox_id: str, message: str) -> NoReturn:
    """Fail the node and delete its half-made sandbox; the failure is recorded first (see outcome)."""
    outcome.record_failure(ctx, message)
    await discard(ctx, client, sandbox_id)
    raise ComponentError(message)


async def replay_failure(ctx: ExecutionContext, client: DaytonaClient, sandbox_id: str) -> None:
    """After a crash during :func:`fail`: delete the sandbox again (idempotent) and fail alike."""
    record = outcome.recorded(ctx)
    if record is not None and outcome.is_failure(record):
        await discard(ctx, client, sandbox_id)
        raise ComponentError(str(record["failure"]))


CreationConfigT = TypeVar("CreationConfigT", bound=SandboxCreationConfig)


class SandboxCreatingComponent(DaytonaComponent[CreationConfigT]):
    """Base of the components that create a sandbox: a cancel deletes the sandbox being made, and
    the engine's reclaim deletes one a run left behind."""

    async def cancel(self, ctx: ExecutionContext) -> None:
        await discard_created(ctx, self.client(ctx))

    @classmethod
    async def reclaim(cls, kind: str, resource_id: str, integration: Any) -> None:
        client = integration_of(integration).client
        if kind == LOST_CREATION_RESOURCE:
            await delete_created_with(client, resource_id)
            return
        if kind != SANDBOX_RESOURCE:
            raise ComponentError(f"cannot reclaim a resource of kind {kind!r}")
        await delete_if_present(client, resource_id)
