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


# ---- the path form on 127.0.0.1, the API key as a credential, short signed labels -------------------

ECHO_PORT = 8300
# Answers every request with its path and headers as JSON: what the sandbox's server was sent.
# Each query parameter `h=Name:value` becomes a header of the answer.
ECHO_SERVER = f"""
import http.server, json, urllib.parse
class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({{"path": self.path, "headers": {{k.lower(): v for k, v in self.headers.items()}}}})
        self.send_response(200)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        for header in query.get("h", []):
            self.send_header(*header.split(":", 1))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", {ECHO_PORT}), Echo).serve_forever()
"""


def _start_echo(api: Api, sandbox: dict[str, Any]) -> None:
    api.toolbox(
        "POST",
        sandbox["id"],
        "/files/upload",
        params={"path": "echo.py"},
        files={"file": ("echo.py", ECHO_SERVER)},
    )
    api.run(sandbox["id"], "nohup python3 echo.py >echo.log 2>&1 &")
    _wait_until_serving(api, sandbox["id"], ECHO_PORT)


@pytest.fixture(scope="module")
def echo(api: Api) -> Iterator[dict[str, Any]]:
    sandbox = api.create(name="echo")
    _start_echo(api, sandbox)
    yield sandbox
    api.delete(sandbox["id"])


@pytest.fixture(scope="module")
def public_echo(api: Api) -> Iterator[dict[str, Any]]:
    sandbox = api.create(name="public-echo", public=True)
    _start_echo(api, sandbox)
    yield sandbox
    api.delete(sandbox["id"])


def _preview(api: Api, sandbox_id: str, port: int) -> dict[str, Any]:
    preview: dict[str, Any] = api.api("GET", f"/sandbox/{sandbox_id}/ports/{port}/preview-url").json()
    return preview


def _signed(api: Api, sandbox_id: str, port: int, seconds: int = 120) -> dict[str, Any]:
    path = f"/sandbox/{sandbox_id}/ports/{port}/signed-preview-url"
    signed: dict[str, Any] = api.api("GET", path, params={"expiresInSeconds": seconds}).json()
    return signed


def test_the_path_form_url_opens_with_plain_httpx_and_the_token_header(api: Api, web: dict[str, Any]) -> None:
    preview = _preview(api, web["id"], HTTP_PORT)
    response = httpx.get(
        preview["url"] + "/index.html", headers={"x-daytona-preview-token": preview["token"]}
    )
    assert response.status_code == 200
    assert response.text == "hello from the sandbox\n"


def test_the_bare_path_form_is_the_root_for_programs_and_a_slash_redirect_for_browsers(
    api: Api, echo: dict[str, Any]
) -> None:
    preview = _preview(api, echo["id"], ECHO_PORT)
    token = {"x-daytona-preview-token": preview["token"]}
    assert httpx.get(preview["url"] + "?q=1", headers=token).json()["path"] == "/?q=1"
    navigation = httpx.get(preview["url"] + "?q=1", headers={**token, "Sec-Fetch-Mode": "navigate"})
    assert navigation.status_code == 308
    assert navigation.headers["location"] == httpx.URL(preview["url"]).path + "/?q=1"


def test_an_absolute_link_from_a_path_form_page_is_redirected_under_its_prefix(
    api: Api, echo: dict[str, Any]
) -> None:
    preview = _preview(api, echo["id"], ECHO_PORT)
    prefix = httpx.URL(preview["url"]).path
    response = httpx.post(
        f"http://127.0.0.1:{api.server.proxy_port}/static/app.js?v=2",
        headers={"Referer": preview["url"] + "/page/index.html"},
    )
    assert response.status_code == 307  # a POST stays a POST with its body
    assert response.headers["location"] == f"{prefix}/static/app.js?v=2"
    followed = httpx.get(
        f"http://127.0.0.1:{api.server.proxy_port}{response.headers['location']}",
        headers={"x-daytona-preview-token": preview["token"]},
    )
    assert followed.json()["path"] == "/static/app.js?v=2"


def test_a_request_in_neither_form_is_a_400_naming_both(api: Api) -> None:
    response = httpx.get(f"http://127.0.0.1:{api.server.proxy_port}/index.html")
    assert response.status_code == 400
    assert "/preview/" in response.json()["message"] and ".localhost" in response.json()["message"]


