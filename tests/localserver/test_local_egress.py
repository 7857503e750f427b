"""Network policy: egress through the server's filtering proxy, only for sandboxes that ask for it.

A tiny package index on the host's loopback serves a wheel built here; a sandbox allow-listing
127.0.0.1/32 installs it with pip, every other sandbox cannot reach it. The default sandbox's
lack of any network (only ``lo``, no route, the host's loopback and the server's ports
unreachable) is proven in test_local_security.py; the tests here prove the ways out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from localserver_testkit import Api
from package_index import PACKAGE, Index, pip_install_command, served_index

from daytonaflow.localserver import LocalServer
from daytonaflow.localserver.egress import EGRESS_PORT

pytestmark = pytest.mark.sandbox

SECRET = "s3cr3t-token-never-logged"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    with served_index(tmp_path_factory.mktemp("index")) as served:
        yield served


def _pip_install(api: Api, sandbox_id: str, index: Index) -> dict[str, Any]:
    return api.run(sandbox_id, pip_install_command(index.port), timeout=180)


@pytest.fixture
def make(api: Api) -> Iterator[Any]:
    made: list[str] = []

    def create(**body: Any) -> dict[str, Any]:
        sandbox = api.create(**body)
        made.append(sandbox["id"])
        return sandbox

    yield create
    for sandbox_id in made:
        api.delete(sandbox_id)


def test_an_allow_listed_loopback_index_installs_a_package_with_pip(
    api: Api, make: Any, index: Index
) -> None:
    sandbox = make(networkAllowList="127.0.0.1/32")
    result = _pip_install(api, sandbox["id"], index)
    assert result["exitCode"] == 0, result["result"]
    assert "installed through the egress proxy" in result["result"]


def test_the_sandbox_reports_its_network_policy(api: Api, make: Any) -> None:
    listed = make(networkAllowList="127.0.0.1/32,10.0.0.0/8")
    assert listed["networkBlockAll"] is False
    assert listed["networkAllowList"] == "127.0.0.1/32,10.0.0.0/8"
    fetched = api.api("GET", f"/sandbox/{listed['id']}").json()
    assert (fetched["networkBlockAll"], fetched["networkAllowList"]) == (False, "127.0.0.1/32,10.0.0.0/8")
    default = make()
    assert default["networkBlockAll"] is True
    assert "networkAllowList" not in default


def test_egress_sandboxes_get_the_proxy_variables_and_default_ones_none(api: Api, make: Any) -> None:
    allowed = make(networkBlockAll=False)
    env = api.run(allowed["id"], "env")["result"]
    assert f"HTTPS_PROXY=http://127.0.0.1:{EGRESS_PORT}" in env
    assert f"http_proxy=http://127.0.0.1:{EGRESS_PORT}" in env
    assert "NO_PROXY=localhost,127.0.0.1" in env
    default = make()
    assert "proxy" not in api.run(default["id"], "env")["result"].lower()
    probe = f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {EGRESS_PORT}), 2)\""
    assert "Connection refused" in api.run(default["id"], probe)["result"]


def test_the_default_sandbox_cannot_pip_install_from_the_host_index(
    api: Api, make: Any, index: Index
) -> None:
    before = len(index.requests)
    sandbox = make()
    result = _pip_install(api, sandbox["id"], index)
    assert result["exitCode"] != 0
    assert len(index.requests) == before


def test_network_block_all_wins_over_an_allow_list(api: Api, make: Any, index: Index) -> None:
    before = len(index.requests)
    sandbox = make(networkBlockAll=True, networkAllowList="127.0.0.1/32")
    assert sandbox["networkBlockAll"] is True
    result = _pip_install(api, sandbox["id"], index)
    assert result["exitCode"] != 0
    assert len(index.requests) == before


def test_an_allow_list_not_covering_the_destination_is_refused_and_nothing_secret_logged(
    api: Api, make: Any, index: Index, caplog: pytest.LogCaptureFixture
) -> None:
    before = len(index.requests)
    sandbox = make(networkAllowList="10.0.0.0/8")
    target = f"127.0.0.1:{index.port}"
    with caplog.at_level(logging.INFO, logger="daytonaflow.localserver.egress"):
        result = api.run(
            sandbox["id"],
            # A tunnel (CONNECT), then a plain request carrying a secret in its query and a header.
            f"curl -s -o /dev/null -p -w '%{{http_connect}} ' http://{target}/; "
            f"curl -s -o /dev/null -w '%{{http_code}}' -H 'Authorization: Bearer {SECRET}' "
            f"'http://{target}/simple/?token={SECRET}'",
            envs={"NO_PROXY": "", "no_proxy": ""},
        )
    assert result["result"].split() == ["403", "403"]
    assert len(index.requests) == before
    refusals = [r.getMessage() for r in caplog.records if r.name == "daytonaflow.localserver.egress"]
    assert len(refusals) == 2 and all("networkAllowList" in message for message in refusals)
    assert not any(SECRET in r.getMessage() for r in caplog.records)


def test_public_only_egress_refuses_the_host_loopback(api: Api, make: Any, index: Index) -> None:
    sandbox = make(networkBlockAll=False)
    result = api.run(
        sandbox["id"],
        f"curl -s -w ' %{{http_code}}' http://127.0.0.1:{index.port}/simple/",
        envs={"NO_PROXY": "", "no_proxy": ""},
    )
    assert result["result"].endswith(" 403"), result["result"]
    assert "not a public address" in result["result"]


def test_the_servers_own_ports_are_refused_even_with_loopback_allow_listed(
    api: Api, server: LocalServer, make: Any
) -> None:
    sandbox = make(networkAllowList="127.0.0.0/8")
    for port in (server.port, server.proxy_port):
        result = api.run(
            sandbox["id"],
            f"curl -s -w ' %{{http_code}}' http://127.0.0.1:{port}/api/config; "
            f"curl -s -o /dev/null -p -w ' %{{http_connect}}' http://localhost:{port}/",
            envs={"NO_PROXY": "", "no_proxy": ""},
        )
        assert result["result"].endswith(" 403 403"), result["result"]
        assert "a port of the daytonaflow server itself" in result["result"]


def test_egress_ends_with_a_stop_and_comes_back_with_the_start(
    api: Api, server: LocalServer, make: Any, index: Index
) -> None:
    sandbox = make(networkAllowList="127.0.0.1/32")
    assert server.state is not None
    manager = server.state.manager
    net_dir = manager._net_dir(sandbox["id"])
    assert (net_dir / "egress.sock").exists()
    assert api.api("POST", f"/sandbox/{sandbox['id']}/stop").status_code == 200
    assert not net_dir.exists()
    assert api.api("POST", f"/sandbox/{sandbox['id']}/start").status_code == 200
    fetch = f"curl -s -w ' %{{http_code}}' http://127.0.0.1:{index.port}/simple/{PACKAGE}/"
    result = api.run(sandbox["id"], fetch, envs={"NO_PROXY": "", "no_proxy": ""})
    assert result["result"].endswith(" 200"), result["result"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("networkAllowList", "not-a-cidr"),
        ("networkAllowList", ""),
        ("networkAllowList", 5),
        ("networkBlockAll", "no"),
    ],
)
def test_a_bad_network_field_is_a_400_naming_it(api: Api, field: str, value: object) -> None:
    response = api.api("POST", "/sandbox", json={field: value})
    assert response.status_code == 400
    assert field in response.json()["message"]


def test_an_allow_list_of_everything_still_refuses_the_host_loopback(
    api: Api, make: Any, index: Index
) -> None:
    """Loopback opens only to a list naming it: 0.0.0.0/0 means "the internet", not the host."""
    sandbox = make(networkAllowList="0.0.0.0/0")
    result = api.run(
        sandbox["id"],
        f"curl -s -w ' %{{http_code}}' http://127.0.0.1:{index.port}/simple/",
        envs={"NO_PROXY": "", "no_proxy": ""},
    )
    assert result["result"].endswith(" 403"), result["result"]
