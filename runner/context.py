"""The :class:`daytonaflow.component.ExecutionContext` the engine hands to a component hook."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from daytonaflow.component import Component, MetadataStore, ResourceTracker, SecretsProvider
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
        metadata: StoredMetadata,
        resources: RunResources,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
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
        self._component = component
        self.emission: Emission | None = None
        self.check_delay: float | None = None

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
