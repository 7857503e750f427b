"""The durable step: the one owner of how a Daytona node execution proceeds, waits and ends.

A component describes its work as a coroutine over a :class:`Step` (see ``DaytonaComponent.run``)
and returns an :class:`Outcome`; the step does the rest, the same way for all six components:

* **State.** Every fact a re-run needs (the sandbox being created, the command started, its
  session) is persisted in the node's metadata before the action that makes it true, so an
  engine restart resumes the same work instead of doing it twice.
* **Waits.** A command is followed through the toolbox's output stream, which ends when the
  command exits (one request for its life); where a server offers no stream, and for sandbox
  starts, the step polls with one backoff, first after milliseconds. While it waits, the engine
  may run other nodes (``ctx.waiting()``). A wait that outlasts ``ctx.hook_wait_limit`` (a
  distributed engine, where a waiting hook holds a worker slot) is handed to the engine: the step
  schedules a check, fast first, and the check resumes the same wait from the metadata.
* **Retries.** One policy, in the client; the step adds only what the client cannot know: a
  sandbox found stopped under a command that had not started yet is started again once.
* **Resources and clean-up.** What the step makes is recorded as it is made (run resources for
  sandboxes, clean-ups for sessions and files), and cleaned up when the execution ends, fails or
  is cancelled: a failed step never leaks its sandbox or session.
* **Emit.** The outcome is recorded before the clean-up that destroys its evidence, then
  emitted; a re-run after a crash in between replays it.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import hashlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from daytonaflow.component import ExecutionContext
from daytonaflow.components import _timing
from daytonaflow.components._config import SandboxCreationConfig
from daytonaflow.components._errors import (
    DaytonaApiError,
    DaytonaConnectionError,
    DaytonaError,
    DaytonaNotFoundError,
)
from daytonaflow.components._integration import integration_of
from daytonaflow.components._output import OutputBuffer, redact
from daytonaflow.components._payloads import private_state, restore_private_state
from daytonaflow.components._sandbox_env import (
    inject_secrets,
    injected_secret_values,
    resolve_secrets,
)
from daytonaflow.components._wire import FAILED_STATES, GONE_STATES, STARTED, SandboxInfo
from daytonaflow.components.client import DaytonaClient
from daytonaflow.errors import ComponentError, ConfigError, ConfigIssue
from daytonaflow.events import Payload

#: The resource kind sandboxes are tracked under; the engine reclaims leftovers at run end.
SANDBOX_RESOURCE = "daytona.sandbox"
#: A creation whose answer was lost and whose sandbox could not be looked up yet; its resource ID is
#: the idempotency key, and reclaiming it deletes whatever sandbox carries that key's label.
LOST_CREATION_RESOURCE = "daytona.sandbox-creation"
#: States of a sandbox that exists with its files but without processes: a start brings it back.
STOPPED_STATES = frozenset({"stopped", "archived"})
RESTART_TIMEOUT_SECONDS = 120.0
#: Exit codes of coreutils ``timeout`` when it ended the command (TERM, then KILL).
TIMEOUT_EXIT_CODES = frozenset({124, 137})
#: How long past its deadline a command may still run before its session is deleted under it.
KILL_GRACE_SECONDS = 10.0

_OUTCOME = "outcome"
_CLEANUP = "cleanup"
#: The wait last handed to the engine and the delay of its check (its backoff survives the re-run).
_HANDOFF = "handoff"
#: A restart of a stopped sandbox under way: its sandbox and when it must be started by.
_RESTARTING = "restarting"
_SANDBOX_ENTRIES = frozenset({"discardSandbox", "releaseSandbox"})
#: A state change asked of an existing sandbox (start, stop, archive): its sandbox and deadline.
_TRANSITION = "transition"
#: States a sandbox passes through on its way to a target state: waited through, not asked again.
_ON_THE_WAY = {
    STARTED: frozenset(
        {"starting", "restoring", "creating", "pulling_snapshot", "pending_build", "resuming"}
    ),
    "stopped": frozenset({"stopping"}),
    "archived": frozenset({"archiving"}),
}
#: While a command's output is followed, its status is also asked this often (a stream a proxy
#: keeps open after the exit must not hold the node).
_WATCH_SECONDS = 30.0
_STREAM_CLOSE_GRACE_SECONDS = 2.0
_T = TypeVar("_T")


class SandboxRestartError(ComponentError):
    """A stopped sandbox could not be started again."""


class InterruptedCommandError(ComponentError):
    """A command had started when its sandbox's processes died; it is not run again."""


class _WaitHandedOff(Exception):
    """A wait outlasted the context's hook wait limit: the hook ends, and a check resumes the wait.

    Not a ``ComponentError``: nothing failed, and no handler on its way up to :meth:`Step.drive`
    (which schedules the check) may take it for a failure.
    """

    def __init__(self, wait: str) -> None:
        super().__init__(f"wait {wait} handed to the engine")
        self.wait = wait
        #: Metadata the waiter adds on its way out (what a re-run needs beyond what is saved).
        self.saves: dict[str, Any] = {}


@dataclass(frozen=True)
class _WaitLimit:
    """When a wait is handed to the engine; ``wait`` names it, so the check's backoff continues
    across the checks of one wait and starts fast again for the next."""

    wait: str
    at: float


@dataclass(frozen=True)
class Outcome:
    channel: str
    payload: Payload
    #: False for an outcome that reports a failure (a non-zero exit): clean-ups kept for failures
    #: run too, as when the step raises.
    succeeded: bool = True


