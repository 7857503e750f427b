"""The token and CSRF guards of ``daytonaflow ui``, probed with plain HTTP against the real process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ui_support import UI_HEADER, UiServer, running_ui_server

#: A canvas the validator accepts: the CSRF probes must fail on the guard, not on the body.
CANVAS = {
    "apiVersion": "v1",
    "kind": "Canvas",
    "metadata": {"name": "probe"},
    "spec": {"nodes": [{"id": "start", "name": "Manual Run", "type": "TYPE_TRIGGER", "component": "start"}]},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    # One process for the module: these probes change nothing on the server.
    with running_ui_server(tmp_path_factory.mktemp("ui-auth")) as instance:
        yield instance


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _assert_json_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert "Traceback" not in response.text


def test_api_without_token_is_401(server: UiServer) -> None:
    response = httpx.get(f"{server.base_url}/api/palette", timeout=30)
    _assert_json_error(response, 401)


def _cookie_name(server: UiServer) -> str:
    # The contract's `daytonaflow_ui`, per port: cookies are per host, so two UIs must not share one.
    return f"daytonaflow_ui_{httpx.URL(server.base_url).port}"


def test_api_with_a_wrong_bearer_token_is_401(server: UiServer) -> None:
    headers = {"Authorization": "Bearer not-the-token"}
    response = httpx.get(f"{server.base_url}/api/palette", headers=headers, timeout=30)
    _assert_json_error(response, 401)


def test_api_with_a_wrong_cookie_is_401(server: UiServer) -> None:
    with httpx.Client(base_url=server.base_url, cookies={_cookie_name(server): "not-the-token"}) as client:
        response = client.get("/api/palette")
    _assert_json_error(response, 401)


def test_page_without_token_is_401_and_says_where_the_url_is(server: UiServer) -> None:
    response = httpx.get(f"{server.base_url}/", timeout=30)
    assert response.status_code == 401
    assert "daytonaflow ui" in response.text


def test_token_url_sets_a_strict_httponly_cookie_that_opens_the_api(server: UiServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        response = client.get(f"/?token={server.token}")
        assert response.status_code == 303
        assert response.headers["location"].endswith("/")
        assert "token=" not in response.headers["location"]
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{_cookie_name(server)}=")
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        # httpx keeps the cookie: the API now answers without any header.
        palette = client.get("/api/palette")
    assert palette.status_code == 200
    names = {component["name"] for component in palette.json()["components"]}
    assert "daytona.executeCode" in names


def test_post_without_the_ui_header_is_403(server: UiServer) -> None:
    response = httpx.post(
        f"{server.base_url}/api/validate", json={"canvas": CANVAS}, headers=_bearer(server.token), timeout=30
    )
    _assert_json_error(response, 403)


def test_post_with_a_foreign_origin_is_403(server: UiServer) -> None:
    headers = {**_bearer(server.token), **UI_HEADER, "Origin": "https://evil.example"}
    response = httpx.post(
        f"{server.base_url}/api/validate", json={"canvas": CANVAS}, headers=headers, timeout=30
    )
    _assert_json_error(response, 403)


def test_foreign_host_header_is_403(server: UiServer) -> None:
    # DNS rebinding: a page of evil.example resolved to 127.0.0.1 sends its own name as Host.
    headers = {**_bearer(server.token), "Host": "evil.example"}
    response = httpx.get(f"{server.base_url}/api/palette", headers=headers, timeout=30)
    assert response.status_code == 403, (response.status_code, response.text[:500])


def test_post_with_the_ui_header_and_own_origin_is_accepted(server: UiServer) -> None:
    # The control for the 403s above: the same request, guard satisfied, goes through.
    headers = {**_bearer(server.token), **UI_HEADER, "Origin": server.base_url}
    response = httpx.post(
        f"{server.base_url}/api/validate", json={"canvas": CANVAS}, headers=headers, timeout=30
    )
    assert response.status_code == 200, response.text[:500]
    assert response.json()["issues"] == []


def test_run_database_is_the_one_given(server: UiServer) -> None:
    with server.client() as api:
        session = api.get("/api/session").json()
    assert Path(session["db"]) == server.db
    assert session["backend"] == "local"
