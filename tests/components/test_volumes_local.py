"""Volumes and snapshots end to end: the components on a real LocalServer, with real sandboxes.

createVolume, deleteVolume and listSnapshots against the server's Daytona-shaped /volumes and
/snapshots, and two sandboxes made by createSandbox sharing one volume: what one writes, the other
reads. What the server holds is checked through its own API, never through the component under test.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from local_support import Server, integration, run_to_end, server

from daytonaflow.components import (
    CreateSandbox,
    CreateVolume,
    DeleteVolume,
    ExecuteCommand,
    ListSnapshots,
)
from daytonaflow.errors import ComponentError, ConfigError

pytestmark = pytest.mark.sandbox
__all__ = ["integration", "server"]  # fixtures, from local_support

SHARED = "/home/daytona/shared"
#: States in which a volume is deleted or on its way out.
GONE = ("pending_delete", "deleting", "deleted")


@pytest.fixture
def volume_name(server: Server) -> Iterator[str]:
    """A fresh volume name; whatever volume has it at the end is deleted."""
    name = f"vol-{uuid.uuid4().hex[:12]}"
    yield name
    found = server.volume_by_name(name)
    if found.status_code == 200:
        server.delete_volume(found.json()["id"])


async def create_volume(make_ctx: Any, name: str) -> dict[str, Any]:
    ctx = make_ctx({"name": name})
    await run_to_end(CreateVolume(), ctx)
    assert ctx.channel == "default"
    data: dict[str, Any] = ctx.data
    return data


async def sandbox_mounting(make_ctx: Any, mount: dict[str, str]) -> str:
    # An execution of its own: one execution's creates are one sandbox (its idempotency key).
    ctx = make_ctx({"volumes": [mount]}, execution_id=f"exec-{uuid.uuid4().hex[:8]}")
    await run_to_end(CreateSandbox(), ctx)
    sandbox_id: str = ctx.data["id"]
    return sandbox_id


async def command(make_ctx: Any, sandbox_id: str, line: str) -> dict[str, Any]:
    ctx = make_ctx({"sandbox": sandbox_id, "command": line})
    await run_to_end(ExecuteCommand(), ctx)
    assert ctx.channel == "success", ctx.data
    data: dict[str, Any] = ctx.data
    return data


# --- createVolume -------------------------------------------------------------------------------


async def test_create_volume_makes_a_ready_volume_the_server_holds(server, make_ctx, volume_name):
    data = await create_volume(make_ctx, volume_name)
    assert set(data) == {"id", "name", "state"}
    assert (data["name"], data["state"]) == (volume_name, "ready")
    on_server = server.volume_by_name(volume_name)
    assert on_server.status_code == 200
    assert on_server.json()["id"] == data["id"]


async def test_create_volume_again_reuses_the_volume_and_says_so(server, make_ctx, volume_name):
    first = await create_volume(make_ctx, volume_name)
    second = await create_volume(make_ctx, volume_name)
    assert second == {**first, "existing": True}
    listed = server.http.get(f"{server.api}/volumes").json()
    assert [volume["id"] for volume in listed if volume["name"] == volume_name] == [first["id"]]


# --- deleteVolume -------------------------------------------------------------------------------


async def test_delete_volume_by_name_deletes_it_and_a_second_delete_reports_it_gone(
    server, make_ctx, volume_name
):
    volume = await create_volume(make_ctx, volume_name)
    ctx = make_ctx({"volume": volume_name})
    await run_to_end(DeleteVolume(), ctx)
    assert ctx.data == {"deleted": True, "id": volume["id"]}
    after = server.volume(volume["id"])
    assert after.status_code == 404 or after.json()["state"] in GONE
    again = make_ctx({"volume": volume_name})
    await run_to_end(DeleteVolume(), again)
    assert again.data["deleted"] is False
    assert again.data["alreadyDeleted"] is True


async def test_delete_volume_of_a_mounted_volume_fails_naming_it(server, make_ctx, volume_name):
    volume = await create_volume(make_ctx, volume_name)
    sandbox_id = await sandbox_mounting(make_ctx, {"volume": volume_name, "mountPath": SHARED})
    try:
        with pytest.raises(ComponentError) as failure:
            await run_to_end(DeleteVolume(), make_ctx({"volume": volume["id"]}))
        assert f'volume "{volume_name}" ({volume["id"]}) is in use' in str(failure.value)
        assert server.volume(volume["id"]).json()["state"] == "ready"
    finally:
        server.delete(sandbox_id, force=True)


# --- createSandbox with volumes -------------------------------------------------------------------


async def test_two_sandboxes_share_a_volume_one_writes_and_the_other_reads(server, make_ctx, volume_name):
    volume = await create_volume(make_ctx, volume_name)
    writer = await sandbox_mounting(make_ctx, {"volume": volume_name, "mountPath": SHARED})
    reader = await sandbox_mounting(make_ctx, {"volume": volume["id"], "mountPath": "/home/daytona/data"})
    try:
        await command(make_ctx, writer, f"echo 'written by {writer}' > {SHARED}/note.txt")
        read = await command(make_ctx, reader, "cat /home/daytona/data/note.txt")
        assert read["result"] == f"written by {writer}\n"
        # Read-write for both: the reader's answer reaches the writer.
        await command(make_ctx, reader, "echo 'answered' >> /home/daytona/data/note.txt")
        reread = await command(make_ctx, writer, f"cat {SHARED}/note.txt")
        assert reread["result"] == f"written by {writer}\nanswered\n"
    finally:
        server.delete(writer, force=True)
        server.delete(reader, force=True)


async def test_a_subpath_mounts_only_that_directory_of_the_volume(server, make_ctx, volume_name):
    await create_volume(make_ctx, volume_name)
    whole = await sandbox_mounting(make_ctx, {"volume": volume_name, "mountPath": SHARED})
    try:
        await command(
            make_ctx, whole, f"mkdir -p {SHARED}/users/alice && echo alice > {SHARED}/users/alice/me"
        )
        await command(make_ctx, whole, f"echo root > {SHARED}/top")
        part = await sandbox_mounting(
            make_ctx, {"volume": volume_name, "mountPath": "/home/daytona/mine", "subpath": "users/alice"}
        )
        try:
            listing = await command(make_ctx, part, "ls /home/daytona/mine; cat /home/daytona/mine/me")
            assert listing["result"] == "me\nalice\n"
        finally:
            server.delete(part, force=True)
    finally:
        server.delete(whole, force=True)


async def test_what_a_deleted_sandbox_wrote_stays_in_the_volume(server, make_ctx, volume_name):
    await create_volume(make_ctx, volume_name)
    first = await sandbox_mounting(make_ctx, {"volume": volume_name, "mountPath": SHARED})
    await command(make_ctx, first, f"echo kept > {SHARED}/cache")
    server.delete(first, force=True)
    second = await sandbox_mounting(make_ctx, {"volume": volume_name, "mountPath": SHARED})
    try:
        assert (await command(make_ctx, second, f"cat {SHARED}/cache"))["result"] == "kept\n"
    finally:
        server.delete(second, force=True)


async def test_a_create_naming_a_missing_volume_fails_before_any_sandbox_exists(server, make_ctx):
    before = server.http.get(f"{server.api}/sandbox").json()["items"]
    ctx = make_ctx({"volumes": [{"volume": "no-such-volume", "mountPath": SHARED}]}, node_name="prepare")
    with pytest.raises(ConfigError, match=r'node "prepare": volumes\.0\.volume names no volume'):
        await run_to_end(CreateSandbox(), ctx)
    assert server.http.get(f"{server.api}/sandbox").json()["items"] == before


# --- listSnapshots --------------------------------------------------------------------------------


@pytest.fixture
def snapshot_name(server: Server) -> Iterator[str]:
    """A snapshot taken from a sandbox through the server's API, active; deleted afterwards."""
    sandbox_id = server.http.post(f"{server.api}/sandbox", json={}).json()["id"]
    name = f"snap-{uuid.uuid4().hex[:12]}"
    try:
        taken = server.http.post(f"{server.api}/sandbox/{sandbox_id}/snapshot", json={"name": name})
        assert taken.status_code in (200, 201), taken.text
        deadline = time.monotonic() + 120
        while (state := server.http.get(f"{server.api}/snapshots/{name}").json().get("state")) != "active":
            assert state not in ("error", "build_failed") and time.monotonic() < deadline, state
            time.sleep(0.2)
    finally:
        server.delete(sandbox_id, force=True)
    yield name
    found = server.http.get(f"{server.api}/snapshots/{name}")
    if found.status_code == 200:
        server.http.delete(f"{server.api}/snapshots/{found.json()['id']}")


