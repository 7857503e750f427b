"""Submitting, watching, cancelling and listing canvas runs on a Temporal cluster."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.exceptions import ApplicationError, CancelledError, TerminatedError, TimeoutError
from temporalio.service import RPCError, RPCStatusCode

from daytonaflow.component import Component
from daytonaflow.runner import progress
from daytonaflow.runner.canvas import Canvas
from daytonaflow.runner.hooks import manual_trigger_event
from daytonaflow.runner.progress import Observer, RunUpdate
from daytonaflow.runner.registry import ComponentRegistry
from daytonaflow.runner.store import RUN_CANCELLED, RUN_FAILED, RUN_RUNNING, RUN_SUCCEEDED, RunRecord
from daytonaflow.runner.validation import check_canvas
from daytonaflow.temporal._errors import TemporalError, TemporalRunNotFoundError
from daytonaflow.temporal._records import RunOptions, RunSnapshot
from daytonaflow.temporal._settings import TemporalSettings
from daytonaflow.temporal._shared import (
    QUERY_PROGRESS,
    QUERY_SNAPSHOT,
    RUN_FAILED_ERROR,
    WORKFLOW_ID_PREFIX,
    WORKFLOW_NAME,
    workflow_id,
)

#: How long a query may take before the client treats the workflow as unanswerable (no worker).
QUERY_TIMEOUT = timedelta(seconds=10)
#: How often ``watch`` reads the running hooks' heartbeats for their output.
OUTPUT_POLL_SECONDS = 1.0
_RUN_ID = re.compile(r"[0-9a-f]{1,32}")
_STATUS = {
    WorkflowExecutionStatus.RUNNING: RUN_RUNNING,
    WorkflowExecutionStatus.COMPLETED: RUN_SUCCEEDED,
    WorkflowExecutionStatus.FAILED: RUN_FAILED,
    WorkflowExecutionStatus.CANCELED: RUN_CANCELLED,
    WorkflowExecutionStatus.TERMINATED: RUN_FAILED,
    WorkflowExecutionStatus.TIMED_OUT: RUN_FAILED,
}


#: Named outside TemporalRuns, whose ``list`` method hides the builtin in its body.
_RunRecords = list[RunRecord]
_RunUpdates = list[RunUpdate]


def build_plan(canvas: Canvas, registry: Mapping[str, type[Component]]) -> dict[str, Any]:
    """What the workflow must know of each component the canvas uses (it never imports one)."""
    components: dict[str, Any] = {}
    for node in canvas.spec.nodes:
        component = registry.get(node.component)
        if component is None or node.component in components:
            continue
        components[node.component] = {
            "joins_inputs": component.joins_inputs,
            "failure_channels": [channel.name for channel in component.channels if channel.failure],
            "listened": {
                channel.name: list(component.listened_names(channel.name))
                for channel in component.channels
                if component.channel_aliases
            },
            "literal_fields": sorted(component.literal_fields),
        }
    return {"components": components}


class TemporalRuns:
    """Canvas runs on one Temporal namespace and task queue."""

    def __init__(self, client: Client, settings: TemporalSettings) -> None:
        self.client = client
        self.settings = settings

    async def start(
        self,
        canvas: Canvas,
        run_input: Any = None,
        *,
        keep_resources: bool = False,
        registry: Mapping[str, type[Component]] | None = None,
        options: RunOptions | None = None,
    ) -> str:
        """Validate ``canvas`` as the embedded engine does, then start its workflow; returns the run id."""
        components = registry if registry is not None else ComponentRegistry.discover()
        check_canvas(canvas, components)
        trigger = manual_trigger_event(canvas, run_input)
        data = trigger["data"]
        run_id = uuid.uuid4().hex[:12]
        await self.client.start_workflow(
            WORKFLOW_NAME,
            {
                "run_id": run_id,
                "canvas": canvas.to_document(),
                "input": data,
                "trigger_event": trigger,
                "keep_resources": keep_resources,
                "plan": build_plan(canvas, components),
                "options": (options or RunOptions()).to_json(),
            },
            id=workflow_id(run_id),
            task_queue=self.settings.task_queue,
            memo={"canvas": canvas.name, "keepResources": keep_resources},
        )
        return run_id

    async def watch(self, run_id: str, observer: Observer, *, poll_seconds: float = 0.1) -> RunRecord:
        """Feed ``observer`` the run's updates, in order, until it ends; returns its final record."""
        handle = self.client.get_workflow_handle(workflow_id(run_id))
        after = 0
        started: dict[str, RunUpdate] = {}
        outputs: dict[str, int] = {}
        loop = asyncio.get_running_loop()
        next_output_poll = loop.time() + OUTPUT_POLL_SECONDS
        while True:
            page = await self._progress(handle, after)
            if page is None:
                # Closed with no worker left to answer: the record says how it ended.
                record = (await self.get(run_id)).record
                observer(_finished_update(record))
                return record
            for document in page["updates"]:
                update = RunUpdate(**document)
                if update.kind == progress.NODE_STARTED and update.execution_id is not None:
                    started[update.execution_id] = update
                observer(update)
            after = int(page["next"])
            if page["finished"]:
                return (await self.get(run_id)).record
            if loop.time() >= next_output_poll:
                next_output_poll = loop.time() + OUTPUT_POLL_SECONDS
                for update in await self._outputs(handle, started, outputs):
                    observer(update)
            if not page["updates"]:
                await asyncio.sleep(poll_seconds)

    async def cancel(self, run_id: str) -> RunRecord:
        """Ask the run to stop (its hooks' ``cancel``, then the reclaim) and wait until it has ended."""
        snapshot = await self.get(run_id)
        handle = self.client.get_workflow_handle(workflow_id(snapshot.record.id))
        if not snapshot.record.finished:
            await handle.cancel()
            # Cancelled (or failed meanwhile): the record read below says which.
            with contextlib.suppress(WorkflowFailureError):
                await handle.result()
        return (await self.get(snapshot.record.id)).record

    async def list(self, limit: int = 20) -> _RunRecords:
        """The namespace's runs, newest first."""
        records: _RunRecords = []
        async for execution in self.client.list_workflows(f'WorkflowType = "{WORKFLOW_NAME}"', limit=limit):
            records.append(await self._listed_record(execution))
        records.sort(key=lambda record: record.created_at, reverse=True)
        return records

    async def get(self, run_id_or_prefix: str) -> RunSnapshot:
        """The run whose id is ``run_id_or_prefix`` or starts with it (unambiguously)."""
        handle, description = await self._find(run_id_or_prefix)
        run_id = (description.id or "").removeprefix(WORKFLOW_ID_PREFIX)
        status = _status_of(description)
        document: dict[str, Any] | None = None
        error: str | None = None
        if status != RUN_RUNNING:
            document, error = await _outcome(handle)
        if document is None:
            document = await self._query(handle, QUERY_SNAPSHOT)
        if document is None:
            # Nobody could answer for it (a cancelled run and no worker up): what Temporal itself knows.
            memo = await description.memo()
            return RunSnapshot(_record_of(run_id, description, status, error, memo), [], [], [])
        own = RunRecord(**document["run"])
        if status == RUN_RUNNING:
            return RunSnapshot.from_json(document, record=own)
        finished_at = description.close_time.timestamp() if description.close_time else own.finished_at
        record = RunRecord(
            **{**document["run"], "status": status, "error": error or own.error, "finished_at": finished_at}
        )
        return RunSnapshot.from_json(document, record=record)

    async def worker_count(self) -> int:
        """How many workers poll the task queue for workflow tasks (0: runs would wait)."""
        response = await self.client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=self.settings.namespace,
                task_queue=TaskQueue(name=self.settings.task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        return len(response.pollers)

    # --- internals ---------------------------------------------------------------------------

    async def _find(self, prefix: str) -> tuple[WorkflowHandle[Any, Any], WorkflowExecutionDescription]:
        if not _RUN_ID.fullmatch(prefix):
            raise self._not_found(prefix)
        handle = self.client.get_workflow_handle(workflow_id(prefix))
        try:
            return handle, await handle.describe()
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
        query = f'WorkflowType = "{WORKFLOW_NAME}" AND WorkflowId STARTS_WITH "{workflow_id(prefix)}"'
        matches = [execution async for execution in self.client.list_workflows(query, limit=3)]
        if not matches:
            raise self._not_found(prefix)
        if len({execution.id for execution in matches}) > 1:
            raise TemporalRunNotFoundError(f'"{prefix}" matches several runs; give more of the id')
        handle = self.client.get_workflow_handle(matches[0].id)
        return handle, await handle.describe()

    def _not_found(self, prefix: str) -> TemporalRunNotFoundError:
        return TemporalRunNotFoundError(
            f'no run "{prefix}" in Temporal namespace {self.settings.namespace} at {self.settings.address}'
        )

    async def _progress(self, handle: WorkflowHandle[Any, Any], after: int) -> dict[str, Any] | None:
        while True:
            page: dict[str, Any] | None = await self._query(handle, QUERY_PROGRESS, after)
            if page is not None:
                return page
            description = await handle.describe()
            if description.status not in (None, WorkflowExecutionStatus.RUNNING):
                return None
            await asyncio.sleep(0.2)  # not picked up by a worker yet

    async def _query(self, handle: WorkflowHandle[Any, Any], name: str, *args: Any) -> Any:
        try:
            answer: Any = await handle.query(name, *args, rpc_timeout=QUERY_TIMEOUT)
        except WorkflowQueryFailedError as error:
            # The workflow answered with an error: asking again would get the same answer.
            raise TemporalError(f"run {handle.id} could not be read: {error}") from None
        except (RPCError, WorkflowQueryRejectedError):
            return None  # no worker answered in time, or none has picked the workflow up yet
        return answer

    async def _outputs(
        self, handle: WorkflowHandle[Any, Any], started: dict[str, RunUpdate], outputs: dict[str, int]
    ) -> _RunUpdates:
        """``node.output`` updates from the running hooks' latest heartbeats (a line that is new)."""
        try:
            description = await handle.describe()
        except RPCError:
            return []
        updates: _RunUpdates = []
        for pending in description.raw_description.pending_activities:
            if not pending.heartbeat_details.payloads:
                continue
            details = (await self.client.data_converter.decode(pending.heartbeat_details.payloads))[0]
            if not isinstance(details, dict) or not details.get("output"):
                continue
            execution_id = str(details.get("execution_id"))
            pieces = int(details.get("pieces", 0))
            begun = started.get(execution_id)
            if begun is None or outputs.get(execution_id) == pieces:
                continue
            outputs[execution_id] = pieces
            updates.append(
                RunUpdate(
                    progress.NODE_OUTPUT,
                    begun.run_id,
                    begun.canvas,
                    node_id=begun.node_id,
                    node_name=begun.node_name,
                    component=begun.component,
                    execution_id=execution_id,
                    text=str(details["output"]),
                )
            )
        return updates

    async def _listed_record(self, execution: WorkflowExecution) -> RunRecord:
        memo = await execution.memo()
        status = _status_of(execution)
        error = None
        if status == RUN_FAILED:
            _, error = await _outcome(self.client.get_workflow_handle(execution.id, run_id=execution.run_id))
        return _record_of(execution.id.removeprefix(WORKFLOW_ID_PREFIX), execution, status, error, memo)


def _status_of(execution: WorkflowExecution) -> str:
    """The run state of a workflow's status (one that is still starting counts as running)."""
    return _STATUS.get(execution.status or WorkflowExecutionStatus.RUNNING, RUN_FAILED)


async def _outcome(handle: WorkflowHandle[Any, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """A closed run's snapshot (from its result or failure) and its error, read from its history."""
    try:
        result = await handle.result(follow_runs=False)
    except WorkflowFailureError as failure:
        cause = failure.cause
        if isinstance(cause, ApplicationError) and cause.type == RUN_FAILED_ERROR:
            details = cause.details
            snapshot = details[0] if details and isinstance(details[0], dict) else None
            return _complete(snapshot), cause.message
        if isinstance(cause, CancelledError):
            return None, None
        if isinstance(cause, TerminatedError):
            return None, f"terminated on the Temporal server: {cause.message or 'no reason given'}"
        if isinstance(cause, TimeoutError):
            return None, f"timed out on the Temporal server: {cause.message}"
        return None, str(cause) if cause is not None else str(failure)
    return _complete(result if isinstance(result, dict) else None), None


def _complete(snapshot: dict[str, Any] | None) -> dict[str, Any] | None:
    """The snapshot if the workflow returned all of it (a big run returns its record only)."""
    return None if snapshot is None or snapshot.get("truncated") else snapshot


def _finished_update(record: RunRecord) -> RunUpdate:
    """The run's last update, rebuilt from its record (when the workflow could not be asked for it)."""
    ended = record.finished_at if record.finished_at is not None else record.created_at
    return RunUpdate(
        progress.RUN_FINISHED,
        record.id,
        record.canvas_name,
        status=record.status,
        duration=ended - record.created_at,
        error=record.error,
    )


def _record_of(
    run_id: str,
    description: WorkflowExecution,
    status: str,
    error: str | None,
    memo: Mapping[str, Any],
) -> RunRecord:
    return RunRecord(
        id=run_id,
        canvas_name=str(memo.get("canvas", "")),
        canvas={},
        input=None,
        status=status,
        keep_resources=bool(memo.get("keepResources", False)),
        owner=None,
        error=error,
        created_at=description.start_time.timestamp(),
        finished_at=description.close_time.timestamp() if description.close_time else None,
    )
