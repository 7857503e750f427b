"""Preview links and signed preview URLs through the official Python SDK, opened as users open them.

A sandbox serves HTTP on port 3000 from an async session command; the URLs the SDK returns are
then fetched with plain httpx, requests and curl: no resolver trick, no Host header of our own.
``create_signed_preview_url`` and ``expire_signed_preview_url`` came after the oldest claimed
SDK (0.129.0): their tests skip there, with that reason.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Protocol

import httpx
import pytest
from daytona import CreateSandboxFromSnapshotParams, Daytona, Sandbox, SessionExecuteRequest

PORT = 3000
PAGE = "hello from the sdk preview\n"
_SIGNED = pytest.mark.skipif(
    not hasattr(Sandbox, "create_signed_preview_url"),
    reason="this SDK release has no create_signed_preview_url (added after 0.129.0)",
)


class Served(Protocol):
    api_key: str


def _serve_page(sandbox: Sandbox) -> None:
    """``python3 -m http.server 3000`` as an async session command; back once it answers."""
    sandbox.process.exec(f"mkdir -p site && printf '{PAGE.strip()}\\n' > site/index.html")
    sandbox.process.create_session("web")
    sandbox.process.execute_session_command(
        "web", SessionExecuteRequest(command=f"cd site && python3 -m http.server {PORT}", run_async=True)
    )
    probe = f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {PORT}), 1)\""
    deadline = time.monotonic() + 60
    while sandbox.process.exec(probe).exit_code != 0:
        assert time.monotonic() < deadline, f"nothing listens on {PORT}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def web(client: Daytona) -> Iterator[Sandbox]:
    sandbox = client.create()
    _serve_page(sandbox)
    yield sandbox
    client.delete(sandbox)


def test_get_preview_link_opens_with_httpx_and_the_token_header(web: Sandbox) -> None:
    link = web.get_preview_link(PORT)
    response = httpx.get(link.url, headers={"x-daytona-preview-token": link.token})
    assert response.status_code == 200
    assert response.text == PAGE
    assert httpx.get(link.url + "/index.html", headers={"X-Daytona-Preview-Token": link.token}).text == PAGE


def test_get_preview_link_opens_with_the_api_key_as_bearer(web: Sandbox, served: Served) -> None:
    link = web.get_preview_link(PORT)
    response = httpx.get(link.url, headers={"Authorization": f"Bearer {served.api_key}"})
    assert response.status_code == 200
    assert response.text == PAGE


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-daytona-preview-token": "wrong"}, {"Authorization": "Bearer wrong"}],
    ids=["none", "wrong-token", "wrong-key"],
)
def test_a_private_preview_without_a_valid_credential_is_401(web: Sandbox, headers: dict[str, str]) -> None:
    assert httpx.get(web.get_preview_link(PORT).url, headers=headers).status_code == 401


def test_every_label_of_a_preview_url_fits_in_dns(web: Sandbox) -> None:
    urls = [web.get_preview_link(PORT).url]
    if hasattr(web, "create_signed_preview_url"):
        signed = web.create_signed_preview_url(65535, expires_in_seconds=60)
        urls.append(signed.url)
        urls.append(f"http://65535-{signed.token}.localhost/")  # Daytona's host form of the same token
    for url in urls:
        host = httpx.URL(url).host
        assert all(0 < len(label) <= 63 for label in host.split(".")), url
        host.encode("idna")


@_SIGNED
def test_a_signed_preview_url_opens_with_plain_httpx(web: Sandbox) -> None:
    signed = web.create_signed_preview_url(PORT, expires_in_seconds=120)
    assert signed.port == PORT
    assert httpx.get(signed.url).text == PAGE


@_SIGNED
def test_a_signed_preview_url_opens_with_requests(web: Sandbox) -> None:
    requests = pytest.importorskip("requests", reason="requests is not installed (no SDK dependency)")
    signed = web.create_signed_preview_url(PORT, expires_in_seconds=120)
    response = requests.get(signed.url, timeout=30)
    assert response.status_code == 200
    assert response.text == PAGE


@_SIGNED
def test_a_signed_preview_url_opens_with_curl(web: Sandbox) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("no curl on this host")
    signed = web.create_signed_preview_url(PORT, expires_in_seconds=120)
    fetched = subprocess.run(
        [curl, "-sS", "--noproxy", "*", signed.url], capture_output=True, text=True, timeout=60
    )
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout == PAGE


@_SIGNED
def test_an_expired_signed_preview_url_is_401(web: Sandbox) -> None:
    signed = web.create_signed_preview_url(PORT, expires_in_seconds=1)
    time.sleep(2.2)
    assert httpx.get(signed.url).status_code == 401


@_SIGNED
def test_expire_signed_preview_url_revokes_it(web: Sandbox) -> None:
    signed = web.create_signed_preview_url(PORT, expires_in_seconds=300)
    assert httpx.get(signed.url).status_code == 200
    web.expire_signed_preview_url(PORT, signed.token)
    response = httpx.get(signed.url)
    assert response.status_code == 401
    assert response.json()["code"] == "TOKEN_REVOKED"


@_SIGNED
def test_a_signed_token_for_another_port_is_401(web: Sandbox) -> None:
    signed = web.create_signed_preview_url(PORT, expires_in_seconds=120)
    other = signed.url.replace(f"/{PORT}-", "/3001-")
    assert httpx.get(other).status_code == 401


def test_a_public_sandbox_opens_without_a_token(client: Daytona) -> None:
    sandbox = client.create(CreateSandboxFromSnapshotParams(public=True))
    try:
        _serve_page(sandbox)
        response = httpx.get(sandbox.get_preview_link(PORT).url)
        assert response.status_code == 200
        assert response.text == PAGE
    finally:
        client.delete(sandbox)


def test_a_sandbox_created_with_an_allow_list_reports_it(client: Daytona) -> None:
    sandbox = client.create(CreateSandboxFromSnapshotParams(network_allow_list="127.0.0.1/32"))
    try:
        assert sandbox.network_block_all is False
        assert sandbox.network_allow_list == "127.0.0.1/32"
        env = sandbox.process.exec("env").result
        assert "HTTPS_PROXY=http://127.0.0.1:3128" in env
    finally:
        client.delete(sandbox)


def test_a_default_sandbox_reports_no_egress(client: Daytona) -> None:
    sandbox = client.create()
    try:
        assert sandbox.network_block_all is True
        assert "proxy" not in sandbox.process.exec("env").result.lower()
    finally:
        client.delete(sandbox)
