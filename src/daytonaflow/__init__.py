"""daytonaflow: workflow-engine components for Daytona sandboxes."""

from daytonaflow.component import (
    DEFAULT_CHANNEL,
    FAILED_CHANNEL,
    SUCCESS_CHANNEL,
    Channel,
    Component,
    ExecutionContext,
    MetadataStore,
    ResourceTracker,
    SecretsProvider,
)
from daytonaflow.errors import (
    ComponentError,
    ConfigError,
    ConfigIssue,
    DaytonaflowError,
    SecretNotFoundError,
)
from daytonaflow.events import Event, Payload

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_CHANNEL",
    "FAILED_CHANNEL",
    "SUCCESS_CHANNEL",
    "Channel",
    "Component",
    "ComponentError",
    "ConfigError",
    "ConfigIssue",
    "DaytonaflowError",
    "Event",
    "ExecutionContext",
    "MetadataStore",
    "Payload",
    "ResourceTracker",
    "SecretNotFoundError",
    "SecretsProvider",
    "__version__",
]
