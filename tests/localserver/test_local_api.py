"""The REST API: config, sandbox CRUD and lifecycle, as Daytona's spec shapes them."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from localserver_testkit import Api

from daytonaflow.localserver import LocalServer

pytestmark = pytest.mark.sandbox


def _wait_for_state(api: Api, sandbox_id: str, state: str, within: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        current: dict[str, Any] = api.api("GET", f"/sandbox/{sandbox_id}").json()
        if current["state"] == state or time.monotonic() > deadline:
            return current
        time.sleep(0.1)


def test_config_points_to_the_toolbox_and_preview_proxy(api: Api, server: LocalServer) -> None:
    config = api.api("GET", "/config").json()
    assert config["proxyToolboxUrl"] == server.toolbox_url
    assert (
        config["proxyTemplateUrl"] == f"http://{{{{PORT}}}}-{{{{sandboxId}}}}.localhost:{server.proxy_port}"
    )


def test_create_returns_a_started_sandbox_with_the_spec_fields(api: Api) -> None:
    sandbox = api.create(
        name="spec-fields", labels={"team": "a"}, env={"GREETING": "hi"}, autoStopInterval=0, public=True
    )
    try:
        assert sandbox["state"] == "started"
        assert sandbox["name"] == "spec-fields"
        assert sandbox["labels"] == {"team": "a"}
        assert sandbox["env"] == {"GREETING": "hi"}
        assert sandbox["public"] is True
        assert sandbox["autoStopInterval"] == 0
        for field in ("id", "organizationId", "target", "cpu", "gpu", "memory", "disk", "user", "createdAt"):
            assert field in sandbox
    finally:
        api.delete(sandbox["id"])


def test_sandbox_env_reaches_commands(api: Api) -> None:
    sandbox = api.create(env={"GREETING": "hello from env"})
    try:
        assert api.run(sandbox["id"], "echo $GREETING")["result"] == "hello from env\n"
    finally:
        api.delete(sandbox["id"])


def test_list_filters_by_json_encoded_labels(api: Api) -> None:
    first = api.create(labels={"flow": "x", "run": "1"})
    second = api.create(labels={"flow": "x", "run": "2"})
    try:
        listed = api.api("GET", "/sandbox", params={"labels": json.dumps({"flow": "x", "run": "2"})}).json()
        assert [s["id"] for s in listed["items"]] == [second["id"]]
        both = api.api("GET", "/sandbox", params={"labels": json.dumps({"flow": "x"})}).json()
        assert {s["id"] for s in both["items"]} == {first["id"], second["id"]}
        assert listed["nextCursor"] is None
    finally:
        api.delete(first["id"])
        api.delete(second["id"])


def test_labels_filter_that_is_not_json_is_a_400(api: Api) -> None:
    response = api.api("GET", "/sandbox", params={"labels": "{not json"})
    assert response.status_code == 400
    assert response.json()["statusCode"] == 400


def test_get_finds_a_sandbox_by_name(api: Api) -> None:
    sandbox = api.create(name="by-name")
    try:
        assert api.api("GET", "/sandbox/by-name").json()["id"] == sandbox["id"]
    finally:
        api.delete(sandbox["id"])


def test_a_second_sandbox_with_the_same_name_is_a_409(api: Api) -> None:
    sandbox = api.create(name="unique-name")
    try:
        response = api.api("POST", "/sandbox", json={"name": "unique-name"})
        assert response.status_code == 409
    finally:
        api.delete(sandbox["id"])


def test_unknown_sandbox_is_a_404_json_error(api: Api) -> None:
    response = api.api("GET", "/sandbox/does-not-exist")
    assert response.status_code == 404
    body = response.json()
    assert body["statusCode"] == 404
    assert "does-not-exist" in body["message"]
    assert body["error"] == "Not Found"


def test_delete_destroys_and_forgets_the_sandbox(api: Api, server: LocalServer) -> None:
    sandbox = api.create()
    home = server.state_dir / "sandboxes" / sandbox["id"]
    assert home.exists()
    deleted = api.delete(sandbox["id"])
    assert deleted.status_code == 200
    assert deleted.json()["state"] == "destroyed"
    assert api.api("GET", f"/sandbox/{sandbox['id']}").status_code == 404
    assert not home.exists()


def test_stop_then_start_keeps_home_files_and_ends_processes(api: Api) -> None:
    sandbox = api.create()
    try:
        api.run(sandbox["id"], "echo kept > keep.txt; (sleep 600 &)")
        stopped = api.api("POST", f"/sandbox/{sandbox['id']}/stop").json()
        assert stopped["state"] == "stopped"
        refused = api.toolbox("POST", sandbox["id"], "/process/execute", json={"command": "true"})
        assert refused.status_code == 409
        started = api.api("POST", f"/sandbox/{sandbox['id']}/start").json()
        assert started["state"] == "started"
        assert api.run(sandbox["id"], "cat keep.txt")["result"] == "kept\n"
        assert "sleep 600" not in api.run(sandbox["id"], "ps -eo args")["result"]
    finally:
        api.delete(sandbox["id"])


def test_auto_stop_interval_stops_an_idle_sandbox(api: Api) -> None:
    # The local server accepts fractional minutes: 0.01 min is 0.6 s.
    sandbox = api.create(autoStopInterval=0.01)
    try:
        assert _wait_for_state(api, sandbox["id"], "stopped")["state"] == "stopped"
    finally:
        api.delete(sandbox["id"])


def test_auto_stop_can_be_changed_and_disabled(api: Api) -> None:
    sandbox = api.create(autoStopInterval=0)
    try:
        updated = api.api("POST", f"/sandbox/{sandbox['id']}/autostop/30").json()
        assert updated["autoStopInterval"] == 30
    finally:
        api.delete(sandbox["id"])


def test_create_rejects_fields_of_the_wrong_type(api: Api) -> None:
    response = api.api("POST", "/sandbox", json={"labels": ["not", "an", "object"]})
    assert response.status_code == 400
    assert "labels" in response.json()["message"]


def test_a_body_nested_too_deeply_is_a_400(api: Api) -> None:
    response = api.http.post(f"{api.server.api_url}/sandbox", content="[" * 200_000 + "]" * 200_000)
    assert response.status_code == 400, response.text
    assert response.json()["message"] == "request body is not valid JSON: nested too deeply"


def test_a_labels_filter_nested_too_deeply_is_a_400(api: Api) -> None:
    # Deep enough for the decoder's recursion limit, short enough for a request line.
    labels = '{"k": ' + "[" * 1500 + "]" * 1500 + "}"
    response = api.api("GET", "/sandbox", params={"labels": labels})
    assert response.status_code == 400, response.text
    assert response.json()["message"] == "labels is not valid JSON: nested too deeply"


def test_a_labels_filter_with_a_value_that_is_not_a_string_is_a_400(api: Api) -> None:
    response = api.api("GET", '/sandbox?labels={"k": 1}')
    assert response.status_code == 400
    assert response.json()["message"].startswith("labels.k")


def test_isolation_report_lists_the_limits_in_force(api: Api, server: LocalServer) -> None:
    report = api.api("GET", "/local/isolation").json()
    assert set(report["limits"]) >= {"processes", "memory", "cpu", "disk", "openFiles", "network"}
    assert server.isolation is not None
    assert report["limits"] == dict(server.isolation.limits)
    assert "net" in report["namespaces"]


def test_requested_resources_override_the_defaults(api: Api) -> None:
    sandbox = api.create(cpu=2, memory=0.5, disk=1)
    try:
        assert (sandbox["cpu"], sandbox["memory"], sandbox["disk"]) == (2, 0.5, 1)
        blocks = api.run(sandbox["id"], "ulimit -f")["result"]
        assert int(blocks) * 512 == 1 << 30
    finally:
        api.delete(sandbox["id"])


# Returns once the trap is in place: a SIGTERM sent before would find no handler yet.
TERM_TRAP = (
    "nohup sh -c \"trap 'echo graceful > /home/daytona/bye; exit 0' TERM; touch /home/daytona/armed; "
    'while :; do sleep 0.05; done" >/dev/null 2>&1 & '
    "while [ ! -e /home/daytona/armed ]; do sleep 0.01; done"
)


def test_stop_lets_processes_handle_sigterm(api: Api) -> None:
    sandbox = api.create()
    try:
        api.run(sandbox["id"], TERM_TRAP)
        assert api.api("POST", f"/sandbox/{sandbox['id']}/stop").json()["state"] == "stopped"
        api.api("POST", f"/sandbox/{sandbox['id']}/start")
        assert api.run(sandbox["id"], "cat bye")["result"] == "graceful\n"
    finally:
        api.delete(sandbox["id"])


def test_forced_stop_kills_at_once(api: Api) -> None:
    sandbox = api.create()
    try:
        api.run(sandbox["id"], TERM_TRAP)
        stopped = api.api("POST", f"/sandbox/{sandbox['id']}/stop", params={"force": "true"}).json()
        assert stopped["state"] == "stopped"
        api.api("POST", f"/sandbox/{sandbox['id']}/start")
        assert api.run(sandbox["id"], "test -e bye; echo $?")["result"] == "1\n"
    finally:
        api.delete(sandbox["id"])


# ---- create bodies: every field checked at the door -----------------------------------------------

INVALID_CREATE_BODIES = {
    "cpu too small": ({"cpu": 1e-9}, "cpu"),
    "cpu too large": ({"cpu": 1e308}, "cpu"),
    "memory too large": ({"memory": 1e308}, "memory"),
    "memory too small": ({"memory": 1e-9}, "memory"),
    "disk too large": ({"disk": 1e308}, "disk"),
    "disk zero": ({"disk": 0}, "disk"),
    "cpu a string": ({"cpu": "2"}, "cpu"),
    "cpu a boolean": ({"cpu": True}, "cpu"),
    "env name with NUL": ({"env": {"A\u0000B": "x"}}, "env.A\\x00B"),
    "env name with =": ({"env": {"A=B": "x"}}, "env.A=B"),
    "env name empty": ({"env": {"": "x"}}, "env."),
    "env value with NUL": ({"env": {"A": "x\u0000y"}}, "env.A"),
    "env value not a string": ({"env": {"A": False}}, "env.A"),
    "env value too long": ({"env": {"A": "x" * (200 << 10)}}, "env.A"),
    "label value a list": ({"labels": {"k": [1, True, None]}}, "labels.k"),
    "label value a number": ({"labels": {"k": 1}}, "labels.k"),
    "label key too long": ({"labels": {"k" * 300: "v"}}, "labels.kkk"),
    "label value too long": ({"labels": {"k": "v" * (20 << 10)}}, "labels.k"),
    "too many labels": ({"labels": {f"k{i}": "v" for i in range(300)}}, "labels"),
    "name a number": ({"name": 7}, "name"),
    "name with a newline": ({"name": "a\nb"}, "name"),
    "name too long": ({"name": "n" * 300}, "name"),
    "public a string": ({"public": "yes"}, "public"),
    "autoStopInterval infinite": ({"autoStopInterval": 1e308}, "autoStopInterval"),
    "snapshot a number": ({"snapshot": 3}, "snapshot"),
}


@pytest.mark.parametrize(("body", "field"), INVALID_CREATE_BODIES.values(), ids=INVALID_CREATE_BODIES.keys())
def test_an_invalid_create_field_is_a_400_naming_it_and_creates_nothing(
    api: Api, body: dict[str, Any], field: str
) -> None:
    before = {s["id"] for s in api.api("GET", "/sandbox").json()["items"]}
    response = api.api("POST", "/sandbox", json=body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["statusCode"] == 400
    assert error["error"] == "Bad Request"
    assert error["message"].startswith(field), error["message"]
    assert {s["id"] for s in api.api("GET", "/sandbox").json()["items"]} == before


def test_a_nan_cpu_is_a_400(api: Api) -> None:
    response = api.api(
        "POST", "/sandbox", content=b'{"cpu": NaN}', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith("cpu")


def test_the_smallest_allowed_resources_give_a_working_sandbox(api: Api) -> None:
    sandbox = api.create(cpu=0.01, memory=0.25, disk=1 / 16)
    try:
        assert api.run(sandbox["id"], "echo ok")["result"] == "ok\n"
    finally:
        api.delete(sandbox["id"])


def test_string_labels_and_env_are_kept_as_given(api: Api) -> None:
    sandbox = api.create(labels={"k": "v"}, env={"GREETING": "hi there"})
    try:
        assert sandbox["labels"] == {"k": "v"}
        assert api.run(sandbox["id"], "echo $GREETING")["result"] == "hi there\n"
    finally:
        api.delete(sandbox["id"])


def test_replacing_labels_refuses_values_that_are_not_strings(api: Api, sandbox: dict[str, Any]) -> None:
    response = api.api("PUT", f"/sandbox/{sandbox['id']}/labels", json={"labels": {"k": [1, True, None]}})
    assert response.status_code == 400
    assert response.json()["message"].startswith("labels.k")
    assert api.api("GET", f"/sandbox/{sandbox['id']}").json()["labels"] == sandbox["labels"]


@pytest.mark.parametrize("interval", ["nan", "inf", "-1"])
def test_an_autostop_interval_that_is_not_a_finite_positive_number_is_a_400(
    api: Api, sandbox: dict[str, Any], interval: str
) -> None:
    response = api.api("POST", f"/sandbox/{sandbox['id']}/autostop/{interval}")
    assert response.status_code == 400
