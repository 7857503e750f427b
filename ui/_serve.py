"""Serve the UI with uvicorn on the caller's event loop (the engine's runs live on the same loop)."""

from __future__ import annotations

import socket
import webbrowser
from collections.abc import Callable

import uvicorn

from daytonaflow.errors import DaytonaflowError
from daytonaflow.ui._app import create_app
from daytonaflow.ui._auth import new_token
from daytonaflow.ui._services import UIServices


class UIBindError(DaytonaflowError):
    """The UI cannot listen on the address asked for."""


def bind(host: str, port: int) -> socket.socket:
    """Listen on ``host:port`` (0: a free port) before the app is made: it must know its port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as error:
        sock.close()
        raise UIBindError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def url_of(host: str, port: int, token: str) -> str:
    shown = (
        "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host and "[" not in host else host)
    )
    return f"http://{shown}:{port}/?token={token}"


async def serve(
    services: UIServices,
    *,
    host: str,
    port: int,
    open_browser: bool,
    announce: Callable[[str], None],
) -> None:
    """Serve until SIGINT/SIGTERM; ``announce`` gets the URL (with its token) once listening."""
    sock = bind(host, port)
    bound_port = sock.getsockname()[1]
    token = new_token()
    app = create_app(services, token=token, host=host, port=bound_port)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    url = url_of(host, bound_port, token)
    announce(url)
    if open_browser:
        webbrowser.open(url)
    await server.serve(sockets=[sock])