def test_the_config_template_names_the_same_url_as_preview_url(api: Api, web: dict[str, Any]) -> None:
    template = api.api("GET", "/config").json()["proxyTemplateUrl"]
    expected = _preview(api, web["id"], HTTP_PORT)["url"]
    assert template.replace("{{PORT}}", str(HTTP_PORT)).replace("{{sandboxId}}", web["id"]) == expected


@pytest.mark.parametrize("form", ["path", "host"])
def test_the_api_key_as_bearer_opens_a_private_preview_and_never_reaches_the_sandbox(
    api: Api, echo: dict[str, Any], form: str
) -> None:
    preview = _preview(api, echo["id"], ECHO_PORT)
    bearer = {"Authorization": f"Bearer {api.server.api_key}"}
    if form == "path":
        response = httpx.get(preview["url"] + "/x", headers=bearer)
    else:
        response = api.preview(_host(preview["url"]), "/x", headers=bearer)
    assert response.status_code == 200
    seen = response.json()
    assert seen["path"] == "/x"
    assert "authorization" not in seen["headers"]
    assert api.server.api_key not in response.text


def test_an_apps_own_authorization_header_goes_through_with_the_preview_token(
    api: Api, echo: dict[str, Any]
) -> None:
    preview = _preview(api, echo["id"], ECHO_PORT)
    headers = {"x-daytona-preview-token": preview["token"], "Authorization": "Basic YXBwOnVzZXI="}
    seen = httpx.get(preview["url"], headers=headers).json()["headers"]
    assert seen["authorization"] == "Basic YXBwOnVzZXI="
    assert "x-daytona-preview-token" not in seen


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-the-key"}, {"x-daytona-preview-token": "not-the-token"}],
    ids=["nothing", "wrong-key", "wrong-token"],
)
def test_a_private_preview_without_a_valid_credential_is_401(
    api: Api, echo: dict[str, Any], headers: dict[str, str]
) -> None:
    response = httpx.get(_preview(api, echo["id"], ECHO_PORT)["url"], headers=headers)
    assert response.status_code == 401


def test_the_signed_url_opens_with_httpx_requests_and_curl(api: Api, web: dict[str, Any]) -> None:
    url = _signed(api, web["id"], HTTP_PORT)["url"] + "/index.html"
    assert httpx.get(url).text == "hello from the sandbox\n"
    requests = pytest.importorskip("requests")
    assert requests.get(url, timeout=30).text == "hello from the sandbox\n"
    curl = shutil.which("curl")
    if curl is not None:
        import subprocess

        fetched = subprocess.run(
            [curl, "-sS", "--noproxy", "*", url], capture_output=True, text=True, timeout=60
        )
        assert fetched.stdout == "hello from the sandbox\n", fetched.stderr


@pytest.mark.parametrize("port", [1, 3000, 65535])
def test_every_label_of_a_signed_host_fits_in_dns(api: Api, web: dict[str, Any], port: int) -> None:
    token = _signed(api, web["id"], port)["token"]
    host = f"{port}-{token}.localhost"
    assert all(len(label) <= 63 for label in host.split("."))
    host.encode("idna")  # what httpx and requests do to a host: raises over 63
    assert httpx.URL(f"http://{host}:{api.server.proxy_port}/").host == host


def test_a_signed_token_works_in_both_forms_and_only_for_its_port(api: Api, web: dict[str, Any]) -> None:
    token = _signed(api, web["id"], HTTP_PORT)["token"]
    assert api.preview(f"{HTTP_PORT}-{token}.localhost", "/index.html").status_code == 200
    base = f"http://127.0.0.1:{api.server.proxy_port}/preview"
    assert httpx.get(f"{base}/{HTTP_PORT}-{token}/index.html").status_code == 200
    other = httpx.get(f"{base}/{WS_PORT}-{token}/")
    assert other.status_code == 401
    altered = token[:-1] + ("a" if token[-1] != "a" else "b")
    assert httpx.get(f"{base}/{HTTP_PORT}-{altered}/").status_code == 401


def test_an_expired_signed_url_is_401(api: Api, web: dict[str, Any]) -> None:
    signed = _signed(api, web["id"], HTTP_PORT, seconds=1)
    time.sleep(2.2)
    response = httpx.get(signed["url"])
    assert response.status_code == 401
    assert response.json()["code"] == "TOKEN_EXPIRED"


