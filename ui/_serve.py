"""Serve the UI with uvicorn on the caller's event loop (the engine's runs live on the same loop)."""

from __future__ import annotations

import asyncio
import contextlib
import html
import ipaddress
import os
import tempfile
import webbrowser
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn

from daytonaflow._serving import bind, signals_handled
from daytonaflow.errors import DaytonaflowError
from daytonaflow.ui._app import create_app
from daytonaflow.ui._auth import new_base_path, new_token
from daytonaflow.ui._services import UIServices


class _Server(uvicorn.Server):
    """uvicorn, ending on Ctrl-C or SIGTERM by returning.

    uvicorn's own handling raises the signal again once it has stopped, which cancels whatever
    the caller does next: here that is cancelling the runs and stopping the embedded backend,
    which must finish (a sandbox's volume would stay mounted).
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with signals_handled(lambda signum: self.handle_exit(signum, None)):
            yield


class UIBindError(DaytonaflowError):
    """The UI cannot listen on the address asked for."""


def url_of(host: str, port: int, base_path: str, token: str) -> str:
    shown = (
        "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host and "[" not in host else host)
    )
    return f"http://{shown}:{port}{base_path}/?token={token}"


async def serve(
    services: UIServices,
    *,
    host: str,
    port: int,
    open_browser: bool,
    announce: Callable[[str], None],
) -> None:
    """Serve until SIGINT/SIGTERM; ``announce`` gets the URL (with its token) once listening."""
    # Bound before the app is made: it must know its port.
    sock = bind(host, port, UIBindError)
    bound_port = sock.getsockname()[1]
    token = new_token()
    base_path = new_base_path()
    app = create_app(services, token=token, host=host, port=bound_port, base_path=base_path)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=5
    )
    server = _Server(config)
    url = url_of(host, bound_port, base_path, token)
    announce(url)
    if open_browser:
        _open_browser(url)
    await server.serve(sockets=[sock])


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def _open_browser(url: str) -> None:
    """Open ``url`` through a private redirect file, as Jupyter does: a browser started with the
    URL itself would show its token to every local user in the process list."""
    descriptor, name = tempfile.mkstemp(prefix="daytonaflow-ui-", suffix=".html")
    with os.fdopen(descriptor, "w", encoding="utf-8") as page:
        page.write(f'<!doctype html><meta http-equiv="refresh" content="0; url={html.escape(url)}">')
    webbrowser.open(Path(name).as_uri())
    # The browser reads the file once; leave it long enough for a slow start, then remove it.
    asyncio.get_running_loop().call_later(60, lambda: Path(name).unlink(missing_ok=True))
