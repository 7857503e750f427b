"""Named errors of the Daytona API client; each fails a node with a message that says what went wrong."""

from __future__ import annotations

from daytonaflow.errors import ComponentError


class DaytonaError(ComponentError):
    """Base of every error raised while talking to Daytona."""


class DaytonaNotConfiguredError(DaytonaError):
    """No Daytona integration was given to the component (``DAYTONA_API_KEY`` unset?)."""


class DaytonaConnectionError(DaytonaError):
    """Daytona could not be reached (after retries where retrying was safe)."""


class DaytonaTimeoutError(DaytonaConnectionError):
    """Daytona did not answer within the call's deadline (every attempt and wait included)."""


class DaytonaProtocolError(DaytonaError):
    """Daytona answered 2xx with a body that is not the JSON document the call expects."""


class DaytonaApiError(DaytonaError):
    """Daytona answered with a non-2xx status; ``message`` is Daytona's own explanation."""

    def __init__(self, status: int, message: str, *, method: str, path: str, error: str = "") -> None:
        self.status = status
        self.message = message
        self.error = error
        self.method = method
        self.path = path
        reason = f"{error}: {message}" if error and error != message else message
        super().__init__(f"Daytona API {method} {path} failed with {status}: {reason}")


class DaytonaBadRequestError(DaytonaApiError):
    """400 or 422: Daytona rejected the request's content."""


class DaytonaAuthError(DaytonaApiError):
    """401 or 403: the API key is missing, wrong or lacks the permission."""


class DaytonaNotFoundError(DaytonaApiError):
    """404: the sandbox (or session, command, file) does not exist."""


class DaytonaConflictError(DaytonaApiError):
    """409: the resource already exists or is in a state that forbids the operation."""


class DaytonaRateLimitError(DaytonaApiError):
    """429: too many requests (raised once retries are exhausted)."""


class DaytonaServerError(DaytonaApiError):
    """5xx: Daytona failed (raised once retries are exhausted, or at once when retrying is unsafe)."""


def api_error_class(status: int) -> type[DaytonaApiError]:
    """The most specific error class for an HTTP status."""
    if status in (400, 422):
        return DaytonaBadRequestError
    if status in (401, 403):
        return DaytonaAuthError
    if status == 404:
        return DaytonaNotFoundError
    if status == 409:
        return DaytonaConflictError
    if status == 429:
        return DaytonaRateLimitError
    if status >= 500:
        return DaytonaServerError
    return DaytonaApiError
