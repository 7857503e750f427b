"""The :class:`daytonaflow.component.ExecutionContext` the engine hands to a component hook."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from daytonaflow.component import Component, MetadataStore, NodeInput, ResourceTracker, SecretsProvider
from daytonaflow.errors import ComponentError, SecretNotFoundError
from daytonaflow.events import Payload
from daytonaflow.runner.store import RES_RELEASED, RunStore


class NoSecrets:
    """The secrets provider of an engine given none: every lookup fails with a clear message."""

    def get(self, secret: str, key: str) -> str:
        raise SecretNotFoundError(
            f'secret "{secret}" (key "{key}") is not configured: no secrets provider is set'
        )


class StoredMetadata:
    """A node execution's metadata, written through to the run database on every ``set``."""

    def __init__(self, store: RunStore, execution_id: str, initial: Mapping[str, Any]) -> None:
        self._store = store
        self._execution_id = execution_id
        self._value = dict(initial)

    def get(self) -> dict[str, Any]:
        return copy.deepcopy(self._value)

    def set(self, metadata: Mapping[str, Any]) -> None:
        value = copy.deepcopy(dict(metadata))
        self._store.set_metadata(self._execution_id, value)
        self._value = value


class RunResources:
    """Records what a run acquires (durably, at once) so the engine can reclaim it at the end."""

    def __init__(self, store: RunStore, run_id: str, node_id: str, component: str, execution_id: str) -> None:
        self._store = store
        self._run_id = run_id
        self._node_id = node_id
        self._component = component
        self._execution_id = execution_id

    def acquire(self, kind: str, resource_id: str) -> None:
        self._store.acquire_resource(
            self._run_id, kind, resource_id, self._node_id, self._component, self._execution_id
        )

    def release(self, kind: str, resource_id: str) -> None:
        self._store.set_resource_state(self._run_id, kind, resource_id, RES_RELEASED)


class HookSlot:
    """One of the engine's hook slots: held while a hook works, handed back while it waits."""

    def __init__(self, slots: asyncio.Semaphore) -> None:
        self._slots = slots
        self._held = False

    async def __aenter__(self) -> HookSlot:
        await self._slots.acquire()
        self._held = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._release()

    def _release(self) -> None:
        if self._held:
            self._held = False
            self._slots.release()

    @contextlib.asynccontextmanager
    async def released(self) -> AsyncIterator[None]:
        if not self._held:
            yield  # already handed back (a wait inside a wait): nothing to give or take back
            return
        self._release()
        cancelled = False
        try:
            yield
        except asyncio.CancelledError:
            # The hook is being stopped: it ends without a slot, and must not wait for one.
            cancelled = True
            raise
        finally:
            if not cancelled:
                await self._slots.acquire()
                self._held = True


@dataclass(frozen=True)
class Emission:
    channel: str
    payload: Payload


class NodeContext:
    """One hook call's view of its node execution; collects the emit or check the hook asks for."""

    def __init__(
        self,
        *,
        component: type[Component],
        run_id: str,
        node_id: str,
        node_name: str,
        execution_id: str,
        config: dict[str, Any],
        integration: Any,
        secrets: SecretsProvider,
        metadata: MetadataStore,
        resources: ResourceTracker,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
        inputs: tuple[NodeInput, ...] = (),
        expected_sources: tuple[str, ...] = (),
        evaluator: Callable[[str, str | None], Any] | None = None,
        slot: HookSlot | None = None,
        on_output: Callable[[str], None] | None = None,
        hook_wait_limit: float | None = None,
    ) -> None:
        self.run_id = run_id
        self.node_id = node_id
        self.node_name = node_name
        self.execution_id = execution_id
        self.config = config
        self.integration = integration
        self.secrets = secrets
        self.metadata: MetadataStore = metadata
        self.resources: ResourceTracker = resources
        self.logger: logging.Logger | logging.LoggerAdapter[logging.Logger] = logger
        self.inputs = inputs
        self.expected_sources = expected_sources
        self.hook_wait_limit = hook_wait_limit
        self._evaluator = evaluator
        self._component = component
        self._slot = slot
        self._on_output = on_output
        self.emission: Emission | None = None
        self.check_delay: float | None = None

    def evaluate(self, expression: str, *, field: str | None = None) -> Any:
        if self._evaluator is None:
            raise ComponentError(f"{self._component.name}: no expression context in this hook")
        return self._evaluator(expression, field)

    def emit(self, channel: str, payload: Payload) -> None:
        if self.emission is not None or self.check_delay is not None:
            raise ComponentError(
                f"{self._component.name} emitted after it had already emitted or scheduled a check"
            )
        if channel not in self._component.channel_names():
            known = ", ".join(self._component.channel_names())
            raise ComponentError(
                f'{self._component.name} emitted on unknown channel "{channel}" (channels: {known})'
            )
        if not isinstance(payload, self._component.payload_type):
            raise ComponentError(
                f"{self._component.name} emitted a {type(payload).__name__}, "
                f"not its payload type {self._component.payload_type.__name__}"
            )
        self.emission = Emission(channel, payload)

    def schedule_check(self, delay_seconds: float) -> None:
        if self.emission is not None or self.check_delay is not None:
            raise ComponentError(
                f"{self._component.name} scheduled a check after it had emitted or scheduled one"
            )
        if not delay_seconds >= 0:
            raise ComponentError(f"{self._component.name} scheduled a check with a negative delay")
        self.check_delay = float(delay_seconds)

    def waiting(self) -> AbstractAsyncContextManager[None]:
        if self._slot is None:
            return contextlib.nullcontext()
        return self._slot.released()

    def report_output(self, text: str) -> None:
        if self._on_output is not None and text:
            self._on_output(text)
