"""Preview URLs: a server started by one command, reached over HTTP and WebSocket via the proxy."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from localserver_testkit import TEST_LIMITS, Api, make_state_root
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from daytonaflow.localserver import LocalServer, ProxyLimits, ProxyTimeouts

pytestmark = pytest.mark.sandbox

HTTP_PORT = 8000
WS_PORT = 8765
SILENT_PORT = 8200

# Accepts every connection and never answers a byte (nor closes).
SILENT_SERVER = f"""
import socket
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", {SILENT_PORT}))
listener.listen()
held = []
while True:
    held.append(listener.accept())
"""

# A stdlib-only WebSocket echo server (sandboxes have no pip): enough for text frames < 64 KiB.
WS_ECHO_SERVER = r"""
import base64, hashlib, socket, struct, threading
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
def serve(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(4096)
    lines = data.split(b"\r\n")
    key = [l.split(b":", 1)[1].strip() for l in lines if l.lower().startswith(b"sec-websocket-key")][0]
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    while True:
        head = conn.recv(2)
        if len(head) < 2:
            return
        opcode, length = head[0] & 15, head[1] & 127
        if length == 126:
            length = struct.unpack(">H", conn.recv(2))[0]
        mask = conn.recv(4)
        payload = b""
        while len(payload) < length:
            payload += conn.recv(length - len(payload))
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if opcode == 8:
            conn.sendall(b"\x88\x00")
            return
        reply = b"echo:" + payload
        size = len(reply)
        header = bytes([0x81, size]) if size < 126 else bytes([0x81, 126]) + struct.pack(">H", size)
        conn.sendall(header + reply)
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 8765))
listener.listen()
while True:
    threading.Thread(target=serve, args=(listener.accept()[0],), daemon=True).start()
"""

FLOOD_PORT = 8766
# Answers the handshake, then sends one binary message of 2 MiB and waits.
WS_FLOOD_SERVER = rf"""
import base64, hashlib, socket, struct, time
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", {FLOOD_PORT}))
listener.listen()
while True:
    conn = listener.accept()[0]
    data = chunk = b"-"
    while chunk and b"\r\n\r\n" not in data:  # a probe's connection closes at once
        chunk = conn.recv(4096)
        data += chunk
    lines = data.split(b"\r\n")
    key = [l.split(b":", 1)[1].strip() for l in lines if l.lower().startswith(b"sec-websocket-key")]
    if not key:
        conn.close()
        continue
    accept = base64.b64encode(hashlib.sha1(key[0] + GUID).digest())
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    size = 2 << 20
    try:
        conn.sendall(bytes([0x82, 127]) + struct.pack(">Q", size) + b"w" * size)
        time.sleep(5)
    except OSError:
        pass
    conn.close()
"""


def _wait_until_serving(api: Api, sandbox_id: str, port: int) -> None:
    probe = f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 1)\""
    for _ in range(100):
        if api.run(sandbox_id, probe)["exitCode"] == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


@pytest.fixture(scope="module")
def web(api: Api) -> Iterator[dict[str, Any]]:
    """A private sandbox serving HTTP on 8000 (from an async session command) and WebSocket on 8765."""
    sandbox = api.create(name="web")
    sandbox_id = sandbox["id"]
    api.run(sandbox_id, "mkdir -p site && echo 'hello from the sandbox' > site/index.html")
    api.toolbox("POST", sandbox_id, "/process/session", json={"sessionId": "servers"})
    started = api.toolbox(
        "POST",
        sandbox_id,
        "/process/session/servers/exec",
        json={"command": f"cd site && python3 -m http.server {HTTP_PORT} --bind 127.0.0.1", "runAsync": True},
    )
    assert started.status_code == 202
    api.toolbox(
        "POST",
        sandbox_id,
        "/files/upload",
        params={"path": "ws.py"},
        files={"file": ("ws.py", WS_ECHO_SERVER)},
    )
    api.run(sandbox_id, "nohup python3 ws.py >ws.log 2>&1 &")
    _wait_until_serving(api, sandbox_id, HTTP_PORT)
    _wait_until_serving(api, sandbox_id, WS_PORT)
    yield sandbox
    api.delete(sandbox_id)


def _host(url: str) -> str:
    """The Host header of Daytona's host form naming the same preview as a path-form ``url``."""
    parsed = httpx.URL(url)
    label = parsed.path.removeprefix("/preview/").strip("/")
    return f"{label}.localhost:{parsed.port}"


