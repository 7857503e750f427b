"""The files and lifecycle components end to end: real HTTP to an embedded LocalServer, real
bubblewrap sandboxes.

Each component is driven as an engine would (``run_to_end``); what the sandbox really holds is
checked through the server's own API (``sha256sum``, ``stat`` run in the sandbox), never through
the component under test. The server and its fixtures are those of ``local_support``.
"""

from __future__ import annotations

import base64
import hashlib
import uuid

import pytest
from local_support import Server, integration, run_to_end, sandbox, server

from daytonaflow.components import (
    ArchiveSandbox,
    DownloadFile,
    ExecuteCommand,
    GetSandbox,
    ListFiles,
    ListSandboxes,
    StartSandbox,
    StopSandbox,
    UploadFile,
)
from daytonaflow.errors import ComponentError, ConfigError

pytestmark = pytest.mark.sandbox

__all__ = ["integration", "sandbox", "server"]  # fixtures, from local_support

BINARY = bytes(range(256)) * 64 + b"\x00\xff" * 100
MIB = 1024 * 1024


def in_sandbox(server: Server, sandbox_id: str, command: str) -> str:
    answer = server.run(sandbox_id, command)
    assert answer["exitCode"] == 0, answer
    return str(answer["result"]).strip()


def sha256sum(server: Server, sandbox_id: str, path: str) -> str:
    return in_sandbox(server, sandbox_id, f"sha256sum {path}").split()[0]


def create_named(server: Server, name: str, labels: dict[str, str]) -> str:
    response = server.http.post(f"{server.instance.api_url}/sandbox", json={"name": name, "labels": labels})
    assert response.status_code == 200, response.text
    sandbox_id: str = response.json()["id"]
    return sandbox_id


# --- uploadFile and downloadFile ---------------------------------------------------------------


async def test_a_text_file_round_trips_and_its_sha256_is_what_sha256sum_says(server, sandbox, make_ctx):
    text = "héllo from uploadFile\nsecond line\n"
    upload = make_ctx({"sandbox": sandbox, "path": "notes/deep/hello.txt", "content": text})
    await run_to_end(UploadFile(), upload)
    path = "/home/daytona/notes/deep/hello.txt"
    assert upload.channel == "default"
    assert upload.data == {
        "sandboxId": sandbox,
        "path": path,
        "size": len(text.encode()),
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
    }
    assert sha256sum(server, sandbox, path) == upload.data["sha256"]

    download = make_ctx({"sandbox": sandbox, "path": "notes/deep/hello.txt"}, execution_id="exec-2")
    await run_to_end(DownloadFile(), download)
    assert download.data == {**upload.data, "encoding": "text", "content": text}


async def test_a_binary_file_round_trips_through_base64_with_its_mode(server, sandbox, make_ctx):
    encoded = base64.b64encode(BINARY).decode()
    config = {
        "sandbox": sandbox,
        "path": "/tmp/blob.bin",
        "content": encoded,
        "encoding": "base64",
        "mode": "0600",
    }
    upload = make_ctx(config)
    await run_to_end(UploadFile(), upload)
    assert upload.data["size"] == len(BINARY)
    assert upload.data["mode"] == "0600"
    assert sha256sum(server, sandbox, "/tmp/blob.bin") == hashlib.sha256(BINARY).hexdigest()
    assert in_sandbox(server, sandbox, "stat -c %a /tmp/blob.bin") == "600"

    download = make_ctx({"sandbox": sandbox, "path": "/tmp/blob.bin"}, execution_id="exec-2")
    await run_to_end(DownloadFile(), download)
    assert download.data["encoding"] == "base64"
    assert base64.b64decode(download.data["content"]) == BINARY
    assert download.data["sha256"] == upload.data["sha256"]


async def test_content_that_is_not_base64_is_refused_and_nothing_is_written(server, sandbox, make_ctx):
    config = {"sandbox": sandbox, "path": "/tmp/never.bin", "content": "%%% not base64", "encoding": "base64"}
    ctx = make_ctx(config)
    with pytest.raises(ConfigError, match=r'node "node": content is not valid base64'):
        await run_to_end(UploadFile(), ctx)
    assert in_sandbox(server, sandbox, "test -e /tmp/never.bin && echo present || echo absent") == "absent"


async def test_a_file_over_max_bytes_is_refused_with_its_path_size_and_the_limit(server, sandbox, make_ctx):
    in_sandbox(server, sandbox, "head -c 2097152 /dev/zero > /tmp/big.bin")
    ctx = make_ctx({"sandbox": sandbox, "path": "/tmp/big.bin", "maxBytes": MIB})
    with pytest.raises(ComponentError) as failure:
        await run_to_end(DownloadFile(), ctx)
    assert str(failure.value) == (
        f'node "node-1": /tmp/big.bin is 2097152 bytes, over the maxBytes limit of {MIB} bytes'
        " (nothing is emitted)"
    )
    assert not ctx.emitted


async def test_a_missing_file_fails_with_the_servers_message(sandbox, make_ctx):
    with pytest.raises(ComponentError, match="/tmp/nothing-here not found"):
        await run_to_end(DownloadFile(), make_ctx({"sandbox": sandbox, "path": "/tmp/nothing-here"}))


# --- listFiles ------------------------------------------------------------------------------------


