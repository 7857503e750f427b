"""daytonaflow.localserver: an embedded Daytona-compatible server with bubblewrap sandboxes."""

from daytonaflow.localserver.disk import DiskMode
from daytonaflow.localserver.errors import (
    AgentCallError,
    ApiError,
    GitCloneError,
    IsolationUnavailableError,
    LocalServerError,
    UnsafeSandboxUidsError,
)
from daytonaflow.localserver.isolation import IsolationReport, SandboxLimits
from daytonaflow.localserver.proxy import ProxyLimits, ProxyTimeouts
from daytonaflow.localserver.server import LocalServer, RunningServer, default_state_dir, running_server

__all__ = [
    "AgentCallError",
    "ApiError",
    "DiskMode",
    "GitCloneError",
    "IsolationReport",
    "IsolationUnavailableError",
    "LocalServer",
    "LocalServerError",
    "ProxyLimits",
    "ProxyTimeouts",
    "RunningServer",
    "SandboxLimits",
    "UnsafeSandboxUidsError",
    "default_state_dir",
    "running_server",
]
