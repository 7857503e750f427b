"""The engine: runs canvases event by event, persists every step, resumes after a crash.

One asyncio task per node execution that is doing work; a node waiting on a scheduled check holds
no task, only a timer and a row in the ``checks`` table. Each transition (start, emit + downstream
executions, check scheduled, failure) is one transaction, so a killed process resumes from the
last committed step: an execution whose hook had not returned runs its hook again (components make
that idempotent through their metadata), a scheduled check is re-armed, and no event is lost.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from daytonaflow.component import Component, NodeInput, SecretsProvider
from daytonaflow.errors import ComponentError, ConfigError, DaytonaflowError
from daytonaflow.expressions import ChainEntry, EventChain, ExpressionContext, evaluate_expression
from daytonaflow.runner import progress
from daytonaflow.runner.canvas import START_TRIGGER, Canvas, Node, parse_canvas
from daytonaflow.runner.context import (
    Emission,
    HookSlot,
    NodeContext,
    NoSecrets,
    RunResources,
    StoredMetadata,
)
from daytonaflow.runner.errors import CanvasError, RunNotFoundError
from daytonaflow.runner.graph import CanvasGraph
from daytonaflow.runner.hooks import (
    MANUAL_RUN_EVENT,
    Phase,
    describe_error,
    emitted_event,
    hook_input,
    inputs_given,
    manual_start_nodes,
    manual_trigger_event,
    pick_upstream,
    resolved_configuration,
)
from daytonaflow.runner.ownership import current_owner, owner_alive
from daytonaflow.runner.progress import Observer, RunUpdate
from daytonaflow.runner.registry import ComponentRegistry
from daytonaflow.runner.store import (
    ACTIVE_EXEC_STATES,
    EXEC_CANCELLED,
    EXEC_CHECKING,
    EXEC_COMPLETED,
    EXEC_EMITTED,
    EXEC_FAILED,
    EXEC_GATHERING,
    EXEC_PENDING,
    EXEC_RUNNING,
    EXEC_WAITING,
    RES_HELD,
    RES_KEPT,
    RES_RECLAIM_FAILED,
    RES_RECLAIMED,
    RUN_CANCELLED,
    RUN_CANCELLING,
    RUN_FAILED,
    RUN_SUCCEEDED,
    ResourceRecord,
    RunRecord,
    RunStore,
)
from daytonaflow.runner.triggers import FiredTrigger
from daytonaflow.runner.validation import check_canvas

#: How many component hooks may run at once across the engine's runs. A fan-out of thousands of
#: nodes then holds thousands of small waiting tasks, not thousands of clients and buffers.
DEFAULT_MAX_ACTIVE_HOOKS = 128
#: A run whose process died this many times while resuming it is failed instead of resumed again:
#: whatever kills the process (a node exhausting memory, a crashing extension) would otherwise
#: take down every later command that resumes it.
DEFAULT_MAX_RESUME_ATTEMPTS = 2
#: How many times one node may run in one run. Canvases may loop (SuperPlane's do); a loop whose
#: exit never comes then fails its run instead of running forever. Per node, so a wide fan-out of
#: distinct nodes is never mistaken for a loop.
DEFAULT_MAX_NODE_EXECUTIONS = 1000
_log = logging.getLogger("daytonaflow.runner")


@dataclass(eq=False)
class _Execution:
    id: str
    node: Node
    trigger_event_id: str | None
    metadata: dict[str, Any]
    status: str
    started_at: float | None = None
    task: asyncio.Task[None] | None = None
    timer: asyncio.TimerHandle | None = None
    due_at: float | None = None
    #: The events that reached it (one, but for a joining node), and how many its hook was given.
    inputs: list[str] = field(default_factory=list)
    inputs_seen: int = 0
    joins: bool = False
    #: A scheduled check came due while a hook of this (joining) execution was running.
    check_due: bool = False

    def current_input(self, phase: Phase) -> str | None:
        """The event the hook about to run answers: a joining node's next input (its latest on a check)."""
        return hook_input(self.trigger_event_id, self.inputs, self.inputs_seen, joins=self.joins, phase=phase)

    def is_stuck(self) -> bool:
        """A joining execution that has had every input, holds no timer and runs no hook."""
        return (
            self.joins
            and self.task is None
            and self.timer is None
            and self.status == EXEC_GATHERING
            and self.inputs_seen >= len(self.inputs)
        )


