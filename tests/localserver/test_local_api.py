"""The REST API: config, sandbox CRUD and lifecycle, as Daytona's spec shapes them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
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
    template = f"http://127.0.0.1:{server.proxy_port}/preview/{{{{PORT}}}}-{{{{sandboxId}}}}"
    assert config["proxyTemplateUrl"] == template


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
    sandbox = api.create(cpu=2, memory=2, disk=1)
    try:
        assert (sandbox["cpu"], sandbox["memory"], sandbox["disk"]) == (2, 2, 1)
        blocks = api.run(sandbox["id"], "ulimit -f")["result"]
        assert int(blocks) * 512 == 1 << 30
    finally:
        api.delete(sandbox["id"])


def test_defaults_below_a_whole_unit_are_reported_as_integers(api: Api, sandbox: dict[str, Any]) -> None:
    # The test server's 256 MiB and 64 MiB: Daytona's model has whole GiB, never 0.25.
    assert (sandbox["cpu"], sandbox["memory"], sandbox["disk"], sandbox["gpu"]) == (1, 1, 1, 0)
    assert all(type(sandbox[field]) is int for field in ("cpu", "memory", "disk", "gpu"))
    assert sandbox["kvm"] is False


def test_a_sandbox_leaves_out_fields_it_has_no_value_for(sandbox: dict[str, Any]) -> None:
    # Daytona's spec types errorReason and networkAllowList as strings, never null.
    assert None not in sandbox.values()
    assert "errorReason" not in sandbox and "networkAllowList" not in sandbox


def test_create_keeps_the_network_and_interval_settings(api: Api) -> None:
    sandbox = api.create(
        networkBlockAll=False,
        networkAllowList="10.0.0.0/8,192.168.1.0/24",
        autoArchiveInterval=60,
        autoDeleteInterval=5,
    )
    try:
        assert sandbox["networkBlockAll"] is False
        assert sandbox["networkAllowList"] == "10.0.0.0/8,192.168.1.0/24"
        assert (sandbox["autoArchiveInterval"], sandbox["autoDeleteInterval"]) == (60, 5)
        again = api.api("GET", f"/sandbox/{sandbox['id']}").json()
        assert (again["networkBlockAll"], again["autoDeleteInterval"]) == (False, 5)
    finally:
        api.delete(sandbox["id"])


def test_a_sandbox_blocks_the_network_unless_told_otherwise(sandbox: dict[str, Any]) -> None:
    assert sandbox["networkBlockAll"] is True


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
    "cpu fractional": ({"cpu": 1.5}, "cpu"),
    "memory fractional": ({"memory": 0.5}, "memory"),
    "disk fractional": ({"disk": 2.25}, "disk"),
    "cpu zero": ({"cpu": 0}, "cpu"),
    "gpu fractional": ({"gpu": 0.5}, "gpu"),
    "autoArchiveInterval fractional": ({"autoArchiveInterval": 1.5}, "autoArchiveInterval"),
    "autoDeleteInterval a string": ({"autoDeleteInterval": "5"}, "autoDeleteInterval"),
    "networkBlockAll a string": ({"networkBlockAll": "true"}, "networkBlockAll"),
    "networkAllowList not CIDRs": ({"networkAllowList": "10.0.0.0/8,example.com"}, "networkAllowList"),
    "networkAllowList a list": ({"networkAllowList": ["10.0.0.0/8"]}, "networkAllowList"),
    "kvm asked for": ({"kvm": True}, "kvm"),
    "volumes not a list": ({"volumes": {"volumeId": "v", "mountPath": "/data"}}, "volumes"),
    "volume without a mountPath": ({"volumes": [{"volumeId": "v"}]}, "volumes[0].mountPath"),
    "volume not an object": ({"volumes": ["v"]}, "volumes[0]"),
    "volume subpath a number": (
        {"volumes": [{"volumeId": "v", "mountPath": "/d", "subpath": 1}]},
        "volumes[0].subpath",
    ),
    "buildInfo not an object": ({"buildInfo": "FROM x"}, "buildInfo"),
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


def test_archiving_is_refused_with_a_400_saying_to_stop_instead(api: Api, sandbox: dict[str, Any]) -> None:
    response = api.api("POST", f"/sandbox/{sandbox['id']}/archive")
    assert response.status_code == 400
    assert response.json()["message"] == (
        f"Sandbox {sandbox['id']} cannot be archived: this server cannot archive a sandbox (it has no "
        "archive storage); stop it instead, which keeps its files"
    )
    assert api.api("GET", f"/sandbox/{sandbox['id']}").json()["state"] == "started"
    kept = api.api("POST", f"/sandbox/{sandbox['id']}/autoarchive/60")  # still accepted and reported
    assert kept.json()["autoArchiveInterval"] == 60


def test_a_nan_cpu_is_a_400(api: Api) -> None:
    response = api.api(
        "POST", "/sandbox", content=b'{"cpu": NaN}', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith("cpu")


def test_a_whole_number_written_with_a_fraction_is_that_integer(api: Api) -> None:
    sandbox = api.create(cpu=2.0)
    try:
        assert sandbox["cpu"] == 2 and type(sandbox["cpu"]) is int
    finally:
        api.delete(sandbox["id"])


def test_the_smallest_allowed_resources_give_a_working_sandbox(api: Api) -> None:
    sandbox = api.create(cpu=1, memory=1, disk=1)
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


@pytest.mark.parametrize("path", ["autoarchive/1.5", "autoarchive/-1", "autoarchive/x", "autodelete/1e3"])
def test_an_archive_or_delete_interval_that_is_not_a_whole_number_in_range_is_a_400(
    api: Api, sandbox: dict[str, Any], path: str
) -> None:
    response = api.api("POST", f"/sandbox/{sandbox['id']}/{path}")
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith("interval must be an integer")


def test_the_archive_and_delete_intervals_can_be_changed(api: Api, sandbox: dict[str, Any]) -> None:
    assert api.api("POST", f"/sandbox/{sandbox['id']}/autoarchive/30").json()["autoArchiveInterval"] == 30
    assert api.api("POST", f"/sandbox/{sandbox['id']}/autodelete/-1").json()["autoDeleteInterval"] == -1
    assert api.api("GET", f"/sandbox/{sandbox['id']}").json()["autoArchiveInterval"] == 30


def test_a_stopped_sandbox_is_deleted_once_its_auto_delete_interval_passed(api: Api) -> None:
    sandbox = api.create(autoDeleteInterval=0)
    api.api("POST", f"/sandbox/{sandbox['id']}/stop")
    deadline = time.monotonic() + 30
    while api.api("GET", f"/sandbox/{sandbox['id']}").status_code != 404 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert api.api("GET", f"/sandbox/{sandbox['id']}").status_code == 404


def test_a_running_sandbox_is_not_auto_deleted(api: Api) -> None:
    sandbox = api.create(autoDeleteInterval=0)
    try:
        time.sleep(1.0)  # several monitor rounds (0.2 s each)
        assert api.api("GET", f"/sandbox/{sandbox['id']}").json()["state"] == "started"
    finally:
        api.delete(sandbox["id"])


def test_last_activity_is_a_201_that_moves_it(api: Api, sandbox: dict[str, Any]) -> None:
    time.sleep(0.01)
    response = api.api("POST", f"/sandbox/{sandbox['id']}/last-activity")
    assert response.status_code == 201
    assert api.api("GET", f"/sandbox/{sandbox['id']}").json()["lastActivityAt"] > sandbox["lastActivityAt"]


# ---- lists: filters and pages ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def three(api: Api) -> Iterator[list[dict[str, Any]]]:
    """Three sandboxes of one flow label, oldest first; the second one stopped."""
    made = [api.create(name=f"listed-{i}", labels={"flow": "three"}) for i in range(3)]
    api.api("POST", f"/sandbox/{made[1]['id']}/stop")
    yield made
    for sandbox in made:
        api.delete(sandbox["id"])


def _ids(api: Api, path: str = "/sandbox", **params: Any) -> list[str]:
    response = api.api("GET", path, params={"labels": json.dumps({"flow": "three"}), **params})
    assert response.status_code == 200, response.text
    return [s["id"] for s in response.json()["items"]]


def test_a_list_is_newest_first_unless_told(api: Api, three: list[dict[str, Any]]) -> None:
    ids = [s["id"] for s in three]
    assert _ids(api) == ids[::-1]
    assert _ids(api, sort="name", order="asc") == ids


def test_a_list_filters_by_id_prefix_whatever_its_case(api: Api, three: list[dict[str, Any]]) -> None:
    assert _ids(api, id=three[0]["id"][:13].upper()) == [three[0]["id"]]


def test_a_list_filters_by_name_prefix_and_state(api: Api, three: list[dict[str, Any]]) -> None:
    assert _ids(api, name="LISTED-2") == [three[2]["id"]]
    assert _ids(api, states="stopped") == [three[1]["id"]]
    assert set(_ids(api, states=["stopped", "started"])) == {s["id"] for s in three}


def test_a_list_follows_its_cursor_through_every_page(api: Api, three: list[dict[str, Any]]) -> None:
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"labels": json.dumps({"flow": "three"}), "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.api("GET", "/sandbox", params=params).json()
        assert len(page["items"]) <= 2
        seen += [s["id"] for s in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == [s["id"] for s in three][::-1]


def test_the_page_numbered_list_counts_its_pages(api: Api, three: list[dict[str, Any]]) -> None:
    labels = json.dumps({"flow": "three"})
    second = api.api("GET", "/sandbox/paginated", params={"labels": labels, "page": 2, "limit": 2}).json()
    assert (second["total"], second["page"], second["totalPages"]) == (3, 2, 2)
    assert [s["id"] for s in second["items"]] == [three[0]["id"]]


def test_the_page_numbered_list_reads_a_null_labels_filter_as_none(
    api: Api, three: list[dict[str, Any]]
) -> None:
    # What the 0.129 SDK sends when its caller filters by no labels.
    listed = api.api("GET", "/sandbox/paginated", params={"labels": "null"}).json()
    assert {s["id"] for s in three} <= {s["id"] for s in listed["items"]}


INVALID_LIST_QUERIES = {
    "limit zero": {"limit": "0"},
    "limit too large": {"limit": "201"},
    "limit fractional": {"limit": "1.5"},
    "cursor not one": {"cursor": "abc"},
    "unknown state": {"states": "sleeping"},
    "unknown sort": {"sort": "colour"},
    "order sideways": {"order": "sideways"},
    "isPublic not a boolean": {"isPublic": "yes"},
    "minCpu not a number": {"minCpu": "many"},
    "createdAtAfter not a date": {"createdAtAfter": "yesterday"},
}


@pytest.mark.parametrize("params", INVALID_LIST_QUERIES.values(), ids=INVALID_LIST_QUERIES.keys())
def test_an_invalid_list_parameter_is_a_400_naming_it(api: Api, params: dict[str, str]) -> None:
    response = api.api("GET", "/sandbox", params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["statusCode"], body["error"]) == (400, "Bad Request")
    assert body["message"].startswith(next(iter(params))), body["message"]


def test_a_list_filters_by_public_and_resources(api: Api, three: list[dict[str, Any]]) -> None:
    assert _ids(api, isPublic="true") == []
    assert len(_ids(api, isPublic="false", minCpu="1", maxMemoryGiB="1")) == 3
    assert _ids(api, minCpu="2") == []


def test_an_unknown_sandbox_is_a_404_in_daytonas_error_shape(api: Api) -> None:
    response = api.api("GET", "/sandbox/no-such-sandbox")
    assert response.status_code == 404
    assert response.json() == {
        "statusCode": 404,
        "message": "Sandbox with ID or name no-such-sandbox not found",
        "error": "Not Found",
        "code": "SANDBOX_NOT_FOUND",
    }


@pytest.mark.parametrize("body", [{}, {"labels": None}], ids=["absent", "null"])
def test_replacing_labels_without_labels_is_a_400_that_keeps_them(api: Api, body: dict[str, Any]) -> None:
    sandbox = api.create(labels={"keep": "me"})
    try:
        response = api.api("PUT", f"/sandbox/{sandbox['id']}/labels", json=body)
        assert response.status_code == 400
        assert response.json()["message"] == "labels is required: an object of strings"
        assert api.api("GET", f"/sandbox/{sandbox['id']}").json()["labels"] == {"keep": "me"}
    finally:
        api.delete(sandbox["id"])


def test_an_operation_the_server_lacks_is_a_404_naming_it(api: Api, sandbox: dict[str, Any]) -> None:
    response = api.api("POST", f"/sandbox/{sandbox['id']}/resize")
    assert response.status_code == 404
    assert response.json()["message"] == f"Cannot POST /api/sandbox/{sandbox['id']}/resize"


NOT_DECIMAL_NUMBERS = {"superscript two": "\u00b2", "arabic-indic three": "\u0663", "5000 digits": "9" * 5000}


@pytest.mark.parametrize("raw", NOT_DECIMAL_NUMBERS.values(), ids=NOT_DECIMAL_NUMBERS.keys())
def test_a_number_in_a_path_or_query_that_int_cannot_read_is_a_400(
    api: Api, sandbox: dict[str, Any], raw: str
) -> None:
    # str.isdigit() holds for all of these, and int() refuses them: a 500 unless checked first.
    sandbox_path = f"/sandbox/{sandbox['id']}"
    for method, path, params in (
        ("GET", "/sandbox", {"limit": raw}),
        ("GET", "/sandbox", {"cursor": raw}),
        ("GET", "/sandbox/paginated", {"page": raw}),
        ("POST", f"{sandbox_path}/autoarchive/{raw}", {}),
        ("POST", f"{sandbox_path}/autodelete/-{raw}", {}),
        ("GET", f"{sandbox_path}/ports/{raw}/preview-url", {}),
        ("GET", f"{sandbox_path}/ports/3000/signed-preview-url", {"expiresInSeconds": raw}),
    ):
        response = api.api(method, path, params=params)
        assert response.status_code == 400, (path, params, response.text)
        assert response.json()["error"] == "Bad Request"
