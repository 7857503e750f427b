"""The built-in ``merge`` component: waits for an input from every upstream node, then continues.

A joining component (:attr:`Component.joins_inputs`): the engine keeps one open execution per
run, calls ``execute`` once per input that reaches the node, and ``check`` when the timeout's
persisted timer fires. What was gathered lives in the execution's metadata (SuperPlane's names),
so a restarted engine resumes the gathering where it was.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from daytonaflow.builtins._base import BuiltinComponent, evaluate_condition, expression_field
from daytonaflow.component import Channel, ExecutionContext
from daytonaflow.components._fields import Field, Option, When
from daytonaflow.events import Payload

SUCCESS_CHANNEL = Channel("success", "Success", "An input arrived from every upstream node.")
TIMEOUT_CHANNEL = Channel(
    "timeout", "Timeout", "The timeout passed before every upstream node sent an input.", failure=True
)
FAIL_CHANNEL = Channel("fail", "Fail", "The stop condition was true for an input.", failure=True)
UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600}


class SourceNode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nodeId: str
    #: RFC 3339, UTC; absent while nothing came from that node.
    receivedAt: str | None = None


class MergePayload(Payload):
    """SuperPlane's merge metadata: the group, the events gathered and who sent one."""

    event_type: ClassVar[str] = "merge.finished"

    groupKey: str
    eventIDs: list[str]
    sourceNodes: list[SourceNode]
    stopEarly: bool = False
    #: The timeout that passed (``merge.timeout`` only; daytonaflow's own, for the run's summary).
    timeoutSeconds: int | None = None

    def waiting_for(self) -> list[str]:
        return [source.nodeId for source in self.sourceNodes if source.receivedAt is None]


class MergeStoppedPayload(MergePayload):
    event_type: ClassVar[str] = "merge.stopped"

    def failure_summary(self) -> str | None:
        return "stopped early: stopIfExpression was true"


class MergeTimeoutPayload(MergePayload):
    event_type: ClassVar[str] = "merge.timeout"

    def failure_summary(self) -> str | None:
        names = ", ".join(f'"{node}"' for node in self.waiting_for()) or "nobody"
        after = f" after {self.timeoutSeconds} s" if self.timeoutSeconds is not None else ""
        return f"timed out{after} waiting for input from {names}"


_TIMEOUT_ON = (When("enableTimeout", (True,)),)
_STOP_IF_ON = (When("enableStopIf", (True,)),)

FIELDS = (
    Field(
        "enableTimeout",
        "boolean",
        "Enable Timeout",
        "Stop waiting after a while if not every input arrived.",
        default=False,
    ),
    Field(
        "executionTimeout",
        "object",
        "Execution Timeout",
        "How long to wait for every input, from the first one.",
        default={"value": 2, "unit": "minutes"},
        visible_when=_TIMEOUT_ON,
        fields=(
            Field("value", "number", "Timeout", required=True, default=2, minimum=1),
            Field(
                "unit",
                "select",
                "Unit",
                required=True,
                default="minutes",
                options=(Option("minutes", "Minutes"), Option("hours", "Hours")),
                # SuperPlane's code takes seconds too, though its form does not offer them.
                aliases=("seconds",),
            ),
        ),
    ),
    Field(
        "enableStopIf",
        "boolean",
        "Enable Conditional Stop",
        "Stop waiting as soon as a condition holds.",
        default=False,
    ),
    dataclasses.replace(
        expression_field(
            "stopIfExpression", "Stop if", "Evaluated at each input: true stops waiting.", required=False
        ),
        visible_when=_STOP_IF_ON,
        required_when=_STOP_IF_ON,
        placeholder="$['Node Name'].data.result == 'fail'",
    ),
)

_DOCS = """\
The Merge component waits until every node with an edge into it has sent an input, then
continues the run once, on `success`: the join after parallel branches.

## Configuration
- **Enable Timeout** (`enableTimeout`) and **Execution Timeout** (`executionTimeout`: `value`,
  `unit` `minutes` or `hours`; `seconds` is accepted too): stop waiting that long after the first
  input and emit on `timeout`.
- **Enable Conditional Stop** (`enableStopIf`) and **Stop if** (`stopIfExpression`): a bare
  expression (no `{{ }}`) evaluated at each input, e.g. `$["Tests"].data.exitCode != 0`; `true`
  stops waiting and emits on `fail`. A result other than true or false fails the node.

SuperPlane's code applies `executionTimeout` and `stopIfExpression` whenever they are set, whatever
the switches say; here they apply only while `enableTimeout` / `enableStopIf` are true, which is
what its form shows.

## Behaviour
- Inputs are counted per upstream node: two channels of one node count once.
- What was gathered is kept durably: after an engine restart the merge keeps waiting for the
  inputs still missing, and its timeout still ends when it would have.
- After the merge emits, a later input starts a new merge (the next round of a loop).
- A merge still waiting when nothing else in the run can send it anything fails the run, naming
  the nodes it waited for.
- `timeout` and `fail` are failure channels: with no edge on them, the run fails.

## Output
`groupKey`, `eventIDs` (the inputs gathered), `sourceNodes` (`nodeId`, `receivedAt`) and
`stopEarly`, as SuperPlane; `merge.timeout` also carries `timeoutSeconds`. Each upstream node's
own output stays reachable as `$["Node Name"]`.
"""