def test_standard_preview_url_serves_the_sandbox_port_with_its_token(api: Api, web: dict[str, Any]) -> None:
    preview = api.api("GET", f"/sandbox/{web['id']}/ports/{HTTP_PORT}/preview-url").json()
    assert preview["url"] == f"http://127.0.0.1:{api.server.proxy_port}/preview/{HTTP_PORT}-{web['id']}"
    assert preview["sandboxId"] == web["id"]
    response = api.preview(
        _host(preview["url"]), "/index.html", headers={"x-daytona-preview-token": preview["token"]}
    )
    assert response.status_code == 200
    assert response.text == "hello from the sandbox\n"


def _raw_response_head(port: int, host: str, path: str) -> list[bytes]:
    """The header lines of one HTTP/1.1 answer, read off the socket (no client folds repeats)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
    return received.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]


def test_a_proxied_answer_carries_each_date_and_server_header_once(api: Api, web: dict[str, Any]) -> None:
    """The sandbox's http.server sends `date` and `server`, and so does the proxy's own server."""
    signed = api.api(
        "GET", f"/sandbox/{web['id']}/ports/{HTTP_PORT}/signed-preview-url", params={"expiresInSeconds": 120}
    ).json()
    lines = _raw_response_head(api.server.proxy_port, _host(signed["url"]), "/index.html")
    names = [line.split(b":", 1)[0].strip().lower() for line in lines]
    assert names.count(b"date") == 1, lines
    assert names.count(b"server") == 1, lines
    assert names.count(b"content-length") == 1, lines


def test_signed_preview_url_needs_no_header(api: Api, web: dict[str, Any]) -> None:
    signed = api.api(
        "GET", f"/sandbox/{web['id']}/ports/{HTTP_PORT}/signed-preview-url", params={"expiresInSeconds": 120}
    ).json()
    assert signed["port"] == HTTP_PORT
    assert signed["url"] == f"http://127.0.0.1:{api.server.proxy_port}/preview/{HTTP_PORT}-{signed['token']}"
    response = api.preview(_host(signed["url"]), "/index.html")
    assert response.status_code == 200
    assert response.text == "hello from the sandbox\n"


def test_request_bodies_are_streamed_to_the_sandbox(api: Api, web: dict[str, Any]) -> None:
    # http.server answers POST with 501: the point is that the body went through and the answer came back.
    preview = api.api("GET", f"/sandbox/{web['id']}/ports/{HTTP_PORT}/preview-url").json()
    response = httpx.post(
        f"http://127.0.0.1:{api.server.proxy_port}/upload",
        headers={"Host": _host(preview["url"]), "x-daytona-preview-token": preview["token"]},
        content=(b"x" * 65536 for _ in range(64)),
    )
    assert response.status_code == 501


def test_public_sandbox_preview_needs_no_token(api: Api) -> None:
    sandbox = api.create(public=True)
    try:
        api.run(sandbox["id"], f"nohup python3 -m http.server {HTTP_PORT} --bind 127.0.0.1 >/dev/null 2>&1 &")
        _wait_until_serving(api, sandbox["id"], HTTP_PORT)
        response = api.preview(f"{HTTP_PORT}-{sandbox['id']}.localhost")
        assert response.status_code == 200
    finally:
        api.delete(sandbox["id"])


def test_a_port_nobody_listens_on_is_a_502_json(api: Api, web: dict[str, Any]) -> None:
    preview = api.api("GET", f"/sandbox/{web['id']}/ports/9999/preview-url").json()
    response = api.preview(_host(preview["url"]), headers={"x-daytona-preview-token": preview["token"]})
    assert response.status_code == 502
    assert response.json()["code"] == "PORT_NOT_LISTENING"


def test_expired_signed_url_route_revokes_the_token(api: Api, web: dict[str, Any]) -> None:
    base = f"/sandbox/{web['id']}/ports/{HTTP_PORT}/signed-preview-url"
    signed = api.api("GET", base, params={"expiresInSeconds": 120}).json()
    assert api.api("POST", f"{base}/{signed['token']}/expire").status_code == 200
    response = api.preview(_host(signed["url"]))
    assert response.status_code == 401
    assert response.json()["code"] == "TOKEN_REVOKED"


def test_websocket_echo_through_the_signed_preview_url(api: Api, web: dict[str, Any]) -> None:
    signed = api.api("GET", f"/sandbox/{web['id']}/ports/{WS_PORT}/signed-preview-url").json()
    host = _host(signed["url"])

    async def exchange() -> list[str]:
        replies = []
        async with connect(f"ws://{host}/", host="127.0.0.1", port=api.server.proxy_port, proxy=None) as ws:
            for text in ("one", "two"):
                await ws.send(text)
                replies.append(str(await ws.recv()))
        return replies

    assert asyncio.run(exchange()) == ["echo:one", "echo:two"]


def test_websocket_without_a_token_is_refused(api: Api, web: dict[str, Any]) -> None:
    async def attempt() -> None:
        async with connect(
            f"ws://{WS_PORT}-{web['id']}.localhost:{api.server.proxy_port}/",
            host="127.0.0.1",
            port=api.server.proxy_port,
            proxy=None,
        ):
            pass

    with pytest.raises(InvalidStatus):
        asyncio.run(attempt())


@pytest.fixture(scope="module")
def impatient_api() -> Iterator[Api]:
    """A server whose proxy waits 1 s on a silent sandbox server (the default is 60 s) and relays
    WebSocket messages of 1 MiB at most (the default is 16 MiB)."""
    root = make_state_root()
    server = LocalServer(
        state_dir=root / "state",
        limits=TEST_LIMITS,
        keep_spare=False,
        proxy_timeouts=ProxyTimeouts(connect=5, read=1),
        proxy_limits=ProxyLimits(websocket_message_bytes=1 << 20),
    )
    server.start()
    try:
        with httpx.Client(headers={"Authorization": f"Bearer {server.api_key}"}, timeout=60) as http:
            yield Api(server, http)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_an_upstream_that_never_answers_is_a_504_json_and_the_sandbox_is_no_longer_busy(
    impatient_api: Api,
) -> None:
    api = impatient_api
    sandbox = api.create(public=True)
    try:
        api.toolbox(
            "POST",
            sandbox["id"],
            "/files/upload",
            params={"path": "silent.py"},
            files={"file": ("silent.py", SILENT_SERVER)},
        )
        api.run(sandbox["id"], "nohup python3 silent.py >/dev/null 2>&1 &")
        _wait_until_serving(api, sandbox["id"], SILENT_PORT)
        response = api.preview(f"{SILENT_PORT}-{sandbox['id']}.localhost", timeout=30)
        assert response.status_code == 504
        assert response.json() == {
            "statusCode": 504,
            "message": f"the sandbox's server on port {SILENT_PORT} sent nothing for 1s",
            "error": "Gateway Timeout",
            "code": "UPSTREAM_TIMEOUT",
        }
        assert api.server.state is not None
        assert api.server.state.manager.running[sandbox["id"]].inflight == 0
    finally:
        api.delete(sandbox["id"])


def test_a_websocket_message_over_the_limit_closes_the_connection_with_1009(impatient_api: Api) -> None:
    api = impatient_api
    sandbox = api.create(public=True)
    try:
        api.toolbox(
            "POST",
            sandbox["id"],
            "/files/upload",
            params={"path": "flood.py"},
            files={"file": ("flood.py", WS_FLOOD_SERVER)},
        )
        api.run(sandbox["id"], "nohup python3 flood.py >flood.log 2>&1 &")
        _wait_until_serving(api, sandbox["id"], FLOOD_PORT)

        async def receive() -> tuple[int | None, int]:
            host = f"{FLOOD_PORT}-{sandbox['id']}.localhost"
            received = 0
            async with connect(
                f"ws://{host}/", host="127.0.0.1", port=api.server.proxy_port, proxy=None, max_size=None
            ) as ws:
                with contextlib.suppress(ConnectionClosed):
                    async for message in ws:
                        received += len(message)
                return ws.close_code, received

        close_code, received = asyncio.run(asyncio.wait_for(receive(), 30))
        assert (close_code, received) == (1009, 0)
    finally:
        api.delete(sandbox["id"])
