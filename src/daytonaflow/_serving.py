"""What the processes that serve or wait until stopped share: the UI (``daytonaflow ui``), the
trigger server (``daytonaflow up``) and the CLI's runs and worker: a listening socket made before
the app (which must know its port), and SIGINT and SIGTERM handled on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable, Iterator


def bind(host: str, port: int, error: Callable[[str], Exception]) -> socket.socket:
    """Listen on ``host:port`` (0: a free port); a failure raises ``error`` with what went wrong."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say they are TCP; without it
    # every response waits ~40 ms on the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as failure:
        sock.close()
        raise error(f"cannot listen on {host}:{port}: {failure.strerror}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


@contextlib.contextmanager
def signals_handled(handler: Callable[[int], None]) -> Iterator[None]:
    """SIGINT and SIGTERM call ``handler`` with the signal's number on the running loop while
    inside (where the loop can take them: not on Windows, nor off the main thread)."""
    loop = asyncio.get_running_loop()
    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, handler, signum)
            installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