async def test_list_files_lists_a_directory_and_cuts_it_at_max_entries(server, sandbox, make_ctx):
    in_sandbox(
        server, sandbox, "mkdir -p ~/out/sub && printf abc > ~/out/a.txt && printf 12345 > ~/out/b.txt"
    )
    ctx = make_ctx({"sandbox": sandbox, "path": "out"})
    await run_to_end(ListFiles(), ctx)
    assert ctx.data["path"] == "/home/daytona/out"
    assert ctx.data["truncated"] is False
    by_name = {entry["name"]: entry for entry in ctx.data["files"]}
    assert set(by_name) == {"a.txt", "b.txt", "sub"}
    assert by_name["b.txt"]["size"] == 5
    assert by_name["b.txt"]["path"] == "/home/daytona/out/b.txt"
    assert by_name["b.txt"]["isDir"] is False
    assert by_name["sub"]["isDir"] is True
    assert by_name["a.txt"]["mode"] == "0" + in_sandbox(server, sandbox, "stat -c %a ~/out/a.txt")
    assert by_name["a.txt"]["modifiedAt"].endswith("Z")

    cut = make_ctx({"sandbox": sandbox, "path": "out", "maxEntries": 2}, execution_id="exec-2")
    await run_to_end(ListFiles(), cut)
    assert len(cut.data["files"]) == 2
    assert cut.data["truncated"] is True


async def test_list_files_lists_the_home_by_default(server, sandbox, make_ctx):
    in_sandbox(server, sandbox, "touch ~/marker-for-listing")
    ctx = make_ctx({"sandbox": sandbox})
    await run_to_end(ListFiles(), ctx)
    assert ctx.data["path"] == "/home/daytona"
    assert "marker-for-listing" in {entry["name"] for entry in ctx.data["files"]}


# --- lifecycle --------------------------------------------------------------------------------------


async def test_stop_then_start_keeps_the_files_and_a_command_runs_again(server, sandbox, make_ctx):
    in_sandbox(server, sandbox, "echo kept across the stop > ~/kept.txt")
    stop = make_ctx({"sandbox": sandbox})
    await run_to_end(StopSandbox(), stop)
    assert stop.data == {"id": sandbox, "state": "stopped"}
    assert server.sandbox(sandbox).json()["state"] == "stopped"

    start = make_ctx({"sandbox": sandbox}, execution_id="exec-2")
    await run_to_end(StartSandbox(), start)
    assert start.data == {"id": sandbox, "state": "started"}
    assert server.sandbox(sandbox).json()["state"] == "started"

    command = make_ctx({"sandbox": sandbox, "command": "cat ~/kept.txt"}, execution_id="exec-3")
    await run_to_end(ExecuteCommand(), command)
    assert command.channel == "success"
    assert command.data["result"].strip() == "kept across the stop"


async def test_stopping_a_stopped_sandbox_and_starting_a_started_one_report_it_as_it_is(
    server, sandbox, make_ctx
):
    start = make_ctx({"sandbox": sandbox})
    await run_to_end(StartSandbox(), start)
    assert start.data == {"id": sandbox, "state": "started"}
    server.http.post(f"{server.instance.api_url}/sandbox/{sandbox}/stop")
    stop = make_ctx({"sandbox": sandbox, "force": True}, execution_id="exec-2")
    await run_to_end(StopSandbox(), stop)
    assert stop.data == {"id": sandbox, "state": "stopped"}


async def test_get_and_list_find_a_sandbox_by_name_and_by_labels(server, make_ctx):
    tag = uuid.uuid4().hex[:12]
    name = f"h2-e2e-{tag}"
    sandbox_id = create_named(server, name, {"suite": tag, "role": "worker"})
    other = create_named(server, f"h2-e2e-other-{tag}", {"suite": tag, "role": "other"})
    try:
        get = make_ctx({"sandbox": name})
        await run_to_end(GetSandbox(), get)
        assert get.data == {"id": sandbox_id, "state": "started"}

        listed = make_ctx(
            {"labels": [{"key": "suite", "value": tag}, {"key": "role", "value": "worker"}]},
            execution_id="exec-2",
        )
        await run_to_end(ListSandboxes(), listed)
        assert listed.data == {"sandboxes": [{"id": sandbox_id, "state": "started"}], "count": 1}

        both = make_ctx({"labels": [{"key": "suite", "value": tag}]}, execution_id="exec-3")
        await run_to_end(ListSandboxes(), both)
        assert {entry["id"] for entry in both.data["sandboxes"]} == {sandbox_id, other}

        stopped = make_ctx(
            {"labels": [{"key": "suite", "value": tag}], "states": [{"state": "stopped"}]},
            execution_id="exec-4",
        )
        await run_to_end(ListSandboxes(), stopped)
        assert stopped.data == {"sandboxes": [], "count": 0}
    finally:
        server.delete(sandbox_id)
        server.delete(other)


async def test_get_sandbox_of_a_missing_sandbox_fails_naming_it(make_ctx):
    ctx = make_ctx({"sandbox": "no-such-sandbox"})
    with pytest.raises(ComponentError, match=r'^node "node-1": sandbox "no-such-sandbox" was not found'):
        await run_to_end(GetSandbox(), ctx)


async def test_archive_on_the_local_server_fails_the_node_with_a_clear_error(server, sandbox, make_ctx):
    server.http.post(f"{server.instance.api_url}/sandbox/{sandbox}/stop")
    ctx = make_ctx({"sandbox": sandbox})
    with pytest.raises(ComponentError) as failure:
        await run_to_end(ArchiveSandbox(), ctx)
    assert str(failure.value).startswith(f'node "node-1": cannot archive sandbox {sandbox}: ')
    assert "archive" in str(failure.value).removeprefix(f'node "node-1": cannot archive sandbox {sandbox}: ')
    assert not ctx.emitted
    # The sandbox is untouched: still there, still stopped.
    assert server.sandbox(sandbox).json()["state"] == "stopped"
