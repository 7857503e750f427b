"""The activities: one component hook call each, run by a worker with its registry, integration and secrets.

A hook sees the same :class:`~daytonaflow.runner.context.NodeContext` as on the embedded engine;
only where its durable state goes differs: ``metadata.set`` and ``resources.acquire/release``
signal the workflow and return once the server has recorded the signal in the run's history.
Hooks are async and those methods are not, so the signal goes through a thread of its own (its
own event loop and client connection) while the hook's loop blocks for the round trip.

No secret value leaves the worker: every value the secrets provider hands a hook is replaced by
``***`` in what the activity returns, signals and heartbeats.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from daytonaflow.component import Component, NodeInput, SecretsProvider
from daytonaflow.errors import ComponentError, ConfigError, DaytonaflowError
from daytonaflow.expressions import EventChain, ExpressionContext, evaluate_expression
from daytonaflow.runner.context import NodeContext, NoSecrets
from daytonaflow.runner.hooks import describe_error, emitted_event, pick_upstream
from daytonaflow.temporal._settings import TemporalSettings, connect
from daytonaflow.temporal._shared import (
    ACTIVITY_CANCEL,
    ACTIVITY_HOOK,
    ACTIVITY_RECLAIM,
    COMPONENT_MISSING_ERROR,
    REDACTED,
    SIGNAL_METADATA,
    SIGNAL_RESOURCE,
    WORKER_SHUTDOWN_ERROR,
    entry_of,
)

_log = logging.getLogger("daytonaflow.temporal")
#: How long a durable ``set``/``acquire`` may wait for the server to record its signal.
SIGNAL_TIMEOUT_SECONDS = 60.0
#: Secret values shorter than this are not redacted: masking every "a" would garble all text.
MIN_REDACTED_LENGTH = 4
#: The longest piece of output a heartbeat carries (the line a live view shows).
HEARTBEAT_TEXT_LIMIT = 200
#: The farthest a scheduled check may be (a year): a durable timer needs a finite, bounded delay.
MAX_CHECK_DELAY_SECONDS = 365 * 24 * 3600.0
_OPEN_LINE_LIMIT = 4096


class SignalError(ComponentError):
    """The workflow could not be told of a durable change (its run ended, or the server is gone)."""


class SignalSender:
    """Sends signals from synchronous code inside a hook: a thread with its own loop and client.

    The calling loop (the worker's) blocks until the server accepted the signal: that is what
    makes ``metadata.set`` durable when it returns, as the contract promises.
    """

    def __init__(self, settings: TemporalSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Client | None = None

    def send(self, workflow_id: str, run_id: str | None, signal: str, argument: dict[str, Any]) -> None:
        future: Future[None] = asyncio.run_coroutine_threadsafe(
            self._send(workflow_id, run_id, signal, argument), self._running_loop()
        )
        try:
            future.result(SIGNAL_TIMEOUT_SECONDS)
        except Exception as error:
            future.cancel()
            raise SignalError(
                f"could not record the change durably in run {workflow_id}: {describe_error(error)}"
            ) from None

    def close(self) -> None:
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)

    async def _send(
        self, workflow_id: str, run_id: str | None, signal: str, argument: dict[str, Any]
    ) -> None:
        if self._client is None:
            self._client = await connect(self._settings)
        await self._client.get_workflow_handle(workflow_id, run_id=run_id).signal(signal, argument)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="daytonaflow-temporal-signals", daemon=True
                )
                thread.start()
                self._loop = loop
            return self._loop


class _RecordingSecrets:
    """The worker's secrets provider, remembering each value it hands out (to keep it out of history)."""

    def __init__(self, provider: SecretsProvider) -> None:
        self._provider = provider
        self.values: set[str] = set()

    def get(self, secret: str, key: str) -> str:
        value = self._provider.get(secret, key)
        if len(value) >= MIN_REDACTED_LENGTH:
            self.values.add(value)
        return value

    def redact(self, value: Any) -> Any:
        """``value`` with every secret handed out replaced by ``***`` (longest first)."""
        if not self.values:
            return value
        secrets = sorted(self.values, key=len, reverse=True)
        return _redact(value, secrets)


#: A string that is wholly an identifier (a sandbox or execution id, a creation key): masking a
#: secret that happens to occur in one would only break the reference, never hide a secret.
_IDENTIFIER = re.compile(r"[0-9A-Fa-f]{8}[0-9A-Fa-f/-]*")


def _redact(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        if _IDENTIFIER.fullmatch(value):
            return value
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {key: _redact(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(item, secrets) for item in value]
    return value


class _WorkflowChannel:
    """The signals one hook attempt sends; each names the execution and attempt it comes from."""

    def __init__(
        self, sender: SignalSender, secrets: _RecordingSecrets, execution_id: str, attempt: int
    ) -> None:
        info = activity.info()
        self._sender = sender
        self._secrets = secrets
        self._workflow_id = info.workflow_id or ""
        self._run_id = info.workflow_run_id
        self._execution_id = execution_id
        self._attempt = attempt

    def send(self, signal: str, fields: dict[str, Any]) -> None:
        # The envelope (which execution, which attempt) is ours, never a component's: only the
        # fields are masked, so a secret can never turn the envelope into another execution's.
        envelope = {"execution_id": self._execution_id, "attempt": self._attempt}
        message = {**self._secrets.redact(fields), **envelope}
        self._sender.send(self._workflow_id, self._run_id, signal, message)


class _SignalledMetadata:
    """Metadata whose ``set`` is durable in the workflow's history when it returns."""

    def __init__(self, channel: _WorkflowChannel, initial: Mapping[str, Any]) -> None:
        self._channel = channel
        self._value = copy.deepcopy(dict(initial))

    def get(self) -> dict[str, Any]:
        return copy.deepcopy(self._value)

    def set(self, metadata: Mapping[str, Any]) -> None:
        value = copy.deepcopy(dict(metadata))
        self._channel.send(SIGNAL_METADATA, {"metadata": value})
        self._value = value


class _SignalledResources:
    """Resources recorded in the workflow's history before ``acquire``/``release`` return."""

    def __init__(self, channel: _WorkflowChannel) -> None:
        self._channel = channel

    def acquire(self, kind: str, resource_id: str) -> None:
        self._channel.send(SIGNAL_RESOURCE, {"op": "acquire", "kind": kind, "resource_id": resource_id})

    def release(self, kind: str, resource_id: str) -> None:
        self._channel.send(SIGNAL_RESOURCE, {"op": "release", "kind": kind, "resource_id": resource_id})


class _Progress:
    """What a heartbeat says of a running hook: its latest output line and how much it wrote."""

    def __init__(self, execution_id: str, node_id: str, secrets: _RecordingSecrets | None = None) -> None:
        self._execution_id = execution_id
        self._node_id = node_id
        self._secrets = secrets
        #: The line being written (no newline yet): a secret split over two pieces is still masked.
        self._open_line = ""
        self.text = ""
        self.bytes = 0
        self.pieces = 0

    def add(self, text: str) -> None:
        self.bytes += len(text.encode())
        self.pieces += 1
        joined = self._open_line + text
        self._open_line = joined.rsplit("\n", 1)[-1][-_OPEN_LINE_LIMIT:]
        # Masked before it is cut to the heartbeat's length, so no part of a secret is left over.
        visible = str(self._secrets.redact(joined)) if self._secrets is not None else joined
        lines = [line for line in visible.splitlines() if line.strip()]
        if lines:
            self.text = lines[-1][-HEARTBEAT_TEXT_LIMIT:]

    def details(self) -> dict[str, Any]:
        return {
            "execution_id": self._execution_id,
            "node_id": self._node_id,
            "output": self.text,
            "bytes": self.bytes,
            "pieces": self.pieces,
        }


class CanvasActivities:
    """The activities of one worker: its components, its Daytona integration and its secrets."""

    def __init__(
        self,
        settings: TemporalSettings,
        registry: Mapping[str, type[Component]],
        *,
        integration: Any = None,
        secrets: SecretsProvider | None = None,
    ) -> None:
        self._registry = registry
        self._integration = integration
        self._secrets: SecretsProvider = secrets if secrets is not None else NoSecrets()
        self.signals = SignalSender(settings)

    def all(self) -> list[Callable[..., Any]]:
        return [self.hook, self.cancel, self.reclaim]

    @activity.defn(name=ACTIVITY_HOOK)
    async def hook(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run ``execute`` or ``check``; the outcome (emit, check, nothing, error) is the result."""
        component = self._component(request["node"]["component"])
        secrets = _RecordingSecrets(self._secrets)
        progress = _Progress(request["execution_id"], request["node"]["id"], secrets)
        ctx, metadata = self._context(component, request, secrets, progress)
        beating = asyncio.create_task(_heartbeat(progress, float(request["heartbeat_seconds"])))
        try:
            issues = component.validate_config(ctx.config, allow_expressions=False)
            if issues:
                raise ConfigError(issues, node=ctx.node_id)
            hook = component()
            await (hook.execute(ctx) if request["phase"] == "execute" else hook.check(ctx))
            result: dict[str, Any] = {"metadata": metadata.get()}
            if ctx.emission is not None:
                result["emit"] = {
                    "channel": ctx.emission.channel,
                    "event": emitted_event(component, ctx.emission.payload),
                    "summary": ctx.emission.payload.failure_summary(),
                }
            elif ctx.check_delay is not None:
                if not ctx.check_delay <= MAX_CHECK_DELAY_SECONDS:  # also NaN and infinity
                    raise ComponentError(
                        f"{component.name} scheduled a check {ctx.check_delay} s away: more than a"
                        f" durable timer allows ({MAX_CHECK_DELAY_SECONDS:.0f} s)"
                    )
                result["check"] = ctx.check_delay
        except asyncio.CancelledError:
            details = activity.cancellation_details()
            if activity.is_worker_shutdown() or (details is not None and details.worker_shutdown):
                # Handed back: the workflow runs the hook again on another worker.
                raise ApplicationError(
                    "the worker shut down while the hook ran", type=WORKER_SHUTDOWN_ERROR, non_retryable=True
                ) from None
            raise
        except Exception as error:
            if not isinstance(error, DaytonaflowError):
                _log.debug("node %s raised", ctx.node_id, exc_info=error)
            result = {"metadata": metadata.get(), "error": describe_error(error)}
        finally:
            beating.cancel()
        return dict(secrets.redact(result))

    @activity.defn(name=ACTIVITY_CANCEL)
    async def cancel(self, request: dict[str, Any]) -> dict[str, Any]:
        """The component's ``cancel`` hook with the execution's latest metadata; its error is reported."""
        component = self._component(request["node"]["component"])
        secrets = _RecordingSecrets(self._secrets)
        progress = _Progress(request["execution_id"], request["node"]["id"], secrets)
        ctx, _ = self._context(component, request, secrets, progress)
        beating = asyncio.create_task(_heartbeat(progress, float(request["heartbeat_seconds"])))
        try:
            await component().cancel(ctx)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            return dict(secrets.redact({"error": describe_error(error)}))
        finally:
            beating.cancel()
        return {}

    @activity.defn(name=ACTIVITY_RECLAIM)
    async def reclaim(self, request: dict[str, Any]) -> dict[str, Any]:
        """Free one resource through the component that acquired it; an error is reported, not raised."""
        name = str(request["component"])
        progress = _Progress("", "")
        beating = asyncio.create_task(_heartbeat(progress, float(request.get("heartbeat_seconds", 10.0))))
        try:
            component = self._registry.get(name)
            if component is None:
                raise ComponentError(f'component "{name}" is not installed')
            await component.reclaim(str(request["kind"]), str(request["resource_id"]), self._integration)
        except Exception as error:
            return {"error": describe_error(error)}
        finally:
            beating.cancel()
        return {}

    def _component(self, name: str) -> type[Component]:
        component = self._registry.get(name)
        if component is None:
            raise ApplicationError(
                f'component "{name}" is not installed on worker {activity.info().task_queue}'
                " (install it where the workers run)",
                type=COMPONENT_MISSING_ERROR,
                non_retryable=True,
            )
        return component

    def _context(
        self,
        component: type[Component],
        request: dict[str, Any],
        secrets: _RecordingSecrets,
        progress: _Progress,
    ) -> tuple[NodeContext, _SignalledMetadata]:
        node = request["node"]
        channel = _WorkflowChannel(self.signals, secrets, request["execution_id"], int(request["attempt"]))
        metadata = _SignalledMetadata(channel, request.get("metadata") or {})
        ctx = NodeContext(
            component=component,
            run_id=request["run_id"],
            node_id=node["id"],
            node_name=node["name"],
            execution_id=request["execution_id"],
            config=request["config"],
            integration=self._integration,
            secrets=secrets,
            metadata=metadata,
            resources=_SignalledResources(channel),
            logger=logging.LoggerAdapter(
                logging.getLogger(f"daytonaflow.components.{node['component']}"),
                {"run_id": request["run_id"], "node_id": node["id"], "execution_id": request["execution_id"]},
            ),
            inputs=tuple(NodeInput(**item) for item in request.get("inputs", ())),
            expected_sources=tuple(request.get("expected_sources", ())),
            evaluator=_evaluator(node["id"], request.get("expression")),
            on_output=progress.add,
            hook_wait_limit=request.get("hook_wait_limit"),
        )
        return ctx, metadata


async def _heartbeat(progress: _Progress, heartbeat_seconds: float) -> None:
    """Beat three times per heartbeat timeout: a live worker is never taken for a lost one."""
    # No beat at the start: a hook that returns quickly (most do) then costs no heartbeat call.
    while True:
        await asyncio.sleep(max(0.05, heartbeat_seconds / 3))
        activity.heartbeat(progress.details())


def _evaluator(node_id: str, expression: dict[str, Any] | None) -> Callable[[str, str | None], Any] | None:
    """``ctx.evaluate`` over the context the workflow sent (the node's chain, its upstream, its clock)."""
    if expression is None:
        return None
    chain = EventChain.of(entry_of(item) for item in expression["chain"])
    upstream = [(int(order), entry_of(item)) for order, item in expression["upstream"]]
    moment = datetime.fromtimestamp(float(expression["now"]), UTC)
    context = ExpressionContext(
        chain if chain is not None else (),
        chain.root.entry.event if chain is not None else None,
        clock=lambda: moment,
        upstream=lambda key: pick_upstream(upstream, key),
    )
    return lambda text, field: evaluate_expression(text, context, node=node_id, field=field)
