"""The UI's JSON API, driven over ASGI with the real registry, store, engine and file code.

Runs here use only the built-in start trigger and the HTTP component against a loopback server,
so no sandbox is needed; the browser tests run the Daytona components on the embedded backend.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import stat
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from daytonaflow.runner import ComponentRegistry, Engine, RunStore, RunUpdate, load_canvas, validate_canvas
from daytonaflow.runner.progress import NODE_OUTPUT
from daytonaflow.ui import UIServices, create_app
from daytonaflow.ui import _runs as ui_runs
from daytonaflow.ui._runs import MAX_QUEUED_OUTPUT, RunHub

TOKEN = "test-token-0123456789"
PORT = 8765
BASE_PATH = "/s/test-base"
BASE = f"http://127.0.0.1:{PORT}{BASE_PATH}"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WRITE = {"X-Daytonaflow-UI": "1"}


class _Sandboxes:
    """The CLI hands the real backend's directory; these API tests never reach it."""

    async def list(self) -> list[dict[str, Any]]:
        raise AssertionError("the sandboxes page is covered by the browser tests")

    async def delete(self, sandbox_id: str) -> None:
        raise AssertionError("the sandboxes page is covered by the browser tests")


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/slow"):
            time.sleep(3)
        body = b"hello from loopback\n"
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def loopback_site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    with RunStore(tmp_path / "runs.db") as run_store:
        yield run_store


@pytest.fixture
async def engine(store: RunStore) -> AsyncIterator[Engine]:
    engine = Engine(store, registry=ComponentRegistry.discover())
    yield engine
    await engine.aclose()


@pytest.fixture
async def client(store: RunStore, engine: Engine, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async def prepare_run(canvas: Any) -> None:
        return None

    services = UIServices(
        store=store,
        engine=engine,
        prepare_run=prepare_run,
        sandboxes=_Sandboxes(),
        backend="local",
        canvases=[tmp_path / "mine.yaml"],
        examples=sorted(EXAMPLES.glob("*.yaml")),
        version="test",
    )
    app = create_app(services, token=TOKEN, host="127.0.0.1", port=PORT, base_path=BASE_PATH)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers) as http_client:
        yield http_client


def http_canvas(url: str, name: str = "ping") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Canvas",
        "metadata": {"name": name},
        "spec": {
            "nodes": [
                {"id": "start", "name": "Manual Run", "type": "TYPE_TRIGGER", "component": "start"},
                {
                    "id": "ping",
                    "name": "Ping",
                    "type": "TYPE_ACTION",
                    "component": "http",
                    "configuration": {"url": url},
                },
            ],
            "edges": [{"sourceId": "start", "targetId": "ping", "channel": "default"}],
        },
    }