@dataclass(frozen=True)
class CommandResult:
    """How a command ended (``exit_code`` None: a background command still running)."""

    exit_code: int | None
    output: OutputBuffer
    timed_out: bool

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


@dataclass(frozen=True)
class Command:
    """A command to run in its own session of a sandbox."""

    #: Where its state is persisted in the metadata (one component may run several).
    key: str
    sandbox: str
    #: Names the session: ``daytonaflow-<purpose>-<digest>``.
    purpose: str
    #: Builds the command line (uploading what it needs first); called once, right before the start.
    build: Callable[[], Awaitable[str]]
    #: Seconds from the start until the command is ended; None: no limit.
    timeout: float | None
    #: Output kept for the payload (its head and tail when longer).
    keep_bytes: int
    #: Says, in a failure message, what ran: ``command "make test"``.
    description: str
    #: A background command keeps running after the step; its session is cleaned up only on failure.
    background: bool = False


def session_name(run_id: str, execution_id: str, purpose: str) -> str:
    """A session ID unique to one node execution, stable across restarts."""
    digest = hashlib.sha256(f"{run_id}/{execution_id}".encode()).hexdigest()[:20]
    return f"daytonaflow-{purpose}-{digest}"


class Step:
    """One hook call's view of its node execution's durable state, and the ways it may end."""

    def __init__(self, ctx: ExecutionContext, client: DaytonaClient) -> None:
        self.ctx = ctx
        self.client = client

    # --- persisted state ------------------------------------------------------------------------

    def get(self, key: str) -> Any:
        return self.ctx.metadata.get().get(key)

    def save(self, **values: Any) -> None:
        """Persist ``values`` (durable once this returns)."""
        current = self.ctx.metadata.get()
        updated = {**current, **values}
        if updated != current:
            # A re-run repeats its saves (once per check when waits are handed to the engine): only
            # a change is written (on a distributed engine each write is a history event).
            self.ctx.metadata.set(updated)

    def on_end(self, action: dict[str, Any], *, only_on_failure: bool = False) -> None:
        """Record a clean-up to run when the execution ends (or only when it fails or is cancelled)."""
        self.save(**{_CLEANUP: self._cleanups_with(action, only_on_failure=only_on_failure)})

    def _cleanups_with(self, action: dict[str, Any], *, only_on_failure: bool) -> list[dict[str, Any]]:
        entry = {**action, "onlyOnFailure": only_on_failure}
        recorded: list[dict[str, Any]] = self.get(_CLEANUP) or []
        if entry in recorded:
            return recorded  # a re-run records it again: unchanged, so nothing is written
        kept = [item for item in recorded if not _same_target(item, entry)]
        return [*kept, entry]

    # --- how the execution ends ---------------------------------------------------------------------

    async def drive(self, work: Callable[[Step], Awaitable[Outcome]], payload_type: type[Payload]) -> None:
        """Run ``work`` to its outcome and emit it, or replay the outcome a crashed attempt recorded."""
        _migrate(self.ctx)
        record = self.get(_OUTCOME)
        if isinstance(record, dict):
            succeeded = record.get("succeeded", record.get("channel") != "failed")
            await self._clean_up(failed="failure" in record or not succeeded)
            if "failure" in record:
                raise ComponentError(str(record["failure"]))
            payload = payload_type.model_validate(record["data"])
            self.ctx.emit(str(record["channel"]), restore_private_state(payload, record.get("private")))
            return
        try:
            outcome = await work(self)
        except asyncio.CancelledError:
            raise  # the engine cancels and then calls cancel(), which cleans up
        except _WaitHandedOff as handoff:
            self._schedule_resume(handoff)
            return
        except Exception as error:
            message = str(error)
            self.save(**{_OUTCOME: {"failure": message}})
            await self._clean_up(failed=True)
            raise
        data = outcome.payload.model_dump(mode="json", by_alias=True, exclude_none=True)
        record = {"channel": outcome.channel, "data": data, "succeeded": outcome.succeeded}
        private = private_state(outcome.payload)
        if private:
            record["private"] = private
        self.save(**{_OUTCOME: record})
        await self._clean_up(failed=not outcome.succeeded)
        self.ctx.emit(outcome.channel, outcome.payload)

    def _schedule_resume(self, handoff: _WaitHandedOff) -> None:
        """Save what the handed-off wait needs and ask for the check that resumes it (the same
        wait's checks back off; another wait's start fast)."""
        previous = self.get(_HANDOFF) or {}
        same_wait = previous.get("wait") == handoff.wait
        delay = _timing.next_check_delay(previous.get("delay") if same_wait else None)
        self.save(**handoff.saves, **{_HANDOFF: {"wait": handoff.wait, "delay": delay}})
        self.ctx.schedule_check(delay)

    async def cancel(self, *, creates_sandbox: bool = False) -> None:
        """Undo what the execution made: its sessions end, and a sandbox it made or was making is
        deleted (one kept on failure too: a cancelled execution keeps nothing).

        With ``creates_sandbox`` (a component that creates one), a sandbox the metadata does not
        name is looked up by the execution's creation key, even when no creation was recorded.
        """
        _migrate(self.ctx)
        made = self.get("sandbox")
        creating = self.get("creating") or (creation_key(self.ctx) if creates_sandbox else None)
        if creating and not made:
            # The create may be in flight, or its answer unsaved (or the metadata that said it was
            # lost): find the sandbox by its label, which the deterministic key makes knowable.
            try:
                for sandbox in await self.client.sandboxes_created_with(str(creating)):
                    await self._discard(sandbox.id)
            except DaytonaError as error:
                # Its key stays a run resource: the run's end looks the label up again.
                self.ctx.logger.warning("cannot look up the sandbox being created: %s", error)
        await self._clean_up(failed=True, cancelled=True)
        if made:
            await self._discard(str(made))

    async def _clean_up(self, *, failed: bool, cancelled: bool = False) -> None:
        """Run the recorded clean-ups (sessions first: they end what still runs); each is idempotent
        and never raises over the outcome."""
        for entry in sorted(self.get(_CLEANUP) or [], key=lambda entry: "session" not in entry):
            if entry.get("onlyOnFailure") and not failed:
                continue
            if cancelled and _SANDBOX_ENTRIES.intersection(entry):
                continue  # cancel() deletes the sandbox itself, kept or not
            try:
                await self._clean(entry)
            except DaytonaError as error:
                self.ctx.logger.warning("clean-up %s failed: %s", _describe(entry), error)

    async def _clean(self, entry: dict[str, Any]) -> None:
        if "session" in entry:
            await self._end_session(entry["sandbox"], entry["session"])
        elif "file" in entry:
            with contextlib.suppress(DaytonaNotFoundError):
                await self.client.delete_file(entry["sandbox"], entry["file"])
        elif "discardSandbox" in entry:
            await self._discard(entry["discardSandbox"])
        elif "releaseSandbox" in entry:
            self.ctx.resources.release(SANDBOX_RESOURCE, entry["releaseSandbox"])

    # --- waiting ------------------------------------------------------------------------------

    async def poll(
        self,
        probe: Callable[[], Awaitable[_T | None]],
        *,
        deadline: float | None = None,
        limit: _WaitLimit | None = None,
    ) -> _T | None:
        """``probe()`` until it answers, backing off from milliseconds to seconds; None at ``deadline``.

        Past ``limit`` (after one last probe) the wait is handed to the engine (see
        :meth:`wait_limit`).
        """
        delay: float | None = None
        async with self.ctx.waiting():
            while True:
                answer = await probe()
                if answer is not None:
                    return answer
                if deadline is not None and _timing.now() >= deadline:
                    return None
                if limit is not None and _timing.now() >= limit.at:
                    raise _WaitHandedOff(limit.wait)
                delay = _timing.next_poll_delay(delay)
                await _timing.sleep(_timing.until_deadline(delay, _earliest(deadline, limit)))

    def wait_limit(self, wait: str) -> _WaitLimit | None:
        """When a wait starting now (named ``wait``) is handed to the engine; None: never.

        The context's ``hook_wait_limit`` says how long a hook may wait (None on the embedded
        engine); a context built before the hint existed has none.
        """
        seconds = self._hook_wait_limit()
        return None if seconds is None else _WaitLimit(wait, _timing.now() + seconds)

    def _hands_off_waits(self) -> bool:
        return self._hook_wait_limit() is not None

    def _hook_wait_limit(self) -> float | None:
        # A context built before the hint existed has none: its hooks wait as long as it takes.
        seconds: float | None = getattr(self.ctx, "hook_wait_limit", None)
        return seconds

    # --- sandboxes ------------------------------------------------------------------------------

    async def create_sandbox(
        self, config: SandboxCreationConfig, timeout: float, *, keep_on_failure: bool = False
    ) -> str:
        """Create the sandbox (at most once per execution), wait until it is started, inject secrets.

        The sandbox is a run resource from the moment it may exist, and is deleted when the
        execution fails or is cancelled; with ``keep_on_failure`` a failed execution keeps it (for
        inspection), and the run then no longer reclaims it.
        """
        sandbox_id = self.get("sandbox")
        if self.get("sandboxReady"):
            # Resumed after it was handed on: what follows handles its state.
            self._on_failure_of(str(sandbox_id), keep=keep_on_failure)
            return str(sandbox_id)
        secret_specs = config.secret_specs()
        # Resolving first means a missing secret fails the node before anything exists to clean up.
        resolve_secrets(secret_specs, self.ctx.secrets)
        if sandbox_id is None:
            volume_ids = await self._volume_ids(config)
            request = config.create_request(integration_of(self.ctx.integration).target, volume_ids)
            sandbox = await self._create(request, keep_on_failure)
            sandbox_id = sandbox.id
            self.save(sandbox=sandbox_id, startDeadline=_timing.now() + timeout)
        else:
            sandbox = None
            self._on_failure_of(str(sandbox_id), keep=keep_on_failure)
        await self._wait_started(sandbox_id, sandbox)
        try:
            await inject_secrets(self.client, sandbox_id, resolve_secrets(secret_specs, self.ctx.secrets))
        except ComponentError as error:
            raise ComponentError(f"could not write secrets into sandbox {sandbox_id}: {error}") from None
        self.save(sandboxReady=True)
        return str(sandbox_id)

    async def _volume_ids(self, config: SandboxCreationConfig) -> list[str]:
        """The IDs of the volumes to mount, names looked up: one that does not exist fails the node
        before anything is made."""
        ids: list[str] = []
        for index, mount in enumerate(config.volumes):
            volume = await self.client.find_volume(mount.volume)
            if volume is None:
                issue = ConfigIssue(
                    f"volumes.{index}.volume", f'names no volume: none has the name or ID "{mount.volume}"'
                )
                raise ConfigError([issue], node=self.ctx.node_name or self.ctx.node_id)
            ids.append(volume.id)
        return ids

    async def _create(self, request: dict[str, Any], keep_on_failure: bool) -> SandboxInfo:
        key = creation_key(self.ctx)
        # Recorded before the request, released once its answer is: should this process die in
        # between (or give up on the run), the run's end still finds the sandbox by its label.
        self.save(creating=key)
        self.ctx.resources.acquire(LOST_CREATION_RESOURCE, key)
        try:
            sandbox = await self.client.create_sandbox(request, idempotency_key=key)
        except DaytonaError as error:
            if isinstance(error, DaytonaApiError) and error.status < 500 and error.status not in (408, 429):
                # Refused outright: no sandbox can exist (a timeout or a rate limit proves nothing:
                # an earlier attempt may have made one).
                self.ctx.resources.release(LOST_CREATION_RESOURCE, key)
                raise
            await self._reconcile_lost_creation(key, error)
            raise
        self.ctx.resources.acquire(SANDBOX_RESOURCE, sandbox.id)
        self._on_failure_of(sandbox.id, keep=keep_on_failure)
        self.ctx.resources.release(LOST_CREATION_RESOURCE, key)
        self.ctx.logger.info("created sandbox %s (state %s)", sandbox.id, sandbox.state)
        return sandbox

    def _on_failure_of(self, sandbox_id: str, *, keep: bool) -> None:
        """Delete the sandbox when the execution fails, or keep it (the run then no longer reclaims it)."""
        self.on_end({"releaseSandbox" if keep else "discardSandbox": sandbox_id}, only_on_failure=True)

    async def _reconcile_lost_creation(self, key: str, cause: DaytonaError) -> None:
        """A create that failed after it may have happened: find the sandbox by its label and delete
        it. When the lookup fails too, the key stays recorded for the engine's reclaim."""
        try:
            found = await self.client.sandboxes_created_with(key)
        except DaytonaError as error:
            self.ctx.logger.warning(
                "create failed (%s) and its sandbox cannot be looked up yet: %s", cause, error
            )
            return
        for sandbox in found:
            self.ctx.resources.acquire(SANDBOX_RESOURCE, sandbox.id)
            self.ctx.logger.warning("create failed (%s) but made sandbox %s: deleting it", cause, sandbox.id)
            await self._discard(sandbox.id)
        self.ctx.resources.release(LOST_CREATION_RESOURCE, key)

    async def _wait_started(self, sandbox_id: str, known: SandboxInfo | None) -> None:
        deadline = float(self.get("startDeadline"))

        async def started() -> bool | None:
            nonlocal known, deadline
            sandbox = known or await self.client.get_sandbox(sandbox_id)
            known = None
            if sandbox.state in STOPPED_STATES and not self.get("restarted"):
                # Stopped before it was handed on (its processes died, e.g. with the embedded
                # backend's runner process): nothing ran in it yet, so starting it again is safe, once.
                self.ctx.logger.warning(
                    "sandbox %s was stopped while starting: starting it again", sandbox_id
                )
                deadline = max(deadline, _timing.now() + RESTART_TIMEOUT_SECONDS)
                self.save(restarted=True, startDeadline=deadline)
                sandbox = await self.client.start_sandbox(sandbox_id)
            reason = _start_failure(sandbox, deadline)
            if reason is not None:
                raise ComponentError(reason)
            return True if sandbox.state == STARTED else None

        # The probe fails the node at the deadline; poll() ends early only when a restart moved it.
        limit = self.wait_limit(f"start:{sandbox_id}")
        while await self.poll(started, deadline=deadline, limit=limit) is None:
            continue

    async def _discard(self, sandbox_id: str) -> None:
        """Delete a sandbox the execution made; when that fails it stays a run resource (reclaimed later)."""
        try:
            await delete_if_present(self.client, sandbox_id)
        except DaytonaError as error:
            self.ctx.logger.warning("could not delete sandbox %s: %s", sandbox_id, error)
            return
        self.ctx.resources.release(SANDBOX_RESOURCE, sandbox_id)

    async def is_stopped(self, sandbox_id: str) -> bool:
        """Whether the sandbox exists but is stopped (a lookup that fails counts as no)."""
        try:
            sandbox = await self.client.get_sandbox(sandbox_id)
        except DaytonaError:
            return False
        return sandbox.state in STOPPED_STATES

    def restarting(self, sandbox_id: str) -> bool:
        """Whether a restart of the sandbox was under way when an earlier attempt ended (its wait
        handed to the engine): :meth:`restart` carries it on."""
        pending = self.get(_RESTARTING)
        return isinstance(pending, dict) and pending.get("sandbox") == sandbox_id

    async def restart(self, sandbox_id: str) -> None:
        """Start the stopped sandbox and wait until it is started (carrying on a restart under way)."""
        first: SandboxInfo | None = None
        resumed = self.restarting(sandbox_id)
        if resumed:
            ends_at = float(self.get(_RESTARTING)["until"])
        else:
            ends_at = _timing.now() + RESTART_TIMEOUT_SECONDS
        try:
            if not resumed:
                if self._hands_off_waits():
                    # The hook may end before the sandbox is started: the check must carry this on.
                    self.save(**{_RESTARTING: {"sandbox": sandbox_id, "until": ends_at}})
                first = await self.client.start_sandbox(sandbox_id)

            async def started() -> bool | None:
                nonlocal first, resumed
                sandbox = first or await self.client.get_sandbox(sandbox_id)
                first = None
                if resumed and sandbox.state in STOPPED_STATES:
                    # Recorded, but the start may have been lost with the attempt that recorded it.
                    sandbox = await self.client.start_sandbox(sandbox_id)
                resumed = False
                if sandbox.state == STARTED:
                    return True
                if sandbox.state in FAILED_STATES or sandbox.state in GONE_STATES or _timing.now() >= ends_at:
                    reason = f": {sandbox.error_reason}" if sandbox.error_reason else ""
                    raise SandboxRestartError(
                        f"sandbox {sandbox_id} was stopped and did not start again"
                        f" (state {sandbox.state}{reason})"
                    )
                return None

            await self.poll(started, limit=self.wait_limit(f"restart:{sandbox_id}"))
        except DaytonaError as error:
            raise SandboxRestartError(
                f"sandbox {sandbox_id} was stopped and could not be started again: {error}"
            ) from None
        if self.restarting(sandbox_id):
            self.save(**{_RESTARTING: None})

    # --- sandbox lookups and state changes -------------------------------------------------------

    async def find_sandbox(self, ref: str) -> SandboxInfo:
        """The sandbox ``ref`` (an ID or a name) names; one that does not exist fails the node saying so."""
        try:
            return await self.client.get_sandbox(ref)
        except DaytonaNotFoundError as error:
            raise ComponentError(
                f'node "{self.ctx.node_id}": sandbox "{ref}" was not found ({error.message})'
            ) from None

    async def bring_sandbox_to(
        self,
        ref: str,
        target: str,
        request: Callable[[str], Awaitable[SandboxInfo]],
        *,
        timeout: float,
        verb: str,
    ) -> SandboxInfo:
        """Ask for the sandbox's state change (``request(sandbox_id)``) and wait, with the adaptive
        wait of a start, until it is in ``target``; the sandbox as it then is.

        The sandbox's ID and the deadline are saved first, so a re-run (after an engine restart, or
        a check resuming a handed-off wait) carries on the same change by the same deadline. A
        sandbox already in ``target`` or on its way there is not asked again; one that is neither
        is asked once per attempt (a re-run's request may have been lost with the attempt before).
        Never saved under ``sandbox``: a cancelled or failed change leaves the sandbox alone.
        """
        pending = self.get(_TRANSITION)
        known: SandboxInfo | None = None
        if not isinstance(pending, dict):
            known = await self.find_sandbox(ref)
            pending = {"sandbox": known.id, "deadline": _timing.now() + timeout}
            self.save(**{_TRANSITION: pending})
        sandbox_id, deadline = str(pending["sandbox"]), float(pending["deadline"])
        on_the_way = _ON_THE_WAY.get(target, frozenset())
        asked = False

        async def arrived() -> SandboxInfo | None:
            nonlocal known, asked
            sandbox = known or await self.find_sandbox(sandbox_id)
            known = None
            if sandbox.state != target and sandbox.state not in on_the_way and not asked:
                asked = True
                sandbox = await self._request_change(sandbox_id, request, verb)
            if sandbox.state == target:
                return sandbox
            reason = _change_failure(sandbox, target, deadline, timeout)
            if reason is not None:
                raise ComponentError(f'node "{self.ctx.node_id}": {reason}')
            return None

        limit = self.wait_limit(f"{target}:{sandbox_id}")
        # arrived() fails the node once past the deadline; poll() may still end at it an instant
        # before (its own clock reading), and then the probe is asked once more.
        while (found := await self.poll(arrived, deadline=deadline, limit=limit)) is None:
            continue
        return found

    async def _request_change(
        self, sandbox_id: str, request: Callable[[str], Awaitable[SandboxInfo]], verb: str
    ) -> SandboxInfo:
        try:
            return await request(sandbox_id)
        except DaytonaApiError as error:
            if error.status >= 500 or error.status == 429:
                raise
            # Refused as asked (a backend that cannot do it, a state that forbids it, an endpoint it
            # lacks): the sandbox was just found, so its answer is said as the reason.
            raise ComponentError(
                f'node "{self.ctx.node_id}": cannot {verb} sandbox {sandbox_id}: {error.message}'
            ) from None

    # --- commands -------------------------------------------------------------------------------

    async def run_command(
        self, command: Command, ready: Callable[[], Awaitable[bool]] | None = None
    ) -> CommandResult:
        """Run ``command`` in its session until it exits (or, for a background command, until
        ``ready()``), ending it past its timeout; resumes the same command after a restart."""
        state = self.get(command.key)
        if state is None:
            started = _timing.now()
            state = {
                "sandbox": command.sandbox,
                "session": session_name(self.ctx.run_id, self.ctx.execution_id, command.purpose),
                "startedAt": started,
                "deadline": None if command.timeout is None else started + command.timeout,
                "commandId": None,
                "launched": False,
            }
        session = {"sandbox": state["sandbox"], "session": state["session"]}
        # One write: the command's state and that its session is cleaned up, before anything starts.
        self.save(
            **{command.key: state, _CLEANUP: self._cleanups_with(session, only_on_failure=command.background)}
        )
        # Which secret values to mask is asked while the command starts, not after.
        secrets = asyncio.create_task(injected_secret_values(self.client, command.sandbox, self.ctx.secrets))
        try:
            await self._start(command, state)
            try:
                if ready is not None:
                    return await self._until_ready(command, state, ready, secrets)
                return await self._until_exit(command, state, secrets)
            except DaytonaApiError:
                if await self.is_stopped(command.sandbox):
                    raise self._interrupted(command) from None
                raise
        finally:
            if secrets.done() and not secrets.cancelled():
                secrets.exception()  # retrieved: a failure here is not the one being raised
            secrets.cancel()

    async def _start(self, command: Command, state: dict[str, Any]) -> None:
        """Launch the command; a sandbox found stopped before it was sent is started again, once
        (a restart an earlier attempt handed to the engine is carried on, then the command starts)."""
        if not self.restarting(command.sandbox):
            try:
                await self._launch(command, state)
                return
            except DaytonaApiError:
                if not await self.is_stopped(command.sandbox):
                    raise
                if state["launched"]:
                    raise self._interrupted(command) from None
            self.ctx.logger.warning(
                "sandbox %s was stopped: starting it again to run the command", command.sandbox
            )
        await self.restart(command.sandbox)
        # The command starts now: its time limit counts from here.
        state["startedAt"] = _timing.now()
        state["deadline"] = None if command.timeout is None else state["startedAt"] + command.timeout
        self.save(**{command.key: state})
        await self._launch(command, state)

    def _interrupted(self, command: Command) -> InterruptedCommandError:
        sandbox = command.sandbox
        cleanups = self.get(_CLEANUP) or []
        if any(entry.get("discardSandbox") == sandbox for entry in cleanups):
            fate = f"sandbox {sandbox} is deleted"
        elif any(entry.get("releaseSandbox") == sandbox for entry in cleanups):
            fate = f"sandbox {sandbox} is kept"
        else:
            fate = (
                f"sandbox {sandbox} is left stopped with its files (the run's end deletes it unless"
                " sandboxes are kept)"
            )
        return InterruptedCommandError(
            f'node "{self.ctx.node_id}": {command.description} was interrupted: sandbox {sandbox}'
            " was found stopped, so its processes, the command's among them, had died (on the embedded"
            f" backend they die with the runner process). It had already started, so it is not run again;"
            f" {fate}"
        )

    async def _launch(self, command: Command, state: dict[str, Any]) -> None:
        """Start the command, or find it when an earlier attempt already did; saves its ID."""
        if state["commandId"] is not None:
            return
        sandbox, session = state["sandbox"], state["session"]
        if not await self.client.create_session(sandbox, session):
            # The session exists: an earlier attempt made it, and perhaps started the command.
            state["commandId"] = await self.client.session_command_at(sandbox, session, 0)
        if state["commandId"] is None:
            line = await command.build()
            # From here on the command may be running: it is never started again in a sandbox that
            # lost its processes.
            state["launched"] = True
            self.save(**{command.key: state})
            state["commandId"] = await self.client.start_session_command(sandbox, session, line, index=0)
        self.save(**{command.key: state})
        self.ctx.logger.info(
            "started command %s in session %s of sandbox %s", state["commandId"], session, sandbox
        )

    async def _until_exit(
        self, command: Command, state: dict[str, Any], secrets: asyncio.Task[list[str]]
    ) -> CommandResult:
        sandbox, session, command_id = state["sandbox"], state["session"], state["commandId"]
        deadline = state["deadline"]
        masking = _Masking(await secrets)
        output = OutputBuffer(command.keep_bytes)
        # The stream and the logs give the output from its start: what an earlier attempt already
        # showed (its wait handed to the engine) is not shown again.
        shown = _Shown(int(state.get("shown", 0)))
        limit = self.wait_limit(command.key)

        def report(text: str) -> None:
            new = shown.after(text)
            if new:
                self.ctx.report_output(new)

        def on_output(data: bytes) -> None:
            text = masking.feed(data)
            if text:
                output.add(text)
                report(text)

        exit_code: int | None = None
        try:
            async with self.ctx.waiting():
                if await self._follow(state, on_output, limit):
                    status = await self.client.get_session_command(sandbox, session, command_id)
                    exit_code = status.exit_code
            polled = exit_code is None
            if polled:
                exit_code = await self._poll_exit(state, limit)
        except _WaitHandedOff as handoff:
            handoff.saves[command.key] = {**state, "shown": shown.count}
            raise
        if polled:
            # Without a (whole) stream, the output is read once, at the end.
            streamed = output.total > 0
            output = OutputBuffer(command.keep_bytes)
            masking = _Masking(masking.values)
            text = masking.feed((await self._logs(state)).encode()) + masking.flush()
            output.add(text)
            shown.rewind()
            if not streamed:
                report(text)
        else:
            rest = masking.flush()
            if rest:
                output.add(rest)
                report(rest)
        if exit_code is None:
            # The in-sandbox timeout did not end it: end the session, which ends its processes.
            await self._end_session(sandbox, session)
            return CommandResult(124, output, True)
        past_deadline = deadline is not None and _timing.now() >= deadline
        return CommandResult(exit_code, output, past_deadline and exit_code in TIMEOUT_EXIT_CODES)

    async def _follow(
        self, state: dict[str, Any], on_output: Callable[[bytes], None], limit: _WaitLimit | None
    ) -> bool:
        """Follow the command's output stream to its end; False when the rest is left to polling
        (no stream offered, a stream that broke, or one still open past the kill grace). Past
        ``limit``, the wait is handed to the engine (a check follows the stream again).

        A status check every :data:`_WATCH_SECONDS` runs beside the stream: a stream that stays
        open after the command ended (a proxy holding it) does not hold the node.
        """
        deadline = state["deadline"]
        grace = None if deadline is None else max(0.0, deadline + KILL_GRACE_SECONDS - _timing.now())
        hand_off = None if limit is None else max(0.0, limit.at - _timing.now())
        handing_off = hand_off is not None and (grace is None or hand_off < grace)
        timeout = hand_off if handing_off else grace
        follow = asyncio.ensure_future(self.client.follow_session_command(*_command_of(state), on_output))
        watch = asyncio.ensure_future(self._watch_exit(state))
        try:
            done, _ = await asyncio.wait(
                {follow, watch}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if watch in done and follow not in done:
                # Ended by its status; the stream's last frames may still be on their way.
                done, _ = await asyncio.wait({follow}, timeout=_STREAM_CLOSE_GRACE_SECONDS)
            if follow not in done and handing_off and limit is not None:
                if not await self._has_exited(state):
                    raise _WaitHandedOff(limit.wait)
                # It ended while the stream was being replayed: however short the limit, a check
                # always gets to the end (the stream's last frames, else the logs).
                done, _ = await asyncio.wait({follow}, timeout=_STREAM_CLOSE_GRACE_SECONDS)
            if follow not in done:
                return False
            try:
                return follow.result()
            except DaytonaConnectionError as error:
                self.ctx.logger.info("the output stream ended early (%s): polling instead", error)
                return False
        finally:
            for task in (follow, watch):
                task.cancel()
            await asyncio.gather(follow, watch, return_exceptions=True)

    async def _watch_exit(self, state: dict[str, Any]) -> None:
        """Return once the command's status says it exited (asked every :data:`_WATCH_SECONDS`)."""
        while True:
            await asyncio.sleep(_WATCH_SECONDS)
            if await self._has_exited(state):
                return

    async def _has_exited(self, state: dict[str, Any]) -> bool:
        """Whether the command's status says it exited (a status that cannot be read says no)."""
        with contextlib.suppress(DaytonaError):
            return (await self.client.get_session_command(*_command_of(state))).exit_code is not None
        return False

    async def _poll_exit(self, state: dict[str, Any], limit: _WaitLimit | None) -> int | None:
        """The exit code once the command ended; None when it still runs past its kill grace."""
        deadline = state["deadline"]

        async def exited() -> int | None:
            status = await self.client.get_session_command(
                state["sandbox"], state["session"], state["commandId"]
            )
            return status.exit_code

        return await self.poll(
            exited, deadline=None if deadline is None else deadline + KILL_GRACE_SECONDS, limit=limit
        )

    async def _until_ready(
        self,
        command: Command,
        state: dict[str, Any],
        ready: Callable[[], Awaitable[bool]],
        secrets: asyncio.Task[list[str]],
    ) -> CommandResult:
        """A background command: running and ready, exited (how it ended), or not ready by its deadline."""
        sandbox, session, command_id = state["sandbox"], state["session"], state["commandId"]

        async def settled() -> tuple[int | None] | None:
            status = await self.client.get_session_command(sandbox, session, command_id)
            if status.exit_code is not None:
                return (status.exit_code,)
            return (None,) if await ready() else None

        answer = await self.poll(settled, deadline=state["deadline"], limit=self.wait_limit(command.key))
        masking = _Masking(await secrets)
        output = OutputBuffer(command.keep_bytes)
        output.add(masking.feed((await self._logs(state)).encode()) + masking.flush())
        if answer is None:
            await self._end_session(sandbox, session)
            return CommandResult(None, output, True)
        return CommandResult(answer[0], output, False)

    async def end_command(self, command: Command) -> None:
        """End ``command``'s session now (a background command that exited before it was ready)."""
        state = self.get(command.key)
        await self._end_session(state["sandbox"], state["session"])

    async def _logs(self, state: dict[str, Any]) -> str:
        logs = await self.client.get_session_command_logs(
            state["sandbox"], state["session"], state["commandId"]
        )
        return logs.output or (logs.stdout + logs.stderr)

    async def _end_session(self, sandbox: str, session: str) -> None:
        """Delete the session (ending whatever still runs in it); one already gone is fine, and so is
        a stopped sandbox: its sessions died with its processes."""
        try:
            await self.client.delete_session(sandbox, session)
        except DaytonaNotFoundError:
            return
        except DaytonaApiError:
            if not await self.is_stopped(sandbox):
                raise


def _migrate(ctx: ExecutionContext) -> None:
    """Metadata a version before the durable step persisted, in today's shape (a run resumed after
    an upgrade carries on where it was, and never starts its command twice)."""
    metadata = ctx.metadata.get()
    old_step, start, phase = metadata.get("step"), metadata.get("start"), metadata.get("phase")
    if not (isinstance(old_step, dict) or isinstance(start, dict)) or _CLEANUP in metadata:
        return
    cleanup: list[dict[str, Any]] = []
    if isinstance(start, dict):
        sandbox_id = str(start["sandboxId"])
        metadata.update(sandbox=sandbox_id, startDeadline=float(start["deadline"]))
        metadata["sandboxReady"] = phase in ("cloning", "bootstrapping")
        cleanup.append({"discardSandbox": sandbox_id, "onlyOnFailure": True})
    if "startedAt" in metadata and phase:
        metadata["sandboxStartedAt"] = metadata["startedAt"]
    if phase == "cloning":
        metadata["cloning"] = True
    if phase == "bootstrapping":
        metadata["cloned"] = True
    if isinstance(old_step, dict):
        key = "bootstrap" if phase else "command"
        metadata[key] = {
            "sandbox": old_step["sandbox"],
            "session": old_step["session"],
            "startedAt": old_step["startedAt"],
            "deadline": old_step.get("deadline"),
            "commandId": old_step.get("commandId"),
            "launched": bool(old_step.get("launched") or old_step.get("commandId")),
        }
        background = "-background-" in str(old_step["session"])
        cleanup.insert(
            0, {"sandbox": old_step["sandbox"], "session": old_step["session"], "onlyOnFailure": background}
        )
    metadata[_CLEANUP] = cleanup
    ctx.metadata.set(metadata)


async def delete_if_present(client: DaytonaClient, sandbox_id: str) -> bool:
    """Delete the sandbox; False when it was already gone."""
    try:
        await client.delete_sandbox(sandbox_id, force=True)
    except DaytonaNotFoundError:
        return False
    return True


async def reclaim_sandbox(client: DaytonaClient, kind: str, resource_id: str) -> None:
    """Free a sandbox a run left behind, or one a lost creation made (found by its label)."""
    if kind == LOST_CREATION_RESOURCE:
        for sandbox in await client.sandboxes_created_with(resource_id):
            await delete_if_present(client, sandbox.id)
        return
    if kind != SANDBOX_RESOURCE:
        raise ComponentError(f"cannot reclaim a resource of kind {kind!r}")
    await delete_if_present(client, resource_id)


def creation_key(ctx: ExecutionContext) -> str:
    """The idempotency key (and label) of the sandbox an execution creates: the same on every attempt."""
    return f"{ctx.run_id}/{ctx.execution_id}"


def _earliest(deadline: float | None, limit: _WaitLimit | None) -> float | None:
    """The sooner of a deadline and a hand-off (None: neither)."""
    moments = [moment for moment in (deadline, None if limit is None else limit.at) if moment is not None]
    return min(moments, default=None)


def _start_failure(sandbox: SandboxInfo, deadline: float) -> str | None:
    """Why the sandbox will never start, or None while it still may."""
    if sandbox.state in FAILED_STATES:
        reason = f": {sandbox.error_reason}" if sandbox.error_reason else ""
        return f"sandbox {sandbox.id} entered state {sandbox.state}{reason}"
    if sandbox.state in GONE_STATES:
        return f"sandbox {sandbox.id} was deleted while starting"
    if sandbox.state != STARTED and _timing.now() >= deadline:
        return f"sandbox {sandbox.id} did not reach started before the timeout (last state {sandbox.state})"
    return None


def _change_failure(sandbox: SandboxInfo, target: str, deadline: float, timeout: float) -> str | None:
    """Why the sandbox will not reach ``target``, or None while it still may."""
    if sandbox.state in FAILED_STATES:
        reason = f": {sandbox.error_reason}" if sandbox.error_reason else ""
        return f"sandbox {sandbox.id} entered state {sandbox.state}{reason} instead of {target}"
    if sandbox.state in GONE_STATES:
        return f"sandbox {sandbox.id} was deleted before it reached {target}"
    if _timing.now() >= deadline:
        return (
            f"sandbox {sandbox.id} did not reach {target} within {timeout:g} s (last state {sandbox.state})"
        )
    return None


def _same_target(left: dict[str, Any], right: dict[str, Any]) -> bool:
    """Whether two clean-up entries act on the same thing (a later one replaces the earlier)."""

    def target(entry: dict[str, Any]) -> dict[str, Any]:
        # Deleting or keeping a sandbox on failure is one decision about one sandbox.
        return {
            ("sandbox" if key in _SANDBOX_ENTRIES else key): value
            for key, value in entry.items()
            if key != "onlyOnFailure"
        }

    return target(left) == target(right)


def _describe(entry: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in entry.items() if key != "onlyOnFailure")


def _command_of(state: dict[str, Any]) -> tuple[str, str, str]:
    """Sandbox, session and command ID of a started command's persisted state."""
    return str(state["sandbox"]), str(state["session"]), str(state["commandId"])


class _Shown:
    """How much of a command's output (masked text, counted from its start) the live view was
    shown: a check that follows the command again gets its output from the start once more."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._position = 0

    def after(self, text: str) -> str:
        """What of ``text``, the output's next piece, was not shown yet; all of it counts as shown now."""
        start = self.count - self._position
        self._position += len(text)
        self.count = max(self.count, self._position)
        return text[max(0, start) :]

    def rewind(self) -> None:
        """The output comes again from its start."""
        self._position = 0


class _Masking:
    """Masks secret values in output that arrives in pieces.

    The text is decoded incrementally (a UTF-8 sequence split across pieces stays whole), and
    the last characters that could begin a value are held back until the next piece, so a
    value split across two pieces is masked too.
    """

    def __init__(self, values: Iterable[str]) -> None:
        # redact() masks values of four characters or more: only those need holding back for.
        self.values = tuple({value for value in values if len(value) >= 4})
        self._hold = max((len(value) for value in self.values), default=1) - 1
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""

    def feed(self, data: bytes) -> str:
        text = self._mask(self._pending + self._decoder.decode(data))
        if not self._hold:
            return text
        text, self._pending = text[: -self._hold], text[-self._hold :]
        return text

    def flush(self) -> str:
        text = self._mask(self._pending + self._decoder.decode(b"", final=True))
        self._pending = ""
        return text

    def _mask(self, text: str) -> str:
        return redact(text, self.values)
