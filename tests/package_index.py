"""A PEP 503 package index on the host's loopback serving one real wheel built here.

What pip inside a sandbox installs when the sandbox's network policy lets it reach the host's
127.0.0.1 (tests may only talk to loopback, so this stands in for the package index users reach).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE = "dfl-egress-probe"
MODULE = "dfl_egress_probe"
VALUE = "installed through the egress proxy"


def pip_install_command(port: int) -> str:
    """pip from the host index, then the import. NO_PROXY emptied: the index is on *the host's*
    127.0.0.1, which only the proxy reaches (the sandbox's own 127.0.0.1 is its loopback)."""
    return (
        "NO_PROXY= no_proxy= python3 -m pip install --disable-pip-version-check --no-cache-dir "
        f"--retries 0 --timeout 20 --target /home/daytona/pkgs "
        f"--index-url http://127.0.0.1:{port}/simple {PACKAGE} && "
        f"PYTHONPATH=/home/daytona/pkgs python3 -c 'import {MODULE}; print({MODULE}.VALUE)'"
    )


def _build_wheel(directory: Path) -> Path:
    """A real, minimal pure-Python wheel: a module, METADATA, WHEEL and a RECORD of hashes."""
    dist_info = f"{MODULE}-1.0.dist-info"
    files = {
        f"{MODULE}/__init__.py": f"VALUE = {VALUE!r}\n".encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: 1.0\n".encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = directory / f"{MODULE}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


@dataclass
class Index:
    """A PEP 503 simple index on the host's loopback, and every path it was asked for."""

    port: int
    requests: list[str]


@contextlib.contextmanager
def served_index(directory: Path) -> Iterator[Index]:
    """The index on 127.0.0.1 (a free port) for as long as the block runs."""
    wheel = _build_wheel(directory)
    asked: list[str] = []
    page = f'<html><body><a href="/files/{wheel.name}">{wheel.name}</a></body></html>'.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            if self.path.rstrip("/") == f"/simple/{PACKAGE}":
                self._send(page, "text/html")
            elif self.path == f"/files/{wheel.name}":
                self._send(wheel.read_bytes(), "application/octet-stream")
            else:
                self._send(b"not found", "text/plain", 404)

        def _send(self, body: bytes, kind: str, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Index(server.server_address[1], asked)
    finally:
        server.shutdown()
        server.server_close()