class Merge(BuiltinComponent):
    name: ClassVar[str] = "merge"
    label: ClassVar[str] = "Merge"
    description: ClassVar[str] = "Wait for an input from every upstream node, then continue once."
    icon: ClassVar[str] = "arrow-right-from-line"
    color: ClassVar[str] = "gray"
    channels = (SUCCESS_CHANNEL, TIMEOUT_CHANNEL, FAIL_CHANNEL)
    payload_type: ClassVar[type[Payload]] = MergePayload
    other_payload_types: ClassVar[tuple[type[Payload], ...]] = (MergeStoppedPayload, MergeTimeoutPayload)
    literal_fields: ClassVar[frozenset[str]] = frozenset({"stopIfExpression"})
    joins_inputs: ClassVar[bool] = True
    fields = FIELDS
    docs: ClassVar[str] = _DOCS

    async def execute(self, ctx: ExecutionContext) -> None:
        settings = self.settings(ctx)
        state = self._gather(ctx, settings)
        ctx.metadata.set(state)
        if settings["enableStopIf"] and evaluate_condition(
            ctx, settings["stopIfExpression"], "stopIfExpression"
        ):
            state["stopEarly"] = True
            ctx.metadata.set(state)
            ctx.emit(FAIL_CHANNEL.name, MergeStoppedPayload.model_validate(_payload_fields(state)))
            return
        payload = MergePayload.model_validate(_payload_fields(state))
        if not payload.waiting_for():
            ctx.emit(SUCCESS_CHANNEL.name, payload)
            return
        timeout = _timeout_seconds(settings)
        if timeout is not None:
            # Re-armed at each input to the same moment: a new check replaces the previous timer.
            ctx.schedule_check(max(0.0, float(state["timeoutAt"]) - time.time()))
        # Otherwise return without output: the execution stays open for the next input.

    async def check(self, ctx: ExecutionContext) -> None:
        settings = self.settings(ctx)
        state = ctx.metadata.get()
        payload = MergePayload.model_validate(_payload_fields(state))
        if not payload.waiting_for():
            ctx.emit(SUCCESS_CHANNEL.name, payload)
            return
        left = float(state["timeoutAt"]) - time.time()
        if left > 0.05:
            ctx.schedule_check(left)  # fired early (a clock step): wait for the rest
            return
        ctx.emit(
            TIMEOUT_CHANNEL.name,
            MergeTimeoutPayload.model_validate(
                {**_payload_fields(state), "timeoutSeconds": _timeout_seconds(settings)}
            ),
        )

    def _gather(self, ctx: ExecutionContext, settings: dict[str, Any]) -> dict[str, Any]:
        """The metadata with every input of ``ctx.inputs`` recorded (each once, even if delivered again)."""
        state = ctx.metadata.get()
        if "groupKey" not in state:
            timeout = _timeout_seconds(settings)
            state = {
                "groupKey": ctx.execution_id,
                "eventIDs": [],
                "sourceNodes": [{"nodeId": node} for node in ctx.expected_sources],
                "stopEarly": False,
            }
            if timeout is not None:
                state["timeoutAt"] = time.time() + timeout
        seen = set(state["eventIDs"])
        for received in ctx.inputs:
            if received.event_id in seen:
                continue
            seen.add(received.event_id)
            state["eventIDs"].append(received.event_id)
            for source in state["sourceNodes"]:
                if source["nodeId"] == received.source_node_id and "receivedAt" not in source:
                    source["receivedAt"] = _now_rfc3339()
        return state


def _payload_fields(state: dict[str, Any]) -> dict[str, Any]:
    return {key: state[key] for key in ("groupKey", "eventIDs", "sourceNodes", "stopEarly")}


def _timeout_seconds(settings: dict[str, Any]) -> int | None:
    if not settings["enableTimeout"]:
        return None
    timeout = settings["executionTimeout"]
    return int(timeout["value"]) * UNIT_SECONDS[timeout["unit"]]


def _now_rfc3339() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