@dataclass(eq=False)
class _Run:
    id: str
    canvas: Canvas
    graph: CanvasGraph
    keep_resources: bool
    created_at: float
    done: asyncio.Future[RunRecord]
    active: dict[str, _Execution] = field(default_factory=dict)
    #: event id -> (parent event id, chain entry of the node that emitted it), until it is linked
    unlinked: dict[str, tuple[str | None, ChainEntry]] = field(default_factory=dict)
    #: event id -> the chain ending with that event; each links to its parent's, sharing it
    chains: dict[str, EventChain] = field(default_factory=dict)
    failure: str | None = None
    cancelling: bool = False
    finishing: bool = False
    #: Resumed after its process died, and no step taken since (see ``Engine.resume``).
    resumed: bool = False
    #: event id -> the channel it was emitted on (what a node's ``ctx.inputs`` report)
    channels: dict[str, str] = field(default_factory=dict)
    #: node id -> the open execution of a joining node, gathering its inputs
    open_joins: dict[str, _Execution] = field(default_factory=dict)
    #: node id -> how many executions of it the run has created (bounded: loops)
    execution_counts: dict[str, int] = field(default_factory=dict)
    #: node id -> (order, entry) of the latest event it emitted: templates find nodes off their
    #: linear chain here (the other branches of a merge), as SuperPlane does
    latest: dict[str, tuple[int, ChainEntry]] = field(default_factory=dict)
    #: node id -> the nodes upstream of it (computed when a template first looks past its chain)
    upstream_of: dict[str, set[str]] = field(default_factory=dict)
    events_added: int = 0

    def is_stopping(self) -> bool:
        """Cancelled, failed or finishing: no new execution may start."""
        return self.cancelling or self.finishing or self.failure is not None

    def add_event(self, event_id: str, parent_id: str | None, entry: ChainEntry) -> None:
        # Linked when a chain first reaches it: a resumed run's events may come in any order.
        self.unlinked[event_id] = (parent_id, entry)
        self.events_added += 1
        self.latest[entry.node_id] = (self.events_added, entry)

    def upstream_entry(self, node_id: str, key: str) -> ChainEntry | None:
        """The latest event in this run of the node upstream of ``node_id`` that ``key`` names.

        By name, then id, then component (unless nodes of different names share it); None when
        no such node has emitted.
        """
        upstream = self.upstream_of.get(node_id)
        if upstream is None:
            upstream = self.upstream_of[node_id] = self.graph.ancestors(node_id)
        return pick_upstream([self.latest[other] for other in upstream if other in self.latest], key)

    def chain(self, event_id: str | None) -> EventChain | None:
        """The events from the run's trigger down to ``event_id``, oldest first (None: no event)."""
        if event_id is None:
            return None
        pending: list[str] = []
        cursor: str | None = event_id
        while cursor is not None and cursor not in self.chains:
            pending.append(cursor)
            cursor = self.unlinked[cursor][0]
        chain = self.chains[cursor] if cursor is not None else None
        for step in reversed(pending):
            chain = EventChain(self.unlinked.pop(step)[1], chain)
            self.chains[step] = chain
        return chain