async def test_list_snapshots_finds_a_snapshot_taken_from_a_sandbox(server, make_ctx, snapshot_name):
    ctx = make_ctx({"name": snapshot_name})
    await run_to_end(ListSnapshots(), ctx)
    assert ctx.channel == "default"
    assert ctx.data["count"] == 1
    [snapshot] = ctx.data["snapshots"]
    assert (snapshot["name"], snapshot["state"]) == (snapshot_name, "active")
    assert "createdAt" in snapshot
    by_id = server.http.get(f"{server.api}/snapshots/{snapshot['id']}")
    assert by_id.status_code == 200
    assert by_id.json()["name"] == snapshot_name


async def test_a_sandbox_created_from_the_listed_snapshot_starts(server, make_ctx, snapshot_name):
    listed = make_ctx({"name": snapshot_name})
    await run_to_end(ListSnapshots(), listed)
    created = make_ctx({"snapshot": listed.data["snapshots"][0]["name"]})
    await run_to_end(CreateSandbox(), created)
    try:
        assert created.data["state"] == "started"
    finally:
        server.delete(created.data["id"], force=True)


async def test_list_snapshots_with_a_name_nothing_has_is_empty(server, make_ctx):
    ctx = make_ctx({"name": f"none-{uuid.uuid4().hex}"})
    await run_to_end(ListSnapshots(), ctx)
    assert ctx.data == {"snapshots": [], "count": 0}
