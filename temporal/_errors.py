"""Errors of the Temporal engine: a cluster that cannot be reached, a run it does not know."""

from __future__ import annotations

from daytonaflow.errors import DaytonaflowError


class TemporalError(DaytonaflowError):
    """Base class of every error the Temporal engine raises on purpose."""


class TemporalConnectionError(TemporalError):
    """The Temporal server cannot be reached, or a TLS file cannot be read; names the address or file."""


class TemporalRunNotFoundError(TemporalError):
    """No daytonaflow run with that id (or id prefix) in the namespace."""