class Engine:
    """Runs canvases against a :class:`RunStore`; many runs at once, on the running event loop.

    ``registry`` maps component names to classes (default: entry-point discovery);
    ``integration`` is handed, opaque, to every component as ``ctx.integration``;
    ``hook_wait_limit`` to every hook as ``ctx.hook_wait_limit`` (None by default: this engine runs
    other hooks while one waits, so a wait need not become a scheduled check).
    """

    def __init__(
        self,
        store: RunStore,
        *,
        registry: Mapping[str, type[Component]] | None = None,
        integration: Any = None,
        secrets: SecretsProvider | None = None,
        observers: Sequence[Observer] = (),
        cancel_timeout: float = 30.0,
        max_active_hooks: int = DEFAULT_MAX_ACTIVE_HOOKS,
        max_resume_attempts: int | None = DEFAULT_MAX_RESUME_ATTEMPTS,
        max_node_executions: int = DEFAULT_MAX_NODE_EXECUTIONS,
        hook_wait_limit: float | None = None,
    ) -> None:
        self.store = store
        self.registry: Mapping[str, type[Component]] = (
            registry if registry is not None else ComponentRegistry.discover()
        )
        self.integration = integration
        self.secrets: SecretsProvider = secrets if secrets is not None else NoSecrets()
        self._observers: list[Observer] = list(observers)
        self._cancel_timeout = cancel_timeout
        self._owner = current_owner()
        self._runs: dict[str, _Run] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._hook_slots = asyncio.Semaphore(max_active_hooks)
        self._max_resume_attempts = max_resume_attempts
        self._max_node_executions = max_node_executions
        self._hook_wait_limit = hook_wait_limit

    # --- public API ----------------------------------------------------------------------------

    def subscribe(self, observer: Observer) -> None:
        self._observers.append(observer)

    @property
    def active_runs(self) -> list[str]:
        return list(self._runs)

    def validate(self, canvas: Canvas, *, source: str | None = None) -> None:
        """Raise :class:`CanvasError` with every problem of ``canvas``."""
        check_canvas(canvas, self.registry, source=source)

    async def start(
        self,
        canvas: Canvas,
        run_input: Any = None,
        *,
        keep_resources: bool = False,
        fired: FiredTrigger | None = None,
    ) -> str:
        """Validate ``canvas``, persist a new run and fire its start triggers; returns the run id.

        ``run_input`` becomes the trigger event's ``data`` (see :func:`manual_trigger_event`); the
        nodes that emit it are :func:`manual_start_nodes`.
        ``fired`` starts the run from one trigger's event (what ``daytonaflow up`` receives): only
        that node emits, and its recorded trigger event is marked started in the run's own
        transaction, so an event starts one run even if the process dies right after.
        """
        self.validate(canvas)
        if fired is not None:
            trigger = fired.event
            starts = [canvas.node(fired.node_id)]
        else:
            trigger = manual_trigger_event(canvas, run_input)
            starts = manual_start_nodes(canvas)
        data = trigger["data"]
        run_id = uuid.uuid4().hex[:12]
        run = self._new_run(run_id, canvas, keep_resources, time.time())
        created: list[_Execution] = []
        with self.store.transaction():
            self.store.insert_run(
                run_id, canvas.to_document(), data, keep_resources=keep_resources, owner=self._owner
            )
            if fired is not None and fired.record_id is not None:
                self.store.start_trigger_event(fired.record_id, run_id)
            for node in starts:
                execution_id = uuid.uuid4().hex
                event_id = uuid.uuid4().hex
                self.store.insert_execution(execution_id, run_id, node.id, node.name, node.component, None)
                self.store.insert_event(event_id, run_id, execution_id, node.id, "default", None, trigger)
                self.store.finish_execution(
                    execution_id, EXEC_EMITTED, channel="default", output_event_id=event_id
                )
                run.add_event(event_id, None, ChainEntry(node.id, node.name, node.component, trigger))
                run.channels[event_id] = "default"
                created.extend(self._insert_downstream(run, node, "default", event_id))
        self._runs[run_id] = run
        self._notify(RunUpdate(progress.RUN_STARTED, run_id, canvas.name))
        for node in starts:
            self._notify(
                RunUpdate(
                    progress.NODE_EMITTED,
                    run_id,
                    canvas.name,
                    node_id=node.id,
                    node_name=node.name,
                    component=node.component,
                    status=EXEC_EMITTED,
                    channel="default",
                    duration=0.0,
                    event=trigger,
                )
            )
        self._launch(run, created)
        return run_id

    async def wait(self, run_id: str) -> RunRecord:
        """Wait until the run (started or resumed by this engine) finishes; returns its final record."""
        run = self._runs.get(run_id)
        if run is None:
            return self.store.get_run(run_id)
        return await asyncio.shield(run.done)

    async def run(self, canvas: Canvas, run_input: Any = None, *, keep_resources: bool = False) -> RunRecord:
        """Start a run and wait for it."""
        return await self.wait(await self.start(canvas, run_input, keep_resources=keep_resources))

    async def resume(self, run_ids: Collection[str] | None = None) -> list[str]:
        """Take over every unfinished run whose process died (or only ``run_ids``); returns their ids."""
        resumed = []
        for record in self.store.unfinished_runs():
            if record.id in self._runs or (run_ids is not None and record.id not in run_ids):
                continue
            if owner_alive(record.owner) or not self.store.claim_run(record.id, record.owner, self._owner):
                continue
            if self._max_resume_attempts is not None and record.resume_attempts >= self._max_resume_attempts:
                self._give_up(record)
            else:
                # Counted before anything runs again: if this process dies too, the next one knows.
                self.store.count_resume_attempt(record.id)
                self._resume(record)
            resumed.append(record.id)
        return resumed

    async def cancel(self, run_id: str) -> RunRecord:
        """Cancel a run: stop its running executions, reclaim its resources, mark it cancelled."""
        run = self._runs.get(run_id)
        if run is None:
            record = self.store.get_run(run_id)
            if record.finished:
                return record
            raise RunNotFoundError(f'run "{run_id}" is not running in this process; resume it first')
        if not run.finishing and not run.cancelling:
            run.cancelling = True
            self.store.set_run_status(run.id, RUN_CANCELLING)
            await self._stop_all(run)
            await self._finish(run)
        return await asyncio.shield(run.done)

    async def aclose(self) -> None:
        """Stop driving runs without ending them: they stay unfinished on disk and resume later."""
        for run in list(self._runs.values()):
            for execution in list(run.active.values()):
                if execution.timer is not None:
                    execution.timer.cancel()
                if execution.task is not None:
                    execution.task.cancel()
            tasks = [e.task for e in run.active.values() if e.task is not None]
            await asyncio.gather(*tasks, return_exceptions=True)
            if not run.done.done():
                run.done.cancel()
            # Leaving on purpose is no crash: the next resume must not count this attempt.
            self.store.clear_resume_attempts(run.id)
        self._runs.clear()

    # --- run lifecycle ---------------------------------------------------------------------------

    def _new_run(self, run_id: str, canvas: Canvas, keep_resources: bool, created_at: float) -> _Run:
        loop = asyncio.get_running_loop()
        return _Run(run_id, canvas, CanvasGraph(canvas), keep_resources, created_at, loop.create_future())

    def _resume(self, record: RunRecord) -> None:
        canvas = parse_canvas(record.canvas, source=f"run {record.id}")
        run = self._new_run(record.id, canvas, record.keep_resources, record.created_at)
        run.resumed = True
        self._runs[run.id] = run
        for event in self.store.events(run.id):
            node = run.graph.nodes.get(event.node_id)
            name, component = (node.name, node.component) if node else (event.node_id, "")
            run.add_event(
                event.id,
                event.parent_event_id,
                ChainEntry(event.node_id, name, component, event.event, event.config),
            )
            run.channels[event.id] = event.channel
        due = {check.execution_id: check.due_at for check in self.store.checks(run.id)}
        for record_ in self.store.executions(run.id):
            run.execution_counts[record_.node_id] = run.execution_counts.get(record_.node_id, 0) + 1
            if record_.status in ACTIVE_EXEC_STATES:
                node = run.graph.nodes[record_.node_id]
                execution = _Execution(
                    record_.id,
                    node,
                    record_.trigger_event_id,
                    record_.metadata,
                    record_.status,
                    started_at=record_.started_at,
                    due_at=due.get(record_.id),
                    inputs=list(record_.inputs),
                    inputs_seen=record_.inputs_seen,
                    joins=self._joins(node),
                )
                run.active[execution.id] = execution
                if execution.joins:
                    run.open_joins[node.id] = execution
        self._notify(RunUpdate(progress.RUN_RESUMED, run.id, canvas.name))
        if record.status == RUN_CANCELLING:
            run.cancelling = True
            self._spawn(self._stop_then_finish(run))
            return
        if record.error is not None:
            # A node had failed when the previous process died: finish stopping, do not run on.
            run.failure = record.error
            self._spawn(self._stop_then_finish(run))
            return
        try:
            self.validate(canvas)
        except CanvasError as error:
            run.failure = f"cannot resume: {error}"
            self._spawn(self._stop_then_finish(run))
            return
        for execution in list(run.active.values()):
            if execution.status in (EXEC_WAITING, EXEC_CHECKING):
                self._arm_check(
                    run, execution, execution.due_at if execution.due_at is not None else time.time()
                )
                if execution.joins and execution.inputs_seen < len(execution.inputs):
                    self._start_execution(run, execution)
            else:
                if execution.joins and execution.due_at is not None:
                    self._arm_check(run, execution, execution.due_at)  # a timeout set before the crash
                if execution.status != EXEC_GATHERING or execution.inputs_seen < len(execution.inputs):
                    self._start_execution(run, execution)
        self._spawn(self._settle(run))

    def _give_up(self, record: RunRecord) -> None:
        """Fail a run whose resumes kept killing their process, without running any node again.

        The run is failed in the store first, so even a crash while reclaiming its resources
        cannot bring it back; the reclaim then runs as for any finished run.
        """
        canvas = parse_canvas(record.canvas, source=f"run {record.id}")
        run = self._new_run(record.id, canvas, record.keep_resources, record.created_at)
        interrupted = [e for e in self.store.executions(run.id) if e.status in ACTIVE_EXEC_STATES]
        names = ", ".join(f'"{e.node_id}"' for e in interrupted[:5])
        more = f" and {len(interrupted) - 5} more" if len(interrupted) > 5 else ""
        run.failure = (
            f"not resumed again: the process died in each of the last {record.resume_attempts} resumes"
            f" of this run before it finished (nodes interrupted: {names or 'none'}{more});"
            " a node may be crashing the runner"
        )
        with self.store.transaction():
            for execution in interrupted:
                self.store.finish_execution(execution.id, EXEC_FAILED, error=run.failure)
            self.store.set_run_status(run.id, RUN_FAILED, error=run.failure)
        self._runs[run.id] = run
        self._notify(RunUpdate(progress.RUN_RESUMED, run.id, canvas.name))
        self._spawn(self._finish(run))

    async def _stop_then_finish(self, run: _Run) -> None:
        await self._stop_all(run)
        await self._finish(run)

    def _launch(self, run: _Run, executions: list[_Execution]) -> None:
        for execution in executions:
            self._start_execution(run, execution)
        if run.failure is not None:
            self._spawn(self._stop_then_finish(run))
        elif not run.active:
            self._spawn(self._finish(run))

    def _start_execution(self, run: _Run, execution: _Execution) -> None:
        execution.task = asyncio.create_task(self._drive_in_slot(run, execution, "execute"))

    async def _drive_in_slot(self, run: _Run, execution: _Execution, phase: Phase) -> None:
        """Drive the execution once one of the engine's hook slots is free (a pending node waits here)."""
        async with HookSlot(self._hook_slots) as slot:
            await self._drive(run, execution, phase, slot)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        # Keep a reference until done: the loop holds tasks weakly.
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _insert_downstream(self, run: _Run, node: Node, channel: str, event_id: str) -> list[_Execution]:
        """Create the executions ``event_id`` starts (in the caller's transaction); returns those to drive.

        An event reaching a joining node that has an open execution joins it instead; that
        execution is returned when no hook of it is running (else its running hook picks it up).
        """
        created = []
        for target_id in self._listeners(run, node, channel):
            target = run.graph.nodes[target_id]
            joining = run.open_joins.get(target_id)
            if joining is not None:
                joining.inputs.append(event_id)
                self.store.add_input(joining.id, joining.inputs)
                if joining.task is None:
                    created.append(joining)
                continue
            count = run.execution_counts.get(target_id, 0)
            if count >= self._max_node_executions:
                if run.failure is None:
                    run.failure = (
                        f'node "{target_id}": reached its limit of {self._max_node_executions} executions'
                        " in this run (a loop that never ends?)"
                    )
                    self.store.set_run_error(run.id, run.failure)
                break
            run.execution_counts[target_id] = count + 1
            execution = _Execution(
                uuid.uuid4().hex,
                target,
                event_id,
                {},
                EXEC_PENDING,
                inputs=[event_id],
                joins=self._joins(target),
            )
            self.store.insert_execution(
                execution.id, run.id, target.id, target.name, target.component, event_id
            )
            run.active[execution.id] = execution
            if execution.joins:
                run.open_joins[target_id] = execution
            created.append(execution)
        return created

    def _joins(self, node: Node) -> bool:
        component = self.registry.get(node.component)
        return component is not None and component.joins_inputs

    # --- one node execution ------------------------------------------------------------------------

    async def _drive(
        self, run: _Run, execution: _Execution, phase: Phase, slot: HookSlot | None = None
    ) -> None:
        if run.is_stopping():
            return  # the run is being cancelled or failed: `_stop` settles this execution
        node = execution.node
        component = self.registry[node.component]
        status = EXEC_RUNNING if phase == "execute" else EXEC_CHECKING
        self.store.mark_started(execution.id, status)
        execution.status = status
        if execution.started_at is None:
            execution.started_at = time.time()
        if phase == "execute" and execution.inputs_seen == 0:
            self._notify(self._node_update(progress.NODE_STARTED, run, execution, status=status))
        try:
            ctx = self._context(run, execution, component, slot, phase)
            hook = component()
            await (hook.execute(ctx) if phase == "execute" else hook.check(ctx))
            event = emitted_event(component, ctx.emission.payload) if ctx.emission is not None else None
        except asyncio.CancelledError:
            raise
        except Exception as error:
            execution.task = None
            if run.is_stopping():
                # It failed while its run was being stopped (another branch failed, or a cancel):
                # `_stop` records the execution as cancelled.
                _log.debug("node %s of run %s failed while stopping: %s", node.id, run.id, error)
                return
            self._fail(run, execution, error)
            await self._stop_all(run)
            await self._finish(run)
            return
        execution.task = None
        if run.is_stopping():
            # A hook that returned while the run was being stopped must not start new work.
            return
        if ctx.emission is not None and event is not None:
            self._route(run, execution, ctx.emission, event, ctx.config, phase)
            if run.failure is not None:
                await self._stop_all(run)
                await self._finish(run)
                return
        elif ctx.check_delay is not None:
            due_at = time.time() + ctx.check_delay
            if execution.timer is not None:
                execution.timer.cancel()  # a joining node's new check replaces its earlier one
            self._seen(execution, phase)
            self.store.schedule_check(execution.id, run.id, due_at)
            execution.status = EXEC_WAITING
            self._notify(self._node_update(progress.NODE_WAITING, run, execution, status=EXEC_WAITING))
            self._arm_check(run, execution, due_at)
        elif execution.joins:
            # Open for more inputs; a check it scheduled earlier (a timeout) still stands.
            self._seen(execution, phase)
            execution.status = EXEC_WAITING if execution.timer is not None else EXEC_GATHERING
            self.store.set_inputs_seen(execution.id, execution.inputs_seen, execution.status)
            self._notify(self._node_update(progress.NODE_WAITING, run, execution, status=execution.status))
        else:
            self.store.finish_execution(execution.id, EXEC_COMPLETED)
            del run.active[execution.id]
            self._notify(self._node_update(progress.NODE_COMPLETED, run, execution, status=EXEC_COMPLETED))
        if execution.id in run.active and execution.joins:
            if execution.inputs_seen < len(execution.inputs):
                self._start_execution(run, execution)  # inputs that came while the hook ran
            elif execution.check_due:
                execution.check_due = False
                execution.task = asyncio.create_task(self._drive_in_slot(run, execution, "check"))
        await self._settle(run)

    @staticmethod
    def _seen(execution: _Execution, phase: Phase) -> None:
        if execution.joins and phase == "execute":
            execution.inputs_seen += 1

    async def _settle(self, run: _Run) -> None:
        """Finish a run with nothing left to do; fail one whose only open nodes wait for inputs in vain."""
        if run.is_stopping():
            return
        if not run.active:
            await self._finish(run)
            return
        if all(execution.is_stuck() for execution in run.active.values()):
            stuck = next(iter(run.active.values()))
            received = {self._input(run, event_id).source_node_id for event_id in stuck.inputs}
            missing = [source for source in run.graph.sources(stuck.node.id) if source not in received]
            names = ", ".join(f'"{run.graph.nodes[source].name}"' for source in missing) or "no node"
            self._fail(
                run,
                stuck,
                ComponentError(f"still waiting for input from {names} when the run had nothing left to run"),
            )
            await self._stop_all(run)
            await self._finish(run)

    def _context(
        self,
        run: _Run,
        execution: _Execution,
        component: type[Component],
        slot: HookSlot | None = None,
        phase: Phase = "execute",
    ) -> NodeContext:
        node = execution.node
        event_id = execution.current_input(phase)
        expression_context: ExpressionContext | None = None

        def context() -> ExpressionContext:
            nonlocal expression_context
            if expression_context is None:
                chain = run.chain(event_id)
                upstream = functools.partial(run.upstream_entry, node.id)
                if chain is None:
                    expression_context = ExpressionContext((), upstream=upstream)
                else:
                    expression_context = ExpressionContext(chain, chain.root.entry.event, upstream=upstream)
            return expression_context

        resolved = resolved_configuration(node.id, node.configuration, component.literal_fields, context)
        issues = component.validate_config(resolved, allow_expressions=False)
        if issues:
            raise ConfigError(issues, node=node.id)
        inputs = inputs_given(execution.inputs, execution.inputs_seen, joins=execution.joins, phase=phase)
        return NodeContext(
            component=component,
            run_id=run.id,
            node_id=node.id,
            node_name=node.name,
            execution_id=execution.id,
            config=resolved,
            integration=self.integration,
            secrets=self.secrets,
            metadata=_ExecutionMetadata(self.store, execution),
            resources=RunResources(self.store, run.id, node.id, node.component, execution.id),
            logger=logging.LoggerAdapter(
                logging.getLogger(f"daytonaflow.components.{node.component}"),
                {"run_id": run.id, "node_id": node.id, "execution_id": execution.id},
            ),
            inputs=tuple(self._input(run, input_id) for input_id in inputs),
            expected_sources=run.graph.sources(node.id),
            evaluator=lambda expression, field: evaluate_expression(
                expression, context(), node=node.id, field=field
            ),
            slot=slot,
            on_output=lambda text: self._notify(
                self._node_update(progress.NODE_OUTPUT, run, execution, text=text)
            ),
            hook_wait_limit=self._hook_wait_limit,
        )

    @staticmethod
    def _input(run: _Run, event_id: str) -> NodeInput:
        chain = run.chain(event_id)
        assert chain is not None  # an input is an event of this run
        entry = chain.entry
        return NodeInput(
            entry.node_id, entry.node_name, run.channels.get(event_id, ""), event_id, entry.event
        )

    def _route(
        self,
        run: _Run,
        execution: _Execution,
        emission: Emission,
        event: dict[str, Any],
        config: dict[str, Any],
        phase: Phase,
    ) -> None:
        node = execution.node
        channel = emission.channel
        event_id = uuid.uuid4().hex
        parent_id = execution.current_input(phase)
        unhandled = self._is_failure_channel(node, channel) and not self._listeners(run, node, channel)
        with self.store.transaction():
            self.store.insert_event(
                event_id, run.id, execution.id, node.id, channel, parent_id, event, config
            )
            self.store.finish_execution(execution.id, EXEC_EMITTED, channel=channel, output_event_id=event_id)
            if run.resumed:
                # A resumed run that moves on is not what kills its process: only resumes that die
                # before any step count toward the limit (runs resumed beside a crashing one, or
                # a process killed from outside, are not failed for it).
                self.store.clear_resume_attempts(run.id)
                run.resumed = False
            run.add_event(event_id, parent_id, ChainEntry(node.id, node.name, node.component, event, config))
            run.channels[event_id] = channel
            if run.open_joins.get(node.id) is execution:
                del run.open_joins[node.id]  # the next input starts the node's next group
            if unhandled and run.failure is None:
                run.failure = f'node "{node.id}" emitted on "{channel}" and no edge handles it'
                summary = emission.payload.failure_summary()
                if summary:
                    run.failure += f": {summary}"
                self.store.set_run_error(run.id, run.failure)
            created = self._insert_downstream(run, node, channel, event_id)
        del run.active[execution.id]
        if execution.timer is not None:
            execution.timer.cancel()
            execution.timer = None
        self._notify(
            self._node_update(
                progress.NODE_EMITTED, run, execution, status=EXEC_EMITTED, channel=channel, event=event
            )
        )
        for downstream in created:
            self._start_execution(run, downstream)

    def _listeners(self, run: _Run, node: Node, channel: str) -> list[str]:
        """The nodes an emit on ``channel`` starts, edges on the channel's old names included."""
        component = self.registry.get(node.component)
        if component is None or not component.channel_aliases:
            return run.graph.listeners(node.id, channel)
        targets: dict[str, None] = {}
        for name in component.listened_names(channel):
            targets.update(dict.fromkeys(run.graph.listeners(node.id, name)))
        return list(targets)

    def _is_failure_channel(self, node: Node, channel: str) -> bool:
        component = self.registry.get(node.component)
        if component is None:
            return False
        return any(declared.name == channel and declared.failure for declared in component.channels)

    def _fail(self, run: _Run, execution: _Execution, error: Exception) -> None:
        message = describe_error(error)
        if not isinstance(error, DaytonaflowError):
            _log.debug("node %s of run %s raised", execution.node.id, run.id, exc_info=error)
        with self.store.transaction():
            self.store.finish_execution(execution.id, EXEC_FAILED, error=message)
            if run.failure is None:
                located = message.startswith(f'node "{execution.node.id}"')
                run.failure = message if located else f'node "{execution.node.id}": {message}'
                # Stopping the other branches and reclaiming take a while: a crash meanwhile must
                # resume the run as failing, not carry on with its other branches.
                self.store.set_run_error(run.id, run.failure)
        run.active.pop(execution.id, None)
        self._notify(
            self._node_update(progress.NODE_FAILED, run, execution, status=EXEC_FAILED, error=message)
        )

    # --- scheduled checks ----------------------------------------------------------------------------

    def _arm_check(self, run: _Run, execution: _Execution, due_at: float) -> None:
        execution.due_at = due_at
        loop = asyncio.get_running_loop()
        execution.timer = loop.call_later(max(0.0, due_at - time.time()), self._fire_check, run, execution)

    def _fire_check(self, run: _Run, execution: _Execution) -> None:
        execution.timer = None
        if execution.id not in run.active or run.is_stopping():
            return
        if execution.task is not None:
            # A joining node's hook is taking an input: the check runs right after it.
            execution.check_due = True
            return
        execution.task = asyncio.create_task(self._drive_in_slot(run, execution, "check"))

    # --- ending runs ---------------------------------------------------------------------------------

    async def _stop_all(self, run: _Run) -> None:
        """Cancel every execution of the run still active (after a failure or on cancel)."""
        current = asyncio.current_task()
        executions = [e for e in run.active.values() if e.task is not current]
        await asyncio.gather(*(self._stop(run, execution) for execution in executions))

    async def _stop(self, run: _Run, execution: _Execution) -> None:
        if execution.id not in run.active:
            return  # it finished or failed while the stop was on its way
        if execution.timer is not None:
            execution.timer.cancel()
            execution.timer = None
        hook_started = execution.status != EXEC_PENDING or execution.task is None
        # The hook's task goes first: the cancel hook then sees the last metadata it persisted, and
        # nothing the task was doing (a create in flight) can land after the hook has looked.
        if execution.task is not None:
            execution.task.cancel()
            await asyncio.gather(execution.task, return_exceptions=True)
            execution.task = None
        if hook_started and execution.id in run.active:
            await self._call_cancel_hook(run, execution)
        if run.active.pop(execution.id, None) is not None:
            self.store.finish_execution(execution.id, EXEC_CANCELLED)
            self._notify(self._node_update(progress.NODE_CANCELLED, run, execution, status=EXEC_CANCELLED))

    async def _call_cancel_hook(self, run: _Run, execution: _Execution) -> None:
        component = self.registry.get(execution.node.component)
        if component is None:
            return
        try:
            ctx = self._context(run, execution, component)
            await asyncio.wait_for(component().cancel(ctx), self._cancel_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            _log.warning("cancelling node %s of run %s failed: %s", execution.node.id, run.id, error)

    async def _finish(self, run: _Run) -> None:
        if run.finishing:
            return
        run.finishing = True
        status = RUN_CANCELLED if run.cancelling else RUN_FAILED if run.failure else RUN_SUCCEEDED
        await self._reclaim(run)
        self.store.set_run_status(run.id, status, error=run.failure)
        self._runs.pop(run.id, None)
        record = self.store.get_run(run.id)
        self._notify(
            RunUpdate(
                progress.RUN_FINISHED,
                run.id,
                run.canvas.name,
                status=status,
                duration=time.time() - run.created_at,
                error=run.failure,
            )
        )
        if not run.done.done():
            run.done.set_result(record)

    async def _reclaim(self, run: _Run) -> None:
        for resource in self.store.resources(run.id):
            if resource.state != RES_HELD:
                continue
            node = run.graph.nodes.get(resource.node_id)
            if run.keep_resources or (node is not None and node.keep_resources):
                self._settle_resource(run, resource, RES_KEPT, progress.RESOURCE_KEPT)
                continue
            component = self.registry.get(resource.component)
            try:
                if component is None:
                    raise ComponentError(f'component "{resource.component}" is not installed')
                await component.reclaim(resource.kind, resource.resource_id, self.integration)
            except Exception as error:
                message = describe_error(error)
                _log.warning(
                    "could not reclaim %s:%s of run %s: %s",
                    resource.kind,
                    resource.resource_id,
                    run.id,
                    message,
                )
                self._settle_resource(
                    run, resource, RES_RECLAIM_FAILED, progress.RESOURCE_RECLAIM_FAILED, message
                )
                continue
            self._settle_resource(run, resource, RES_RECLAIMED, progress.RESOURCE_RECLAIMED)

    def _settle_resource(
        self, run: _Run, resource: ResourceRecord, state: str, kind: str, error: str | None = None
    ) -> None:
        self.store.set_resource_state(run.id, resource.kind, resource.resource_id, state, error)
        name = f"{resource.kind}:{resource.resource_id}"
        self._notify(
            RunUpdate(kind, run.id, run.canvas.name, node_id=resource.node_id, resource=name, error=error)
        )

    # --- observers ----------------------------------------------------------------------------------

    def _node_update(self, kind: str, run: _Run, execution: _Execution, **fields: Any) -> RunUpdate:
        started = execution.started_at
        return RunUpdate(
            kind,
            run.id,
            run.canvas.name,
            node_id=execution.node.id,
            node_name=execution.node.name,
            component=execution.node.component,
            execution_id=execution.id,
            duration=(time.time() - started) if started is not None else None,
            **fields,
        )

    def _notify(self, update: RunUpdate) -> None:
        for observer in self._observers:
            try:
                observer(update)
            except Exception:
                _log.exception("a run observer failed on %s", update.kind)


class _ExecutionMetadata(StoredMetadata):
    """Metadata that also keeps the in-memory execution current (a re-run hook sees the latest)."""

    def __init__(self, store: RunStore, execution: _Execution) -> None:
        super().__init__(store, execution.id, execution.metadata)
        self._execution = execution

    def set(self, metadata: Mapping[str, Any]) -> None:
        super().set(metadata)
        self._execution.metadata = self.get()


__all__ = ["MANUAL_RUN_EVENT", "START_TRIGGER", "Engine"]