async def finished(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    for _ in range(200):
        body = (await client.get(f"/api/runs/{run_id}")).json()
        if body["run"]["status"] not in ("running", "cancelling"):
            return dict(body)
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish")


# --- access -------------------------------------------------------------------------------------------


async def test_an_api_request_without_the_token_gets_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/palette", headers={"Authorization": ""})
    assert response.status_code == 401
    assert "token" in response.json()["error"]


async def test_a_wrong_token_gets_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/palette", headers={"Authorization": "Bearer not-the-token"})
    assert response.status_code == 401


async def test_the_token_url_sets_a_strict_http_only_cookie_and_drops_the_token_from_the_address(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"/?token={TOKEN}", headers={"Authorization": ""})
    assert response.status_code == 303
    assert response.headers["location"] == f"{BASE_PATH}/"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    name, value = cookie.split(";", 1)[0].split("=", 1)
    with_cookie = await client.get("/api/session", headers={"Authorization": "", "Cookie": f"{name}={value}"})
    assert with_cookie.status_code == 200


async def test_the_cookie_is_scoped_to_the_base_path_so_other_local_servers_never_get_it(
    client: httpx.AsyncClient,
) -> None:
    # Cookies are per host, not per port: with Path=/ every server on 127.0.0.1 would receive it.
    response = await client.get(f"/?token={TOKEN}", headers={"Authorization": ""})
    assert f"Path={BASE_PATH}/" in response.headers["set-cookie"].split("; ")


async def test_nothing_is_served_outside_the_base_path_even_to_the_token(client: httpx.AsyncClient) -> None:
    outside = await client.get(f"http://127.0.0.1:{PORT}/api/palette")
    assert outside.status_code == 401
    assert "printed" in outside.text


async def test_the_base_path_without_its_slash_is_sent_to_it(client: httpx.AsyncClient) -> None:
    response = await client.get(f"http://127.0.0.1:{PORT}{BASE_PATH}")
    assert response.status_code == 303
    assert response.headers["location"] == f"{BASE_PATH}/"


async def test_a_change_without_the_ui_header_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/validate", json={"canvas": {}})
    assert response.status_code == 403
    assert "x-daytonaflow-ui" in response.json()["error"]


async def test_a_change_from_a_foreign_origin_is_refused(client: httpx.AsyncClient) -> None:
    headers = {**WRITE, "Origin": "http://attacker.localhost:8000"}
    response = await client.post("/api/validate", json={"canvas": {}}, headers=headers)
    assert response.status_code == 403


async def test_a_foreign_host_name_is_refused_against_dns_rebinding(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/palette", headers={"Host": f"rebound.example:{PORT}"})
    assert response.status_code == 403


async def test_the_page_itself_needs_the_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/", headers={"Authorization": ""})).status_code == 401


async def test_responses_carry_a_content_security_policy(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/session")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert "base-uri 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_the_guards_own_refusals_carry_the_security_headers(client: httpx.AsyncClient) -> None:
    refused = await client.get("/api/session", headers={"Authorization": ""})
    assert refused.status_code == 401
    assert "default-src 'self'" in refused.headers["content-security-policy"]
    assert refused.headers["referrer-policy"] == "no-referrer"


# --- palette and validation ------------------------------------------------------------------------------


async def test_the_palette_carries_every_registered_components_own_manifest(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/api/palette")).json()
    registry = ComponentRegistry.discover()
    assert [c["name"] for c in body["components"]] == sorted(
        name for name in registry if not registry[name].trigger
    )
    for manifest in body["components"] + body["triggers"][1:]:
        assert manifest == json.loads(json.dumps(registry[manifest["name"]].manifest()))
    assert [t["name"] for t in body["triggers"]] == ["start", "schedule", "webhook"]
    assert [w["name"] for w in body["widgets"]] == ["annotation"]
    assert {"name": "root", "signature": "root()"} in body["functions"]


async def test_the_triggers_a_running_up_keeps_armed_are_listed(
    client: httpx.AsyncClient, store: RunStore
) -> None:
    from daytonaflow.runner.ownership import current_owner

    assert (await client.get("/api/triggers?canvas=hooked")).json() == {"triggers": []}
    # This test's own process stands for a running `daytonaflow up`.
    store.set_schedule_state("hooked", "nightly", "{}", 0.0, 1798779600.0)
    url = "http://127.0.0.1:8787/webhooks/hooked/push"
    store.set_armed_triggers(
        current_owner(), "hooked", [("push", "webhook", url), ("nightly", "schedule", None)]
    )
    assert (await client.get("/api/triggers?canvas=hooked")).json() == {
        "triggers": [
            {"nodeId": "push", "component": "webhook", "url": url},
            {"nodeId": "nightly", "component": "schedule", "nextFire": "2027-01-01T05:00:00Z"},
        ]
    }
    # Once that process is gone, nothing is armed any more.
    import socket

    store.set_armed_triggers(f"{socket.gethostname()}:999999999:0", "hooked", [("push", "webhook", url)])
    assert (await client.get("/api/triggers?canvas=hooked")).json() == {"triggers": []}


async def test_validation_returns_the_lines_daytonaflow_validate_prints(client: httpx.AsyncClient) -> None:
    document = load_canvas(EXAMPLES / "hello.yaml").to_document()
    del document["spec"]["nodes"][2]["configuration"]["code"]
    response = await client.post("/api/validate", json={"canvas": document}, headers=WRITE)
    issues = response.json()["issues"]
    from daytonaflow.runner import parse_canvas

    expected = validate_canvas(parse_canvas(document), ComponentRegistry.discover())
    assert [issue["text"] for issue in issues] == [str(issue) for issue in expected]
    assert issues[0]["node"] == "say-hello"
    assert issues[0]["field"] == "configuration.code"
    assert issues[0]["message"] == "is required"


async def test_a_body_that_is_not_json_gets_a_clear_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/validate", content=b"{not json", headers=WRITE)
    assert response.status_code == 400
    assert "the request body" in response.json()["error"]


async def test_a_document_that_is_no_canvas_gets_its_issues(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/validate", json={"canvas": {"kind": "Canvas"}}, headers=WRITE)
    assert response.status_code == 400
    fields = {issue["field"] for issue in response.json()["issues"]}
    # apiVersion may be left out, as SuperPlane's older exports do.
    assert {"metadata", "spec"} <= fields


async def test_annotations_validate_and_never_take_an_edge(client: httpx.AsyncClient) -> None:
    document = http_canvas("http://127.0.0.1:9/")
    document["spec"]["nodes"].append(
        {"id": "note", "type": "TYPE_WIDGET", "component": "annotation", "configuration": {"text": "hi"}}
    )
    ok = (await client.post("/api/validate", json={"canvas": document}, headers=WRITE)).json()
    assert ok["issues"] == []
    document["spec"]["edges"].append({"sourceId": "ping", "targetId": "note", "channel": "success"})
    bad = (await client.post("/api/validate", json={"canvas": document}, headers=WRITE)).json()
    assert [issue["message"] for issue in bad["issues"]] == ["is an annotation: nothing can flow into it"]


# --- files -----------------------------------------------------------------------------------------------


async def test_the_open_dialog_lists_the_command_line_canvases_then_the_examples(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    files = (await client.get("/api/canvases")).json()["files"]
    assert files[0] == {"path": str(tmp_path / "mine.yaml"), "name": "mine", "example": False}
    assert {f["name"] for f in files if f["example"]} == {"hello", "preview", "repository", "webhook-report"}


@pytest.mark.parametrize("example", ["hello", "preview", "repository", "webhook-report"])
async def test_saving_an_opened_example_unchanged_leaves_the_file_as_it_is(
    client: httpx.AsyncClient, tmp_path: Path, example: str
) -> None:
    path = tmp_path / f"{example}.yaml"
    path.write_bytes((EXAMPLES / f"{example}.yaml").read_bytes())
    opened = (await client.get("/api/canvas", params={"path": str(path)})).json()
    saved = await client.put(
        "/api/canvas", json={"path": str(path), "canvas": opened["canvas"]}, headers=WRITE
    )
    assert saved.json()["written"] is False
    assert path.read_bytes() == (EXAMPLES / f"{example}.yaml").read_bytes()


async def test_a_changed_canvas_is_written_keeping_the_files_leading_comments(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    path = tmp_path / "hello.yaml"
    path.write_bytes((EXAMPLES / "hello.yaml").read_bytes())
    document = (await client.get("/api/canvas", params={"path": str(path)})).json()["canvas"]
    document["spec"]["nodes"][1]["position"] = {"x": 320, "y": 40}
    document["spec"]["nodes"][2]["name"] = "Greet"
    saved = await client.put("/api/canvas", json={"path": str(path), "canvas": document}, headers=WRITE)
    assert saved.json()["written"] is True
    text = path.read_text()
    assert text.startswith("# Hello, sandbox:")
    reloaded = load_canvas(path)
    assert reloaded.node("say-hello").name == "Greet"
    assert reloaded.node("create-sandbox").position is not None
    assert reloaded.node("create-sandbox").position.x == 320
    # Scripts stay block scalars, as people write them.
    assert "code: |" in text


async def test_saving_refuses_to_overwrite_a_file_that_holds_no_canvas(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("important: true\n")
    document = http_canvas("http://127.0.0.1:9/")
    response = await client.put("/api/canvas", json={"path": str(path), "canvas": document}, headers=WRITE)
    assert response.status_code == 400
    assert "holds no canvas" in response.json()["error"]
    assert path.read_text() == "important: true\n"


async def test_saving_writes_only_canvas_file_names(client: httpx.AsyncClient, tmp_path: Path) -> None:
    path = tmp_path / ".bashrc"
    document = http_canvas("http://127.0.0.1:9/")
    response = await client.put("/api/canvas", json={"path": str(path), "canvas": document}, headers=WRITE)
    assert response.status_code == 400
    assert not path.exists()


async def test_import_then_export_round_trips_a_canvas(client: httpx.AsyncClient) -> None:
    text = (EXAMPLES / "preview.yaml").read_text()
    imported = (await client.post("/api/canvas/import", json={"text": text}, headers=WRITE)).json()["canvas"]
    exported = await client.post(
        "/api/canvas/export", json={"canvas": imported, "format": "json"}, headers=WRITE
    )
    again = json.loads(exported.json()["text"])
    assert again == imported
    assert yaml.safe_load(text)["spec"]["edges"] == again["spec"]["edges"]


async def test_opening_a_missing_file_names_it(client: httpx.AsyncClient, tmp_path: Path) -> None:
    response = await client.get("/api/canvas", params={"path": str(tmp_path / "gone.yaml")})
    assert response.status_code == 400
    assert "gone.yaml: no such file" in response.json()["error"]


# --- runs ------------------------------------------------------------------------------------------------


async def test_a_run_started_from_the_ui_streams_snapshots_then_its_end(
    client: httpx.AsyncClient, loopback_site: str
) -> None:
    started = await client.post("/api/runs", json={"canvas": http_canvas(loopback_site)}, headers=WRITE)
    assert started.status_code == 201
    run_id = started.json()["run"]["id"]
    stream = await client.get(f"/api/runs/{run_id}/stream")
    messages = _sse_messages(stream.text)
    assert messages[0][0] == "snapshot"
    assert messages[-1][0] == "end"
    assert messages[-1][1]["run"]["status"] == "succeeded"
    last = [data for kind, data in messages if kind == "snapshot"][-1]
    ping = next(e for e in last["executions"] if e["node"] == "ping")
    assert ping["status"] == "emitted" and ping["channel"] == "success"
    assert "metadata" not in ping
    event = (await client.get(f"/api/runs/{run_id}/events/{ping['outputEventId']}")).json()
    assert event["event"]["data"]["body"] == "hello from loopback\n"


async def test_an_invalid_canvas_is_refused_with_its_issues(client: httpx.AsyncClient) -> None:
    document = http_canvas("")
    response = await client.post("/api/runs", json={"canvas": document}, headers=WRITE)
    assert response.status_code == 422
    assert any(issue["field"] == "configuration.url" for issue in response.json()["issues"])
    assert (await client.get("/api/runs")).json()["runs"] == []


async def test_a_run_input_that_is_not_an_object_is_refused(
    client: httpx.AsyncClient, loopback_site: str
) -> None:
    body = {"canvas": http_canvas(loopback_site), "input": [1, 2]}
    response = await client.post("/api/runs", json=body, headers=WRITE)
    assert response.status_code == 400
    assert "JSON object" in response.json()["error"]


async def test_cancel_ends_a_running_run_as_cancelled(client: httpx.AsyncClient, loopback_site: str) -> None:
    started = await client.post(
        "/api/runs", json={"canvas": http_canvas(f"{loopback_site}/slow")}, headers=WRITE
    )
    run_id = started.json()["run"]["id"]
    cancelled = await client.post(f"/api/runs/{run_id}/cancel", headers=WRITE)
    assert cancelled.json()["run"]["status"] == "cancelled"
    body = (await client.get(f"/api/runs/{run_id}")).json()
    assert {e["node"]: e["status"] for e in body["executions"]}["ping"] == "cancelled"


async def test_a_run_of_another_process_is_listed_and_not_cancelled_from_here(
    client: httpx.AsyncClient, store: RunStore, loopback_site: str
) -> None:
    from daytonaflow.runner import parse_canvas

    with RunStore(store.path) as other_store:
        other = Engine(other_store, registry=ComponentRegistry.discover())
        run_id = await other.start(parse_canvas(http_canvas(f"{loopback_site}/slow", name="elsewhere")))
        try:
            listed = (await client.get("/api/runs")).json()["runs"]
            assert [r["id"] for r in listed] == [run_id]
            refused = await client.post(f"/api/runs/{run_id}/cancel", headers=WRITE)
            assert refused.status_code == 409
            await other.wait(run_id)
        finally:
            await other.aclose()
    assert (await finished(client, run_id))["run"]["status"] == "succeeded"


async def test_an_unknown_run_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/runs/ffffffffffff")
    assert response.status_code == 404


# --- expressions -----------------------------------------------------------------------------------------


async def test_an_expression_previews_against_the_last_run_of_the_canvas(
    client: httpx.AsyncClient, loopback_site: str
) -> None:
    document = http_canvas(loopback_site)
    run_id = (await client.post("/api/runs", json={"canvas": document}, headers=WRITE)).json()["run"]["id"]
    await finished(client, run_id)
    document["spec"]["nodes"].append(
        {"id": "after", "type": "TYPE_ACTION", "component": "http", "configuration": {"url": "x"}}
    )
    document["spec"]["edges"].append({"sourceId": "ping", "targetId": "after", "channel": "success"})
    body = {
        "canvas": document,
        "node": "after",
        "field": "configuration.url",
        "text": '{{ $["Ping"].data.status }}',
    }
    preview = (await client.post("/api/expression", json=body, headers=WRITE)).json()
    assert preview == {"ok": True, "value": 200, "run": run_id}


async def test_an_expression_syntax_error_says_where(client: httpx.AsyncClient, loopback_site: str) -> None:
    document = http_canvas(loopback_site)
    run_id = (await client.post("/api/runs", json={"canvas": document}, headers=WRITE)).json()["run"]["id"]
    await finished(client, run_id)
    body = {"canvas": document, "node": "ping", "field": "configuration.url", "text": "{{ 1 + }}"}
    preview = (await client.post("/api/expression", json=body, headers=WRITE)).json()
    assert preview["ok"] is False
    assert preview["offset"] == 7
    assert preview["error"].endswith("{{ 1 + }}\n         ^")


async def test_an_expression_of_a_canvas_never_run_says_so(client: httpx.AsyncClient) -> None:
    body = {"canvas": http_canvas("x"), "node": "ping", "field": "configuration.url", "text": "{{ root() }}"}
    preview = (await client.post("/api/expression", json=body, headers=WRITE)).json()
    assert preview["ok"] is False
    assert preview["noRun"] is True
    assert "no run" in preview["error"]


async def test_a_syntax_error_is_shown_before_any_run(client: httpx.AsyncClient) -> None:
    body = {"canvas": http_canvas("x"), "node": "ping", "field": "configuration.url", "text": "{{ $[ }}"}
    preview = (await client.post("/api/expression", json=body, headers=WRITE)).json()
    assert preview["ok"] is False
    assert "noRun" not in preview
    assert preview["offset"] == 6


def _sse_messages(text: str) -> list[tuple[str, dict[str, Any]]]:
    messages = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if "event" in lines:
            messages.append((lines["event"], json.loads(lines["data"])))
    return messages


# --- hardening -------------------------------------------------------------------------------------------


async def test_an_odd_cookie_of_another_app_on_the_host_does_not_lock_the_user_out(
    client: httpx.AsyncClient,
) -> None:
    login = await client.get(f"/?token={TOKEN}", headers={"Authorization": ""})
    ours = login.headers["set-cookie"].split(";", 1)[0]
    for other in ("other=a b", 'other={"a":1}', 'other="x', "a=b\\c"):
        response = await client.get(
            "/api/session", headers={"Authorization": "", "Cookie": f"{other}; {ours}"}
        )
        assert response.status_code == 200, other


async def test_opening_a_fifo_is_refused_at_once_instead_of_blocking(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    response = await asyncio.wait_for(client.get("/api/canvas", params={"path": str(fifo)}), 5)
    assert response.status_code == 400
    assert "not a regular file" in response.json()["error"]


@pytest.mark.parametrize("path", ["/tmp/a\x00.yaml", "~no-such-user-here/x.yaml", "/proc/x.yaml"])
async def test_an_impossible_path_gets_a_clear_400_not_a_500(client: httpx.AsyncClient, path: str) -> None:
    document = http_canvas("http://127.0.0.1:9/")
    saved = await client.put("/api/canvas", json={"path": path, "canvas": document}, headers=WRITE)
    opened = await client.get("/api/canvas", params={"path": path})
    assert (saved.status_code, opened.status_code) == (400, 400)
    assert saved.json()["error"] and opened.json()["error"]


async def test_saving_through_a_symlink_writes_its_target_and_keeps_the_link(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    target = tmp_path / "real.yaml"
    target.write_bytes((EXAMPLES / "hello.yaml").read_bytes())
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    document = (await client.get("/api/canvas", params={"path": str(link)})).json()["canvas"]
    document["metadata"]["description"] = "changed"
    saved = await client.put("/api/canvas", json={"path": str(link), "canvas": document}, headers=WRITE)
    assert saved.json()["written"] is True
    assert link.is_symlink()
    assert load_canvas(target).metadata.description == "changed"


async def test_a_read_only_canvas_is_not_replaced(client: httpx.AsyncClient, tmp_path: Path) -> None:
    path = tmp_path / "locked.yaml"
    path.write_bytes((EXAMPLES / "hello.yaml").read_bytes())
    path.chmod(0o444)
    document = (await client.get("/api/canvas", params={"path": str(path)})).json()["canvas"]
    document["metadata"]["description"] = "changed"
    saved = await client.put("/api/canvas", json={"path": str(path), "canvas": document}, headers=WRITE)
    assert saved.status_code == 400
    assert "read-only" in saved.json()["error"]
    assert path.read_bytes() == (EXAMPLES / "hello.yaml").read_bytes()


async def test_a_new_canvas_file_gets_the_usual_mode(client: httpx.AsyncClient, tmp_path: Path) -> None:
    path = tmp_path / "new.yaml"
    previous = os.umask(0o022)
    try:
        saved = await client.put(
            "/api/canvas", json={"path": str(path), "canvas": http_canvas("x")}, headers=WRITE
        )
    finally:
        os.umask(previous)
    assert saved.json()["written"] is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


async def test_a_body_over_the_limit_is_refused_without_reading_it_all(client: httpx.AsyncClient) -> None:
    big = b'{"canvas": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    response = await client.post("/api/validate", content=big, headers=WRITE)
    assert response.status_code == 400
    assert "larger than 8 MiB" in response.json()["error"]


def unfinished_run(store: RunStore, run_id: str) -> None:
    store.insert_run(run_id, http_canvas("x"), {}, keep_resources=False, owner="elsewhere")


def output(run_id: str, execution: str, text: str) -> RunUpdate:
    return RunUpdate(NODE_OUTPUT, run_id, "ping", node_id="ping", execution_id=execution, text=text)


async def test_a_browser_that_reads_too_slowly_is_sent_the_stream_anew(
    store: RunStore, engine: Engine
) -> None:
    unfinished_run(store, "slowreader01")
    hub = RunHub(store, engine)
    stream = hub.stream("slowreader01")
    first = [await anext(stream), await anext(stream)]
    assert first[0].startswith("retry:") and first[1].startswith("event: snapshot")
    for index in range(MAX_QUEUED_OUTPUT + 10):
        hub.observe(output("slowreader01", "e1", f"line {index}\n"))

    async def drain() -> list[str]:
        return [message async for message in stream]

    # Without the bound the stream would wait on, queueing forever.
    rest = await asyncio.wait_for(drain(), 10)
    assert len([m for m in rest if m.startswith("event: output")]) == MAX_QUEUED_OUTPUT
    # Reconnected, the browser gets the whole kept tail in one replay.
    again = hub.stream("slowreader01")
    messages = [await anext(again), await anext(again)]
    replay = json.loads(messages[1].split("data: ", 1)[1])
    assert replay["replay"] is True
    assert replay["text"].endswith(f"line {MAX_QUEUED_OUTPUT + 9}\n")
    await again.aclose()


async def test_kept_output_stays_within_its_total_budget(
    store: RunStore, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ui_runs, "MAX_KEPT_OUTPUT_TOTAL", 10_000)
    hub = RunHub(store, engine)
    for run in range(5):
        unfinished_run(store, f"budget{run:06d}")
        for execution in range(4):
            hub.observe(output(f"budget{run:06d}", f"e{execution}", "x" * 1_000))
    kept = {}
    for run in range(5):
        stream = hub.stream(f"budget{run:06d}")
        await anext(stream)
        message = await anext(stream)
        kept[run] = message.startswith("event: output")
        await stream.aclose()
    assert kept == {0: False, 1: False, 2: True, 3: True, 4: True}