def test_websocket_echo_through_the_path_form(api: Api, web: dict[str, Any]) -> None:
    url = _signed(api, web["id"], WS_PORT)["url"].replace("http://", "ws://") + "/"

    async def exchange() -> str:
        async with connect(url, proxy=None) as ws:
            await ws.send("path")
            return str(await ws.recv())

    assert asyncio.run(exchange()) == "echo:path"


# ---- the API key never reaches a sandbox; the path form's shared origin --------------------------


def _url_in(form: str, url: str, path: str) -> tuple[str, dict[str, str]]:
    """The URL to fetch and the Host header to send for a path-form ``url`` in ``form``."""
    if form == "path":
        return url + path, {}
    parsed = httpx.URL(url)
    return f"http://127.0.0.1:{parsed.port}{path}", {"Host": _host(url)}


@pytest.mark.parametrize("form", ["path", "host"])
@pytest.mark.parametrize("opened_by", ["public", "signed"])
def test_the_api_key_as_bearer_never_reaches_a_sandbox_whatever_opened_the_preview(
    api: Api, echo: dict[str, Any], public_echo: dict[str, Any], form: str, opened_by: str
) -> None:
    if opened_by == "public":
        url = _preview(api, public_echo["id"], ECHO_PORT)["url"]
    else:
        url = _signed(api, echo["id"], ECHO_PORT)["url"]
    target, host = _url_in(form, url, "/x")
    response = httpx.get(target, headers={**host, "Authorization": f"Bearer {api.server.api_key}"})
    assert response.status_code == 200
    assert "authorization" not in response.json()["headers"]
    assert api.server.api_key not in response.text


def test_an_apps_own_bearer_goes_through_a_public_preview(api: Api, public_echo: dict[str, Any]) -> None:
    url = _preview(api, public_echo["id"], ECHO_PORT)["url"]
    seen = httpx.get(url, headers={"Authorization": "Bearer the-apps-own"}).json()["headers"]
    assert seen["authorization"] == "Bearer the-apps-own"


def _answer_headers(api: Api, sandbox: dict[str, Any], form: str, *headers: str) -> httpx.Headers:
    target, host = _url_in(form, _preview(api, sandbox["id"], ECHO_PORT)["url"], "/page")
    response = httpx.get(target, params=[("h", header) for header in headers], headers=host)
    assert response.status_code == 200, response.text
    return response.headers


@pytest.mark.parametrize("header", ["Service-Worker-Allowed", "Clear-Site-Data"])
def test_the_path_form_drops_headers_acting_on_the_shared_origin_and_the_host_form_keeps_them(
    api: Api, public_echo: dict[str, Any], header: str
) -> None:
    assert header not in _answer_headers(api, public_echo, "path", f"{header}:/")
    assert _answer_headers(api, public_echo, "host", f"{header}:/")[header] == "/"


def test_the_path_form_refuses_a_service_worker_script_and_names_the_host_form(
    api: Api, public_echo: dict[str, Any]
) -> None:
    url = _preview(api, public_echo["id"], ECHO_PORT)["url"]
    response = httpx.get(url + "/sw.js", headers={"Service-Worker": "script"})
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "SERVICE_WORKER_REFUSED"
    assert ".localhost" in body["message"]
    target, host = _url_in("host", url, "/sw.js")
    assert httpx.get(target, headers={**host, "Service-Worker": "script"}).status_code == 200


def test_the_path_form_scopes_every_cookie_under_the_preview_and_drops_its_domain(
    api: Api, public_echo: dict[str, Any]
) -> None:
    prefix = httpx.URL(_preview(api, public_echo["id"], ECHO_PORT)["url"]).path
    headers = _answer_headers(
        api,
        public_echo,
        "path",
        "Set-Cookie:root=1; Path=/; Domain=127.0.0.1; HttpOnly",
        "Set-Cookie:app=2; Path=/app",
        "Set-Cookie:bare=3; SameSite=Lax",
    )
    assert headers.get_list("set-cookie") == [
        f"root=1; HttpOnly; Path={prefix}",
        f"app=2; Path={prefix}/app",
        f"bare=3; SameSite=Lax; Path={prefix}",
    ]


def test_the_host_form_passes_cookies_through_unchanged(api: Api, public_echo: dict[str, Any]) -> None:
    cookie = "root=1; Path=/; Domain=localhost; HttpOnly"
    assert _answer_headers(api, public_echo, "host", f"Set-Cookie:{cookie}").get_list("set-cookie") == [
        cookie
    ]
