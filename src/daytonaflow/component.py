"""The component model: what a host engine needs to know about, configure and drive a node.

A component is a class that describes itself (name, label, docs, config fields, channels,
payload type, example output) and implements lifecycle hooks. Components are stateless: the
engine instantiates one per call and hands it an :class:`ExecutionContext`, which carries
everything that must survive an engine restart (metadata, scheduled checks, resources).
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from daytonaflow.errors import ConfigIssue
from daytonaflow.events import Payload


@dataclass(frozen=True)
class Channel:
    """A named output of a node; edges listen on one channel of their source."""

    name: str
    label: str
    description: str = ""
    #: Emitting here means the operation failed: a run in which no edge handles it fails.
    failure: bool = False


DEFAULT_CHANNEL = Channel("default", "Default", "Emitted when the operation completes.")
SUCCESS_CHANNEL = Channel("success", "Success", "The process exited with code 0.")
FAILED_CHANNEL = Channel("failed", "Failed", "The process exited non-zero or timed out.", failure=True)


@dataclass(frozen=True)
class NodeInput:
    """One event that reached a node execution: who emitted it, on which channel, and the event."""

    source_node_id: str
    source_node_name: str
    channel: str
    event_id: str
    #: ``{type, data, timestamp}``
    event: dict[str, Any]


@runtime_checkable
class SecretsProvider(Protocol):
    """Resolves a secret reference (secret name + key) to its value at run time."""

    def get(self, secret: str, key: str) -> str:
        """Return the value, or raise :class:`daytonaflow.errors.SecretNotFoundError`."""
        ...


class MetadataStore(Protocol):
    """Per-node-execution state the engine persists before the hook returns."""

    def get(self) -> dict[str, Any]: ...

    def set(self, metadata: Mapping[str, Any]) -> None:
        """Replace the metadata; durable once this returns (a crash after it does not lose it)."""
        ...


class ResourceTracker(Protocol):
    """Remembers what a run created so the engine can reclaim what was not released.

    ``kind`` names the resource type (``daytona.sandbox``); ``acquire`` is durable once it
    returns. A resource acquired by one node may be released by another (deleteSandbox).
    At the end of a run the engine calls ``reclaim`` on the component class that acquired
    each resource still held, unless the run or node asked to keep them.
    """

    def acquire(self, kind: str, resource_id: str) -> None: ...

    def release(self, kind: str, resource_id: str) -> None: ...


class ExecutionContext(Protocol):
    """What a component sees while one of its hooks runs for one node execution."""

    run_id: str
    node_id: str
    node_name: str
    execution_id: str
    #: The node's configuration with every expression resolved (validated before the hook).
    config: dict[str, Any]
    #: Opaque to the engine: the plugin's own connection object (for Daytona, a ``DaytonaIntegration``).
    integration: Any
    secrets: SecretsProvider
    metadata: MetadataStore
    resources: ResourceTracker
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger]
    #: The events received by this execution, oldest first: one for an ordinary node (none for a
    #: trigger), each one so far for a joining component (:attr:`Component.joins_inputs`).
    inputs: tuple[NodeInput, ...]
    #: The distinct nodes with an edge into this one, in canvas order.
    expected_sources: tuple[str, ...]
    #: The longest a hook should wait on something outside (a sandbox starting, a command running)
    #: before it hands the wait to the engine as a scheduled check; None: no limit (the embedded
    #: engine, which runs other hooks meanwhile). A distributed engine sets it: a hook that waits
    #: there holds a worker slot. Components may ignore it (they still work, holding the slot).
    hook_wait_limit: float | None

    def evaluate(self, expression: str, *, field: str | None = None) -> Any:
        """The value of a bare expression (no delimiters) in the context the node's templates see.

        Raises :class:`daytonaflow.expressions.ExpressionError` naming the node and ``field``.
        Fields holding such expressions belong in :attr:`Component.literal_fields`.
        """
        ...

    def emit(self, channel: str, payload: Payload) -> None:
        """Finish the execution by emitting ``payload`` on ``channel`` (one emit per execution)."""
        ...

    def schedule_check(self, delay_seconds: float) -> None:
        """Ask the engine to call :meth:`Component.check` after ``delay_seconds``.

        The request is persisted: if the engine restarts, it still calls ``check``, and the
        component resumes from :attr:`metadata`. Returning from a hook without emitting or
        scheduling a check means the execution is done with no output.
        """
        ...

    def waiting(self) -> AbstractAsyncContextManager[None]:
        """Enter while the hook waits on something outside (a running command, a sandbox starting).

        The engine counts such a hook as idle: it may run other hooks meanwhile, so a canvas of
        many long commands never starves the nodes ready to start.
        """
        ...

    def report_output(self, text: str) -> None:
        """Pass a piece of a running operation's output to the engine's observers as it comes (a
        live view shows it). Informational only: it is not persisted; the payload carries the output."""
        ...


class Component(abc.ABC):
    """Base class of a self-describing workflow component."""

    #: Registered name, e.g. ``daytona.createSandbox``.
    name: ClassVar[str]
    label: ClassVar[str]
    #: One line for pickers and tooltips.
    description: ClassVar[str]
    icon: ClassVar[str]
    color: ClassVar[str]
    channels: ClassVar[tuple[Channel, ...]] = (DEFAULT_CHANNEL,)
    #: Channels an earlier version of the component had -> the channel that now carries their
    #: events: canvases saved with the old name keep their edges.
    channel_aliases: ClassVar[Mapping[str, str]] = {}
    payload_type: ClassVar[type[Payload]]
    #: Config paths whose strings are taken literally (never resolved as expressions).
    literal_fields: ClassVar[frozenset[str]] = frozenset()
    #: One open execution per run gathers every input that reaches the node (SuperPlane's merge):
    #: ``execute`` runs once per input, and the execution stays open until the hook emits.
    joins_inputs: ClassVar[bool] = False
    #: A trigger starts runs (a node of type TYPE_TRIGGER); it is never executed inside one.
    trigger: ClassVar[bool] = False

    # --- self-description -------------------------------------------------------------

    @classmethod
    @abc.abstractmethod
    def documentation(cls) -> str:
        """Markdown documentation for the canvas UI and the generated reference docs."""

    @classmethod
    @abc.abstractmethod
    def config_schema(cls) -> dict[str, Any]:
        """JSON Schema (draft 2020-12) of the configuration."""

    @classmethod
    def manifest(cls) -> dict[str, Any]:
        """Everything a canvas UI renders: identity, docs, channels, payload type, example output.

        Components extend it with how their configuration is described (form fields, schema).
        """
        return {
            "name": cls.name,
            "label": cls.label,
            "description": cls.description,
            "icon": cls.icon,
            "color": cls.color,
            "documentation": cls.documentation(),
            "channels": [
                {
                    "name": channel.name,
                    "label": channel.label,
                    "description": channel.description,
                    "failure": channel.failure,
                }
                for channel in cls.channels
            ],
            "payloadType": cls.payload_type.event_type,
            "literalFields": sorted(cls.literal_fields),
            "exampleOutput": cls.example_output(),
            **({"trigger": True} if cls.trigger else {}),
        }

    @classmethod
    @abc.abstractmethod
    def example_output(cls) -> dict[str, Any]:
        """The seed's example event, ``{type, data, timestamp}``."""

    @classmethod
    def channel_names(cls) -> tuple[str, ...]:
        return tuple(channel.name for channel in cls.channels)

    @classmethod
    def listened_names(cls, channel: str) -> tuple[str, ...]:
        """The names an edge may use to listen to ``channel``: its own and its old aliases."""
        return (channel, *(old for old, current in cls.channel_aliases.items() if current == channel))

    # --- lifecycle ----------------------------------------------------------------------

    @classmethod
    @abc.abstractmethod
    def validate_config(cls, config: Mapping[str, Any], *, allow_expressions: bool) -> list[ConfigIssue]:
        """Setup-time validation; returns every broken rule (empty list when valid).

        With ``allow_expressions`` (canvas load time), a string value holding an expression
        template stands in for a value of any type; rules that depend on it are checked
        after resolution, when the engine calls this again with ``allow_expressions=False``.
        """

    @abc.abstractmethod
    async def execute(self, ctx: ExecutionContext) -> None:
        """Start the operation. Emit, schedule a check, or raise ``ComponentError``."""

    async def check(self, ctx: ExecutionContext) -> None:
        """Resume after a scheduled check; same contract as :meth:`execute`."""
        raise NotImplementedError(f"{self.name} schedules no checks")

    async def cancel(self, ctx: ExecutionContext) -> None:
        """Stop whatever the execution started (kill commands). Default: nothing to stop."""
        return None

    @classmethod
    async def reclaim(cls, kind: str, resource_id: str, integration: Any) -> None:
        """Free a resource this component acquired and nobody released (run ended)."""
        raise NotImplementedError(f"{cls.name} acquires no resources of kind {kind!r}")
