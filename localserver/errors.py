"""Errors of the local server, all deriving from :class:`daytonaflow.errors.DaytonaflowError`."""

from __future__ import annotations

from daytonaflow.errors import DaytonaflowError


class LocalServerError(DaytonaflowError):
    """Base class of the local server's errors."""


class IsolationUnavailableError(LocalServerError):
    """This host cannot create bubblewrap sandboxes (no bwrap, or no unprivileged user namespaces)."""


class SandboxKillError(LocalServerError):
    """The host could not reach a sandbox's processes to kill them (its namespace is gone)."""


class ApiError(LocalServerError):
    """An API request failed; rendered as Daytona's JSON error body with ``status``."""

    def __init__(self, status: int, message: str, *, code: str | None = None, **extra: object) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.extra = extra


class RequestFieldError(ApiError):
    """A request field has the wrong type or is out of range: a 400 naming the field."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(400, f"{field} {rule}", code="INVALID_FIELD", field=field)


class AgentCallError(ApiError):
    """The sandbox agent refused a request or could not be reached."""


class GitCloneError(ApiError):
    """``git clone`` failed; the message never contains credentials."""


class GitOperationError(ApiError):
    """A toolbox git operation (status, commit, push, pull...) failed; never shows credentials."""


class SandboxUidsExhaustedError(ApiError):
    """Every host uid of the sandbox uid range is in use: no sandbox can be created."""

    def __init__(self, message: str) -> None:
        super().__init__(503, message, code="SANDBOX_UIDS_EXHAUSTED")


class UnsafeSandboxUidsError(LocalServerError, ValueError):
    """A sandbox uid range includes a uid no sandbox may run as (root, ``nobody``, ``(uid_t)-1``…)."""


class SandboxUidRefusedError(LocalServerError):
    """A sandbox record names a host uid this server must not run it as (adoption keeps it ``error``)."""


class SandboxUidInUseError(ApiError):
    """Another server on this host holds the sandbox's host uid: starting it would share the uid."""

    def __init__(self, message: str) -> None:
        super().__init__(409, message, code="SANDBOX_UID_IN_USE")
