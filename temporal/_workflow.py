"""The one workflow that runs any canvas: runner/engine.py's semantics on Temporal's durable primitives.

The workflow interprets the canvas document it is given with the plan computed at submit time
(which channels fail, which nodes join their inputs, channel aliases, literal fields): it never
imports a component. Each hook call is an activity; a scheduled check is a durable timer followed
by a ``check`` activity; what a hook persists (metadata, resources) reaches the workflow as signals
recorded in history before the hook's ``set``/``acquire`` returns. Everything here is deterministic:
ids from ``workflow.uuid4()``, times from ``workflow.time()``, dicts iterated in insertion order.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from daytonaflow.errors import ComponentError, DaytonaflowError
    from daytonaflow.expressions import ChainEntry, EventChain, ExpressionContext
    from daytonaflow.runner import progress
    from daytonaflow.runner.canvas import Canvas, Node, parse_canvas
    from daytonaflow.runner.graph import CanvasGraph
    from daytonaflow.runner.hooks import (
        Phase,
        describe_error,
        hook_input,
        inputs_given,
        manual_start_nodes,
        pick_upstream,
        resolved_configuration,
    )
    from daytonaflow.runner.progress import RunUpdate
    from daytonaflow.runner.store import (
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
        RES_RELEASED,
        RUN_CANCELLED,
        RUN_CANCELLING,
        RUN_FAILED,
        RUN_RUNNING,
        RUN_SUCCEEDED,
        EventRecord,
        ExecutionRecord,
        ResourceRecord,
        RunRecord,
    )
    from daytonaflow.temporal._records import RunOptions, record_json
    from daytonaflow.temporal._shared import (
        ACTIVITY_CANCEL,
        ACTIVITY_HOOK,
        ACTIVITY_RECLAIM,
        COMPONENT_MISSING_ERROR,
        QUERY_PROGRESS,
        QUERY_SNAPSHOT,
        RUN_FAILED_ERROR,
        SIGNAL_METADATA,
        SIGNAL_RESOURCE,
        WORKER_SHUTDOWN_ERROR,
        WORKFLOW_NAME,
        entry_json,
    )


#: Temporal terminates a workflow at 50 MB of history (and 50,000 events: RunOptions.max_history_events);
#: the run fails cleanly before.
HISTORY_BYTES_LIMIT = 40 * 1024 * 1024
#: The largest snapshot returned as the result (Temporal refuses payloads above 2 MB).
RESULT_BYTES_LIMIT = 1024 * 1024
#: Updates one progress query returns at most (a query's answer must stay small).
PROGRESS_PAGE = 500
#: A hook may run this long in one attempt; a lost worker is noticed through heartbeats much sooner.
HOOK_ATTEMPT_LIMIT = timedelta(days=7)
RECLAIM_LIMIT = timedelta(minutes=10)


class _NodeFailure(DaytonaflowError):
    """A hook failed (its message as the activity worded it) or could not be run."""


@dataclass(eq=False)
class _Execution:
    id: str
    node: Node
    trigger_event_id: str | None
    metadata: dict[str, Any]
    status: str
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    channel: str | None = None
    output_event_id: str | None = None
    error: str | None = None
    task: asyncio.Task[None] | None = None
    timer: asyncio.Task[None] | None = None
    due_at: float | None = None
    inputs: list[str] = field(default_factory=list)
    inputs_seen: int = 0
    joins: bool = False
    check_due: bool = False
    #: Hook activities started for it: signals of an older attempt (a lost worker's) are ignored.
    attempt: int = 0
    #: Attempts whose worker was lost (heartbeats stopped, or it shut down under the hook).
    worker_losses: int = 0

    def current_input(self, phase: Phase) -> str | None:
        """The event the hook about to run answers (see runner/engine.py's ``_Execution``)."""
        return hook_input(self.trigger_event_id, self.inputs, self.inputs_seen, joins=self.joins, phase=phase)

    def is_stuck(self) -> bool:
        return (
            self.joins
            and self.task is None
            and self.timer is None
            and self.status == EXEC_GATHERING
            and self.inputs_seen >= len(self.inputs)
        )

    def record(self, run_id: str) -> ExecutionRecord:
        return ExecutionRecord(
            id=self.id,
            run_id=run_id,
            node_id=self.node.id,
            node_name=self.node.name,
            component=self.node.component,
            trigger_event_id=self.trigger_event_id,
            status=self.status,
            metadata=self.metadata,
            channel=self.channel,
            output_event_id=self.output_event_id,
            error=self.error,
            created_at=self.created_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            inputs=tuple(self.inputs),
            inputs_seen=self.inputs_seen,
        )


@workflow.defn(name=WORKFLOW_NAME)
class CanvasWorkflow:
    """One canvas run; input ``{run_id, canvas, input, trigger_event, keep_resources, plan, options}``."""

    def __init__(self) -> None:
        self._updates: list[dict[str, Any]] = []
        self._executions: dict[str, _Execution] = {}
        self._active: dict[str, _Execution] = {}
        self._events: list[EventRecord] = []
        self._chains: dict[str, EventChain] = {}
        self._channels: dict[str, str] = {}
        self._open_joins: dict[str, _Execution] = {}
        self._execution_counts: dict[str, int] = {}
        self._latest: dict[str, tuple[int, ChainEntry]] = {}
        self._upstream_of: dict[str, set[str]] = {}
        self._resources: dict[tuple[str, str], ResourceRecord] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._failure: str | None = None
        self._cancelling = False
        self._finishing = False
        self._done = False
        self._status = RUN_RUNNING
        self._finished_at: float | None = None
        self._run_id = ""
        self._created_at = 0.0
        self._started = False

    # --- entry point ------------------------------------------------------------------------

    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            self._setup(params)
        except Exception as error:
            # The client validated the canvas: an input it did not write (another client's, an older
            # one's) fails the run at once instead of failing its workflow task forever.
            raise ApplicationError(
                f"cannot run: {describe_error(error)}", type=RUN_FAILED_ERROR, non_retryable=True
            ) from None
        self._start_triggers(params["trigger_event"])
        try:
            await workflow.wait_condition(lambda: self._done)
        except asyncio.CancelledError:
            if not self._finishing and not self._cancelling:
                self._cancelling = True
                await self._stop_all()
                await self._finish()
            await workflow.wait_condition(lambda: self._done)
            if self._status == RUN_CANCELLED:
                raise
        if self._status == RUN_FAILED:
            raise ApplicationError(
                self._failure or "the run failed",
                self._bounded_snapshot(),
                type=RUN_FAILED_ERROR,
                non_retryable=True,
            )
        return self._bounded_snapshot()

    def _bounded_snapshot(self) -> dict[str, Any]:
        """The snapshot as the workflow's result, unless it is too big for one (then the run's own
        record only: the client reads the rest through the snapshot query)."""
        snapshot = self.snapshot()
        if len(json.dumps(snapshot, separators=(",", ":"))) <= RESULT_BYTES_LIMIT:
            return snapshot
        return {"run": snapshot["run"], "truncated": True}

    def _setup(self, params: dict[str, Any]) -> None:
        self._run_id = str(params["run_id"])
        self._canvas_document: dict[str, Any] = params["canvas"]
        self._canvas: Canvas = parse_canvas(self._canvas_document, source=f"run {self._run_id}")
        self._graph = CanvasGraph(self._canvas)
        self._input: Any = params.get("input")
        self._keep_resources = bool(params.get("keep_resources", False))
        self._plan: dict[str, dict[str, Any]] = params["plan"]["components"]
        self._options = RunOptions.from_json(params.get("options"))
        self._created_at = workflow.time()
        self._started = True

    def _start_triggers(self, trigger: dict[str, Any]) -> None:
        starts = manual_start_nodes(self._canvas)
        created: list[_Execution] = []
        for node in starts:
            execution = self._new_execution(node, None, EXEC_PENDING)
            event_id = self._uuid()
            self._add_event(event_id, execution, "default", None, trigger, None)
            self._settle_emitted(execution, "default", event_id)
            created.extend(self._insert_downstream(node, "default", event_id))
        self._notify(RunUpdate(progress.RUN_STARTED, self._run_id, self._canvas.name, timestamp=self._now()))
        for node in starts:
            self._notify(
                RunUpdate(
                    progress.NODE_EMITTED,
                    self._run_id,
                    self._canvas.name,
                    node_id=node.id,
                    node_name=node.name,
                    component=node.component,
                    status=EXEC_EMITTED,
                    channel="default",
                    duration=0.0,
                    event=trigger,
                    timestamp=self._now(),
                )
            )
        for execution in created:
            self._start_execution(execution)
        if self._failure is not None:
            self._spawn(self._stop_then_finish())
        elif not self._active:
            self._spawn(self._finish())

    # --- signals and queries -----------------------------------------------------------------

    @workflow.signal(name=SIGNAL_METADATA)
    def on_metadata(self, message: Any) -> None:
        # A signal handler that raises fails every replay of the run: anything malformed is ignored.
        execution = self._signalled_execution(message)
        metadata = message.get("metadata") if execution is not None else None
        if execution is None or message.get("attempt") != execution.attempt or not isinstance(metadata, dict):
            return  # from an attempt the workflow has given up on (its worker was lost), or malformed
        execution.metadata = dict(metadata)

    def _signalled_execution(self, message: Any) -> _Execution | None:
        if not isinstance(message, dict):
            return None
        return self._executions.get(str(message.get("execution_id")))

    @workflow.signal(name=SIGNAL_RESOURCE)
    def on_resource(self, message: Any) -> None:
        execution = self._signalled_execution(message)
        if execution is None:
            return
        kind, resource_id, op = message.get("kind"), message.get("resource_id"), message.get("op")
        if not isinstance(kind, str) or not isinstance(resource_id, str):
            return
        # An acquire from any attempt is kept (a lost attempt's sandbox exists all the same and must
        # be reclaimed); a release only from the current one.
        if op != "acquire" and message.get("attempt") != execution.attempt:
            return
        key = (kind, resource_id)
        held = self._resources.get(key)
        if op == "acquire":
            if held is None:
                self._resources[key] = ResourceRecord(
                    run_id=self._run_id,
                    kind=key[0],
                    resource_id=key[1],
                    node_id=execution.node.id,
                    component=execution.node.component,
                    execution_id=execution.id,
                    state=RES_HELD,
                    error=None,
                    acquired_at=self._now(),
                )
            else:  # acquired again (a re-run hook): held once more, as the store's upsert does
                self._resources[key] = _replace_state(held, RES_HELD, None)
        elif held is not None:
            self._resources[key] = _replace_state(held, RES_RELEASED, None)

    @workflow.query(name=QUERY_PROGRESS)
    def progress(self, after: int = 0) -> dict[str, Any]:
        start = max(0, int(after))
        page = self._updates[start : start + PROGRESS_PAGE]
        following = start + len(page)
        return {
            "updates": page,
            "next": following,
            "finished": self._done and following >= len(self._updates),
        }

    @workflow.query(name=QUERY_SNAPSHOT)
    def snapshot(self) -> dict[str, Any]:
        return {
            "run": record_json(self._run_record()),
            "executions": [record_json(e.record(self._run_id)) for e in self._executions.values()],
            "events": [record_json(event) for event in self._events],
            "resources": [record_json(resource) for resource in self._resources.values()],
        }

    def _run_record(self) -> RunRecord:
        status = self._status
        if status == RUN_RUNNING and self._cancelling:
            status = RUN_CANCELLING
        return RunRecord(
            id=self._run_id,
            canvas_name=self._canvas.name if self._started else "",
            canvas=self._canvas_document if self._started else {},
            input=self._input if self._started else None,
            status=status,
            keep_resources=self._keep_resources if self._started else False,
            owner=None,
            error=self._failure,
            created_at=self._created_at,
            finished_at=self._finished_at,
        )

    # --- the graph ----------------------------------------------------------------------------

    def _is_stopping(self) -> bool:
        return self._cancelling or self._finishing or self._failure is not None

    def _component_plan(self, node: Node) -> dict[str, Any]:
        return self._plan.get(node.component, {})

    def _joins(self, node: Node) -> bool:
        return bool(self._component_plan(node).get("joins_inputs", False))

    def _listeners(self, node: Node, channel: str) -> list[str]:
        """The nodes an emit on ``channel`` starts, edges on the channel's old names included."""
        names = self._component_plan(node).get("listened", {}).get(channel)
        if not names:
            return self._graph.listeners(node.id, channel)
        targets: dict[str, None] = {}
        for name in names:
            targets.update(dict.fromkeys(self._graph.listeners(node.id, name)))
        return list(targets)

    def _is_failure_channel(self, node: Node, channel: str) -> bool:
        return channel in self._component_plan(node).get("failure_channels", ())

    def _new_execution(self, node: Node, trigger_event_id: str | None, status: str) -> _Execution:
        execution = _Execution(
            self._uuid(),
            node,
            trigger_event_id,
            {},
            status,
            created_at=self._now(),
            inputs=[trigger_event_id] if trigger_event_id is not None else [],
            joins=self._joins(node),
        )
        self._executions[execution.id] = execution
        return execution

    def _insert_downstream(self, node: Node, channel: str, event_id: str) -> list[_Execution]:
        created = []
        for target_id in self._listeners(node, channel):
            target = self._graph.nodes[target_id]
            joining = self._open_joins.get(target_id)
            if joining is not None:
                joining.inputs.append(event_id)
                if joining.task is None:
                    created.append(joining)
                continue
            count = self._execution_counts.get(target_id, 0)
            limit = self._options.max_node_executions
            if count >= limit:
                if self._failure is None:
                    self._failure = (
                        f'node "{target_id}": reached its limit of {limit} executions'
                        " in this run (a loop that never ends?)"
                    )
                break
            self._execution_counts[target_id] = count + 1
            execution = self._new_execution(target, event_id, EXEC_PENDING)
            self._active[execution.id] = execution
            if execution.joins:
                self._open_joins[target_id] = execution
            created.append(execution)
        return created

    def _add_event(
        self,
        event_id: str,
        execution: _Execution,
        channel: str,
        parent_id: str | None,
        event: dict[str, Any],
        config: dict[str, Any] | None,
    ) -> None:
        node = execution.node
        self._events.append(
            EventRecord(
                event_id, self._run_id, execution.id, node.id, channel, parent_id, event, self._now(), config
            )
        )
        entry = ChainEntry(node.id, node.name, node.component, event, config)
        parent = self._chains.get(parent_id) if parent_id is not None else None
        self._chains[event_id] = EventChain(entry, parent)
        self._channels[event_id] = channel
        self._latest[node.id] = (len(self._events), entry)

    def _settle_emitted(self, execution: _Execution, channel: str, event_id: str) -> None:
        execution.status = EXEC_EMITTED
        execution.channel = channel
        execution.output_event_id = event_id
        execution.finished_at = self._now()

    def _upstream_entry(self, node_id: str, key: str) -> ChainEntry | None:
        """The latest event of an upstream node ``key`` names (runner/engine.py's ``upstream_entry``)."""
        emitted = self._upstream_emitted(node_id)
        return pick_upstream(emitted, key)

    def _upstream_emitted(self, node_id: str) -> list[tuple[int, ChainEntry]]:
        upstream = self._upstream_of.get(node_id)
        if upstream is None:
            upstream = self._upstream_of[node_id] = self._graph.ancestors(node_id)
        # Sorted by emit order: the set's iteration order is no part of the answer, nor of history.
        return sorted(
            (self._latest[other] for other in upstream if other in self._latest), key=lambda pair: pair[0]
        )

    # --- one node execution --------------------------------------------------------------------

    def _start_execution(self, execution: _Execution) -> None:
        execution.task = asyncio.create_task(self._drive(execution, "execute"))

    async def _drive(self, execution: _Execution, phase: Phase) -> None:
        if self._is_stopping():
            return
        status = EXEC_RUNNING if phase == "execute" else EXEC_CHECKING
        execution.status = status
        if execution.started_at is None:
            execution.started_at = self._now()
        if phase == "execute" and execution.inputs_seen == 0:
            self._notify(self._node_update(progress.NODE_STARTED, execution, status=status))
        try:
            result = await self._call_hook(execution, phase)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            execution.task = None
            if self._is_stopping():
                return
            self._fail(execution, error)
            await self._stop_all()
            await self._finish()
            return
        execution.task = None
        if self._is_stopping():
            return
        emitted = result.get("emit")
        if emitted is not None:
            self._route(execution, emitted, result["config"], phase)
            if self._failure is not None:
                await self._stop_all()
                await self._finish()
                return
        elif result.get("check") is not None:
            delay = float(result["check"])
            if execution.timer is not None:
                execution.timer.cancel()  # a joining node's new check replaces its earlier one
            self._seen(execution, phase)
            execution.status = EXEC_WAITING
            self._notify(self._node_update(progress.NODE_WAITING, execution, status=EXEC_WAITING))
            self._arm_check(execution, delay)
        elif execution.joins:
            self._seen(execution, phase)
            execution.status = EXEC_WAITING if execution.timer is not None else EXEC_GATHERING
            self._notify(self._node_update(progress.NODE_WAITING, execution, status=execution.status))
        else:
            execution.status = EXEC_COMPLETED
            execution.finished_at = self._now()
            del self._active[execution.id]
            self._notify(self._node_update(progress.NODE_COMPLETED, execution, status=EXEC_COMPLETED))
        if execution.id in self._active and execution.joins:
            if execution.inputs_seen < len(execution.inputs):
                self._start_execution(execution)
            elif execution.check_due:
                execution.check_due = False
                execution.task = asyncio.create_task(self._drive(execution, "check"))
        await self._settle()

    @staticmethod
    def _seen(execution: _Execution, phase: Phase) -> None:
        if execution.joins and phase == "execute":
            execution.inputs_seen += 1

    async def _call_hook(self, execution: _Execution, phase: Phase) -> dict[str, Any]:
        """Run the hook as an activity; run it again (with the latest metadata) when its worker is lost."""
        self._check_history()
        request = self._hook_request(execution, phase)
        while True:
            execution.attempt += 1
            request["attempt"] = execution.attempt
            request["metadata"] = execution.metadata
            try:
                result: dict[str, Any] = await workflow.execute_activity(
                    ACTIVITY_HOOK,
                    request,
                    start_to_close_timeout=HOOK_ATTEMPT_LIMIT,
                    heartbeat_timeout=timedelta(seconds=self._options.heartbeat_seconds),
                    retry_policy=RetryPolicy(maximum_attempts=1),
                    cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                    summary=f"{execution.node.id} {phase}",
                )
            except ActivityError as error:
                if isinstance(error.cause, CancelledError):
                    raise asyncio.CancelledError() from error
                if not _is_worker_loss(error):
                    raise _NodeFailure(_activity_failure(error)) from None
                if self._is_stopping():
                    # Lost while being stopped (the cancel waited on a dead worker): do not run it again.
                    raise asyncio.CancelledError() from error
                execution.worker_losses += 1
                if execution.worker_losses > self._options.max_worker_losses:
                    raise _NodeFailure(
                        f'node "{execution.node.id}": the worker running its {phase} hook was lost'
                        f" {execution.worker_losses} times (limit {self._options.max_worker_losses})"
                    ) from None
                workflow.logger.warning(
                    "node %s: its worker was lost (%s); running the hook again", execution.node.id, error
                )
                continue
            execution.metadata = dict(result.get("metadata") or {})
            if "error" in result:
                raise _NodeFailure(str(result["error"]))
            result["config"] = request["config"]
            return result

    def _check_history(self) -> None:
        info = workflow.info()
        length, size = info.get_current_history_length(), info.get_current_history_size()
        events_limit = self._options.max_history_events
        if length > events_limit or size > HISTORY_BYTES_LIMIT:
            raise _NodeFailure(
                f"the run's Temporal history reached {length} events ({size / 1e6:.1f} MB), near"
                f" its limits ({events_limit} events, {HISTORY_BYTES_LIMIT / 1e6:.0f} MB):"
                " the run stops here (split the canvas, or run it on the embedded engine)"
            )

    def _hook_request(self, execution: _Execution, phase: Phase) -> dict[str, Any]:
        """What the hook activity needs: the node, its resolved configuration, inputs and metadata.

        The configuration is resolved here, on workflow time (``now()`` is the same on a replay);
        a component that evaluates expressions itself also gets the context its templates see.
        """
        node = execution.node
        plan = self._component_plan(node)
        event_id = execution.current_input(phase)
        clock_value = workflow.now()
        expression_context: ExpressionContext | None = None

        def context() -> ExpressionContext:
            nonlocal expression_context
            if expression_context is None:
                chain = self._chains.get(event_id) if event_id is not None else None
                upstream = functools.partial(self._upstream_entry, node.id)
                expression_context = ExpressionContext(
                    chain if chain is not None else (),
                    chain.root.entry.event if chain is not None else None,
                    clock=lambda: clock_value,
                    upstream=upstream,
                )
            return expression_context

        literal = frozenset(plan.get("literal_fields", ()))
        resolved = resolved_configuration(node.id, node.configuration, literal, context)
        inputs = inputs_given(execution.inputs, execution.inputs_seen, joins=execution.joins, phase=phase)
        request: dict[str, Any] = {
            "run_id": self._run_id,
            "execution_id": execution.id,
            "phase": phase,
            "node": {"id": node.id, "name": node.name, "component": node.component},
            "config": resolved,
            "inputs": [self._input_of(input_id) for input_id in inputs],
            "expected_sources": list(self._graph.sources(node.id)),
            "hook_wait_limit": self._options.hook_wait_limit,
            "heartbeat_seconds": self._options.heartbeat_seconds,
        }
        if literal:
            chain = self._chains.get(event_id) if event_id is not None else None
            request["expression"] = {
                "chain": [entry_json(entry) for entry in chain] if chain is not None else [],
                "upstream": [[order, entry_json(entry)] for order, entry in self._upstream_emitted(node.id)],
                "now": clock_value.timestamp(),
            }
        return request

    def _input_of(self, event_id: str) -> dict[str, Any]:
        entry = self._chains[event_id].entry
        return {
            "source_node_id": entry.node_id,
            "source_node_name": entry.node_name,
            "channel": self._channels.get(event_id, ""),
            "event_id": event_id,
            "event": entry.event,
        }

    def _route(
        self, execution: _Execution, emitted: dict[str, Any], config: dict[str, Any], phase: Phase
    ) -> None:
        node = execution.node
        channel = str(emitted["channel"])
        event: dict[str, Any] = emitted["event"]
        event_id = self._uuid()
        parent_id = execution.current_input(phase)
        unhandled = self._is_failure_channel(node, channel) and not self._listeners(node, channel)
        self._add_event(event_id, execution, channel, parent_id, event, config)
        self._settle_emitted(execution, channel, event_id)
        if self._open_joins.get(node.id) is execution:
            del self._open_joins[node.id]
        if unhandled and self._failure is None:
            self._failure = f'node "{node.id}" emitted on "{channel}" and no edge handles it'
            summary = emitted.get("summary")
            if summary:
                self._failure += f": {summary}"
        created = self._insert_downstream(node, channel, event_id)
        del self._active[execution.id]
        if execution.timer is not None:
            execution.timer.cancel()
            execution.timer = None
        self._notify(
            self._node_update(
                progress.NODE_EMITTED, execution, status=EXEC_EMITTED, channel=channel, event=event
            )
        )
        for downstream in created:
            self._start_execution(downstream)

    def _fail(self, execution: _Execution, error: Exception) -> None:
        message = describe_error(error)
        execution.status = EXEC_FAILED
        execution.error = message
        execution.finished_at = self._now()
        if self._failure is None:
            located = message.startswith(f'node "{execution.node.id}"')
            self._failure = message if located else f'node "{execution.node.id}": {message}'
        self._active.pop(execution.id, None)
        self._notify(self._node_update(progress.NODE_FAILED, execution, status=EXEC_FAILED, error=message))

    async def _settle(self) -> None:
        if self._is_stopping():
            return
        if not self._active:
            await self._finish()
            return
        if all(execution.is_stuck() for execution in self._active.values()):
            stuck = next(iter(self._active.values()))
            received = {self._chains[event_id].entry.node_id for event_id in stuck.inputs}
            missing = [source for source in self._graph.sources(stuck.node.id) if source not in received]
            names = ", ".join(f'"{self._graph.nodes[source].name}"' for source in missing) or "no node"
            self._fail(
                stuck,
                ComponentError(f"still waiting for input from {names} when the run had nothing left to run"),
            )
            await self._stop_all()
            await self._finish()

    # --- scheduled checks ----------------------------------------------------------------------

    def _arm_check(self, execution: _Execution, delay: float) -> None:
        execution.due_at = self._now() + delay
        execution.timer = asyncio.create_task(self._check_after(execution, delay))

    async def _check_after(self, execution: _Execution, delay: float) -> None:
        # A durable timer: no worker slot is held while the node waits.
        await workflow.sleep(max(0.0, delay), summary=f"{execution.node.id} check")
        execution.timer = None
        if execution.id not in self._active or self._is_stopping():
            return
        if execution.task is not None:
            execution.check_due = True  # a joining node's hook is taking an input: check right after
            return
        execution.task = asyncio.create_task(self._drive(execution, "check"))

    # --- ending runs ---------------------------------------------------------------------------

    async def _stop_then_finish(self) -> None:
        await self._stop_all()
        await self._finish()

    async def _stop_all(self) -> None:
        current = asyncio.current_task()
        executions = [e for e in self._active.values() if e.task is not current]
        await asyncio.gather(*(self._stop(execution) for execution in executions))

    async def _stop(self, execution: _Execution) -> None:
        if execution.id not in self._active:
            return
        if execution.timer is not None:
            execution.timer.cancel()
            execution.timer = None
        hook_started = execution.status != EXEC_PENDING or execution.task is None
        # The hook's activity goes first (waiting for its cancellation to complete): the cancel hook
        # then sees the last metadata it signalled, and nothing it did can land after.
        if execution.task is not None:
            execution.task.cancel()
            await asyncio.gather(execution.task, return_exceptions=True)
            execution.task = None
        if hook_started and execution.id in self._active:
            await self._call_cancel_hook(execution)
        if self._active.pop(execution.id, None) is not None:
            execution.status = EXEC_CANCELLED
            execution.finished_at = self._now()
            self._notify(self._node_update(progress.NODE_CANCELLED, execution, status=EXEC_CANCELLED))

    async def _call_cancel_hook(self, execution: _Execution) -> None:
        if execution.node.component not in self._plan:
            return
        try:
            request = self._hook_request(execution, "execute")
            execution.attempt += 1
            request["attempt"] = execution.attempt
            request["metadata"] = execution.metadata
            cancel_timeout = timedelta(seconds=self._options.cancel_timeout)
            result: dict[str, Any] = await workflow.execute_activity(
                ACTIVITY_CANCEL,
                request,
                schedule_to_close_timeout=cancel_timeout,
                heartbeat_timeout=timedelta(seconds=self._options.heartbeat_seconds),
                summary=f"{execution.node.id} cancel",
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            workflow.logger.warning("cancelling node %s failed: %s", execution.node.id, describe_error(error))
            return
        if result.get("error"):
            workflow.logger.warning("cancelling node %s failed: %s", execution.node.id, result["error"])

    async def _finish(self) -> None:
        if self._finishing:
            return
        self._finishing = True
        status = RUN_CANCELLED if self._cancelling else RUN_FAILED if self._failure else RUN_SUCCEEDED
        await self._reclaim()
        self._status = status
        self._finished_at = self._now()
        self._notify(
            RunUpdate(
                progress.RUN_FINISHED,
                self._run_id,
                self._canvas.name,
                status=status,
                duration=self._now() - self._created_at,
                error=self._failure,
                timestamp=self._now(),
            )
        )
        self._done = True

    async def _reclaim(self) -> None:
        for key, resource in list(self._resources.items()):
            if resource.state != RES_HELD:
                continue
            node = self._graph.nodes.get(resource.node_id)
            if self._keep_resources or (node is not None and node.keep_resources):
                self._settle_resource(key, resource, RES_KEPT, progress.RESOURCE_KEPT)
                continue
            try:
                result: dict[str, Any] = await workflow.execute_activity(
                    ACTIVITY_RECLAIM,
                    {
                        "kind": resource.kind,
                        "resource_id": resource.resource_id,
                        "component": resource.component,
                        "heartbeat_seconds": self._options.heartbeat_seconds,
                    },
                    start_to_close_timeout=RECLAIM_LIMIT,
                    # A reclaim whose worker died is retried elsewhere as soon as its beats stop.
                    heartbeat_timeout=timedelta(seconds=self._options.heartbeat_seconds),
                    retry_policy=RetryPolicy(maximum_attempts=5),
                    summary=f"reclaim {resource.kind}:{resource.resource_id}",
                )
                error = result.get("error")
            except ActivityError as failure:
                error = _activity_failure(failure)
            if error:
                workflow.logger.warning(
                    "could not reclaim %s:%s: %s", resource.kind, resource.resource_id, error
                )
                self._settle_resource(
                    key, resource, RES_RECLAIM_FAILED, progress.RESOURCE_RECLAIM_FAILED, error
                )
                continue
            self._settle_resource(key, resource, RES_RECLAIMED, progress.RESOURCE_RECLAIMED)

    def _settle_resource(
        self, key: tuple[str, str], resource: ResourceRecord, state: str, kind: str, error: str | None = None
    ) -> None:
        self._resources[key] = _replace_state(resource, state, error)
        self._notify(
            RunUpdate(
                kind,
                self._run_id,
                self._canvas.name,
                node_id=resource.node_id,
                resource=f"{resource.kind}:{resource.resource_id}",
                error=error,
                timestamp=self._now(),
            )
        )

    # --- helpers ---------------------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _node_update(self, kind: str, execution: _Execution, **fields: Any) -> RunUpdate:
        started = execution.started_at
        return RunUpdate(
            kind,
            self._run_id,
            self._canvas.name,
            node_id=execution.node.id,
            node_name=execution.node.name,
            component=execution.node.component,
            execution_id=execution.id,
            duration=(self._now() - started) if started is not None else None,
            timestamp=self._now(),
            **fields,
        )

    def _notify(self, update: RunUpdate) -> None:
        self._updates.append(update.to_json())

    @staticmethod
    def _now() -> float:
        return workflow.time()

    @staticmethod
    def _uuid() -> str:
        return workflow.uuid4().hex


def _replace_state(resource: ResourceRecord, state: str, error: str | None) -> ResourceRecord:
    return ResourceRecord(
        resource.run_id,
        resource.kind,
        resource.resource_id,
        resource.node_id,
        resource.component,
        resource.execution_id,
        state,
        error,
        resource.acquired_at,
    )


def _is_worker_loss(error: ActivityError) -> bool:
    """The hook's worker died (its heartbeats stopped) or shut down under it: the hook runs again."""
    cause = error.cause
    if isinstance(cause, TimeoutError):
        return True
    return isinstance(cause, ApplicationError) and cause.type == WORKER_SHUTDOWN_ERROR


def _activity_failure(error: ActivityError) -> str:
    cause = error.cause
    if isinstance(cause, ApplicationError) and cause.type == COMPONENT_MISSING_ERROR:
        return cause.message
    return str(cause) if cause is not None else str(error)


__all__ = ["CanvasWorkflow"]
