"""Where the Temporal cluster is and how to talk to it (address, namespace, task queue, TLS, API key)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client
from temporalio.service import TLSConfig

from daytonaflow.temporal._errors import TemporalConnectionError

DEFAULT_NAMESPACE = "default"
DEFAULT_TASK_QUEUE = "daytonaflow"


@dataclass(frozen=True)
class TemporalSettings:
    """A Temporal cluster and the task queue daytonaflow's workers poll on it."""

    address: str
    namespace: str = DEFAULT_NAMESPACE
    task_queue: str = DEFAULT_TASK_QUEUE
    tls: bool = False
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_server_name: str | None = None
    #: Never shown: settings are held by long-lived objects whose repr may reach a log.
    api_key: str | None = field(default=None, repr=False)

    @property
    def uses_tls(self) -> bool:
        # Temporal Cloud accepts an API key only over TLS; a client certificate implies it too.
        return bool(self.tls or self.api_key or self.tls_ca or self.tls_cert or self.tls_key)


async def connect(settings: TemporalSettings) -> Client:
    """A client of ``settings``' cluster; an unreachable server or an unreadable file is a clear error."""
    tls: TLSConfig | bool = False
    if settings.uses_tls:
        if (settings.tls_cert is None) != (settings.tls_key is None):
            raise TemporalConnectionError(
                "a TLS client certificate needs both files: give --tls-cert and --tls-key together"
            )
        tls = TLSConfig(
            server_root_ca_cert=_read(settings.tls_ca, "TLS CA certificate"),
            client_cert=_read(settings.tls_cert, "TLS client certificate"),
            client_private_key=_read(settings.tls_key, "TLS client key"),
            domain=settings.tls_server_name,
        )
    try:
        return await Client.connect(
            settings.address, namespace=settings.namespace, tls=tls, api_key=settings.api_key
        )
    except Exception as error:  # the SDK raises RuntimeError (and others) for every connection failure
        raise TemporalConnectionError(
            f"cannot connect to the Temporal server at {settings.address}"
            f" (namespace {settings.namespace}): {error}"
        ) from None


def _read(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.expanduser().read_bytes()
    except OSError as error:
        raise TemporalConnectionError(f"cannot read the {what} {path}: {error.strerror}") from None
