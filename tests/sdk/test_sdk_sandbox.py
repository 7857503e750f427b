"""The sandbox control plane through the official Python SDK, sync and async, unchanged.

Runs against the SDK in the venv (the latest release) and, with ``PYTHONPATH=/tmp/sdk-old``, the
oldest release the server claims (0.129.0). Where the two SDKs' own APIs differ (``list`` pages by
cursor in one and by page number in the other; 0.129 has ``find_one``, 0.226 ``set_public`` and
``delete(wait=True)``), a test branches or skips with the reason.
"""

from __future__ import annotations

import contextlib
import inspect
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import daytona
import httpx
import pytest
from daytona import (
    AsyncDaytona,
    CreateSandboxFromImageParams,
    CreateSandboxFromSnapshotParams,
    Daytona,
    DaytonaError,
    DaytonaNotFoundError,
    Resources,
    Sandbox,
)
from sdk_testkit import Served

#: Told apart by what the SDK has, not by its version number: 0.226 pages ``list`` by cursor with a
#: ``ListSandboxesQuery`` (an iterator of sandboxes), 0.129 by page number (one page).
_CURSOR_LIST = hasattr(daytona, "ListSandboxesQuery")
_DELETE_WAITS = "wait" in inspect.signature(Daytona.delete).parameters
_AUTO_DELETE_SECONDS = 30.0


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def made(client: Daytona) -> Iterator[Callable[..., Sandbox]]:
    """Create sandboxes with the test's own parameters; every one is deleted afterwards."""
    sandboxes: list[Sandbox] = []

    def make(params: CreateSandboxFromSnapshotParams | CreateSandboxFromImageParams | None = None) -> Sandbox:
        sandbox = client.create(params)
        sandboxes.append(sandbox)
        return sandbox

    yield make
    for sandbox in sandboxes:
        with contextlib.suppress(DaytonaError):
            client.delete(sandbox)


def _intervals(sandbox: Sandbox) -> tuple[object, object, object]:
    return (sandbox.auto_stop_interval, sandbox.auto_archive_interval, sandbox.auto_delete_interval)


def _raw_sandbox(served: Served, sandbox_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{served.api_url}/sandbox/{sandbox_id}", headers={"Authorization": f"Bearer {served.api_key}"}
    )
    response.raise_for_status()
    sandbox: dict[str, Any] = response.json()
    return sandbox


def _listed(client: Daytona, labels: dict[str, str], **query: Any) -> list[Sandbox]:
    """Every sandbox ``list`` yields for ``labels`` (all pages, whichever way the SDK pages)."""
    if _CURSOR_LIST:
        from daytona import ListSandboxesQuery

        return list(client.list(ListSandboxesQuery(labels=labels, **query)))
    return list(client.list(labels).items)


# ---- create ----------------------------------------------------------------------------------------


def test_create_keeps_name_labels_env_and_intervals(made: Callable[..., Sandbox]) -> None:
    name = _unique("sdk-create")
    sandbox = made(
        CreateSandboxFromSnapshotParams(
            name=name,
            labels={"team": "sdk"},
            env_vars={"GREETING": "hello from the sdk"},
            auto_stop_interval=0,
            auto_archive_interval=60,
            auto_delete_interval=120,
        )
    )
    assert sandbox.state == "started"
    assert sandbox.name == name
    assert sandbox.labels["team"] == "sdk"
    assert sandbox.env == {"GREETING": "hello from the sdk"}
    assert _intervals(sandbox) == (0, 60, 120)
    assert sandbox.process.exec("echo $GREETING").result.strip() == "hello from the sdk"


def test_create_reports_whole_default_resources(made: Callable[..., Sandbox]) -> None:
    sandbox = made()
    # The SDK's model has integers here: the server's 1 core, 1 GiB, 3 GiB, and no GPU.
    assert (sandbox.cpu, sandbox.memory, sandbox.disk, sandbox.gpu) == (1, 1, 3, 0)
    assert all(type(value) is int for value in (sandbox.cpu, sandbox.memory, sandbox.disk, sandbox.gpu))


def test_create_with_resources_gives_them_to_the_sandbox(made: Callable[..., Sandbox]) -> None:
    # The SDK sends resources only with image parameters; the image itself is not built here.
    resources = Resources(cpu=2, memory=2, disk=2)
    sandbox = made(CreateSandboxFromImageParams(image="python:3.12", resources=resources))
    assert (sandbox.cpu, sandbox.memory, sandbox.disk) == (2, 2, 2)
    blocks = sandbox.process.exec("ulimit -f").result.strip()
    assert int(blocks) * 512 == 2 << 30


def test_create_public_is_reported(made: Callable[..., Sandbox]) -> None:
    assert made(CreateSandboxFromSnapshotParams(public=True)).public is True


def test_create_reports_the_network_settings_asked_for(made: Callable[..., Sandbox]) -> None:
    sandbox = made(CreateSandboxFromSnapshotParams(network_block_all=True, network_allow_list="10.1.0.0/16"))
    assert sandbox.network_block_all is True
    assert sandbox.network_allow_list == "10.1.0.0/16"


def test_a_create_the_server_refuses_shows_its_message(client: Daytona) -> None:
    with pytest.raises(DaytonaError) as raised:
        client.create(CreateSandboxFromSnapshotParams(network_allow_list="not-a-cidr"))
    assert raised.value.status_code == 400
    assert "networkAllowList must be comma-separated IPv4 CIDR blocks" in str(raised.value)


def test_a_duplicate_name_is_a_conflict(made: Callable[..., Sandbox], client: Daytona) -> None:
    name = _unique("sdk-dup")
    made(CreateSandboxFromSnapshotParams(name=name))
    with pytest.raises(DaytonaError) as raised:
        client.create(CreateSandboxFromSnapshotParams(name=name))
    assert raised.value.status_code == 409
    assert f"Sandbox with name {name} already exists" in str(raised.value)


# ---- get, find, list -------------------------------------------------------------------------------


def test_get_finds_a_sandbox_by_id_and_by_name(made: Callable[..., Sandbox], client: Daytona) -> None:
    name = _unique("sdk-get")
    sandbox = made(CreateSandboxFromSnapshotParams(name=name))
    assert client.get(sandbox.id).name == name
    assert client.get(name).id == sandbox.id


def test_get_of_an_unknown_sandbox_is_not_found(client: Daytona) -> None:
    with pytest.raises(DaytonaNotFoundError, match="Sandbox with ID or name no-such-sandbox not found"):
        client.get("no-such-sandbox")


@pytest.mark.skipif(not hasattr(Daytona, "find_one"), reason="0.226 has no Daytona.find_one")
def test_find_one_finds_by_id_name_and_labels(made: Callable[..., Sandbox], client: Daytona) -> None:
    name, flow = _unique("sdk-find"), _unique("flow")
    sandbox = made(CreateSandboxFromSnapshotParams(name=name, labels={"flow": flow}))
    find_one = client.find_one  # type: ignore[attr-defined]
    assert find_one(sandbox.id).id == sandbox.id
    assert find_one(name).id == sandbox.id
    assert find_one(labels={"flow": flow}).id == sandbox.id


def test_list_filters_by_labels(made: Callable[..., Sandbox], client: Daytona) -> None:
    flow = _unique("flow")
    first = made(CreateSandboxFromSnapshotParams(labels={"flow": flow, "run": "1"}))
    second = made(CreateSandboxFromSnapshotParams(labels={"flow": flow, "run": "2"}))
    made(CreateSandboxFromSnapshotParams(labels={"flow": _unique("other")}))
    assert [s.id for s in _listed(client, {"flow": flow, "run": "2"})] == [second.id]
    assert {s.id for s in _listed(client, {"flow": flow})} == {first.id, second.id}


@pytest.mark.skipif(not _CURSOR_LIST, reason="0.129's list filters by labels only")
def test_list_filters_by_id_name_and_state(made: Callable[..., Sandbox], client: Daytona) -> None:
    from daytona import SandboxState

    flow = _unique("flow")
    name = _unique("sdk-listed")
    named = made(CreateSandboxFromSnapshotParams(name=name, labels={"flow": flow}))
    other = made(CreateSandboxFromSnapshotParams(labels={"flow": flow}))
    other.stop()
    assert [s.id for s in _listed(client, {"flow": flow}, id=named.id[:13].upper())] == [named.id]
    assert [s.id for s in _listed(client, {"flow": flow}, name=name[:12])] == [named.id]
    assert [s.id for s in _listed(client, {"flow": flow}, states=[SandboxState.STOPPED])] == [other.id]


def test_list_pages_through_every_sandbox_once(made: Callable[..., Sandbox], client: Daytona) -> None:
    flow = _unique("flow")
    created = {made(CreateSandboxFromSnapshotParams(labels={"flow": flow})).id for _ in range(3)}
    if _CURSOR_LIST:
        # One sandbox a page: the iterator follows the server's cursor to the end.
        ids = [s.id for s in _listed(client, {"flow": flow}, limit=1)]
        assert sorted(ids) == sorted(created)
        return
    pages = [client.list({"flow": flow}, page=page, limit=2) for page in (1, 2)]
    assert [len(p.items) for p in pages] == [2, 1]
    assert [(p.total, p.page, p.total_pages) for p in pages] == [(3, 1, 2), (3, 2, 2)]
    assert {s.id for p in pages for s in p.items} == created


# ---- lifecycle and settings ------------------------------------------------------------------------


def test_stop_and_start_wait_for_their_state(made: Callable[..., Sandbox], client: Daytona) -> None:
    sandbox = made()
    sandbox.process.exec("echo kept > kept.txt")
    client.stop(sandbox)
    assert sandbox.state == "stopped"
    sandbox.wait_for_sandbox_stop()
    assert client.get(sandbox.id).state == "stopped"
    client.start(sandbox)
    assert sandbox.state == "started"
    sandbox.wait_for_sandbox_start()
    assert sandbox.process.exec("cat kept.txt").result.strip() == "kept"


def test_set_labels_replaces_them(made: Callable[..., Sandbox], client: Daytona) -> None:
    sandbox = made(CreateSandboxFromSnapshotParams(labels={"old": "1"}))
    assert sandbox.set_labels({"new": "2"}) == {"new": "2"}
    assert client.get(sandbox.id).labels == {"new": "2"}


def test_the_interval_setters_are_kept(made: Callable[..., Sandbox], client: Daytona) -> None:
    sandbox = made()
    sandbox.set_autostop_interval(45)
    sandbox.set_auto_archive_interval(90)
    sandbox.set_auto_delete_interval(-1)
    sandbox.refresh_data()
    assert _intervals(sandbox) == (45, 90, -1)
    fresh = client.get(sandbox.id)
    assert (fresh.auto_stop_interval, fresh.auto_archive_interval) == (45, 90)


def test_a_refused_interval_shows_the_servers_message(made: Callable[..., Sandbox]) -> None:
    sandbox = made()
    with pytest.raises(DaytonaError) as raised:
        sandbox.set_auto_archive_interval(10**9)  # the SDK checks the sign only; the server the range
    assert raised.value.status_code == 400
    assert "interval must be an integer from 0 to 5270400 minutes" in str(raised.value)


@pytest.mark.skipif(not hasattr(Sandbox, "set_public"), reason="0.129's sandbox has no set_public")
def test_set_public_toggles_it(made: Callable[..., Sandbox], client: Daytona) -> None:
    sandbox = made()
    sandbox.set_public(True)
    assert client.get(sandbox.id).public is True
    sandbox.set_public(False)
    assert client.get(sandbox.id).public is False


def test_refresh_activity_moves_the_last_activity(made: Callable[..., Sandbox], served: Served) -> None:
    sandbox = made()
    before = _raw_sandbox(served, sandbox.id)["lastActivityAt"]  # 0.129's model has no such field
    time.sleep(0.01)
    sandbox.refresh_activity()
    assert _raw_sandbox(served, sandbox.id)["lastActivityAt"] > before


def test_the_directory_getters_name_the_home(made: Callable[..., Sandbox]) -> None:
    sandbox = made()
    assert sandbox.get_user_home_dir() == "/home/daytona"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 0.226 deprecates it for the one above
        assert sandbox.get_user_root_dir() == "/home/daytona"
    assert sandbox.get_work_dir() == "/home/daytona"


def test_an_ephemeral_sandbox_is_deleted_once_stopped(client: Daytona) -> None:
    sandbox = client.create(CreateSandboxFromSnapshotParams(ephemeral=True))
    assert sandbox.auto_delete_interval == 0
    sandbox.stop()
    deadline = time.monotonic() + _AUTO_DELETE_SECONDS
    while time.monotonic() < deadline:
        try:
            client.get(sandbox.id)
        except DaytonaNotFoundError:
            return
        time.sleep(0.2)
    client.delete(sandbox)
    pytest.fail(f"an ephemeral sandbox was still there {_AUTO_DELETE_SECONDS:g} s after it stopped")


def test_archive_is_refused_saying_the_server_cannot_archive(made: Callable[..., Sandbox]) -> None:
    sandbox = made()
    with pytest.raises(DaytonaError, match="this server cannot archive a sandbox"):
        sandbox.archive()


def test_delete_removes_the_sandbox(client: Daytona) -> None:
    sandbox = client.create()
    client.delete(sandbox)
    with pytest.raises(DaytonaNotFoundError):
        client.get(sandbox.id)


@pytest.mark.skipif(not _DELETE_WAITS, reason="0.129's delete has no wait parameter")
def test_delete_with_wait_ends_destroyed(client: Daytona) -> None:
    sandbox = client.create()
    client.delete(sandbox, wait=True)
    assert sandbox.state == "destroyed"
    with pytest.raises(DaytonaNotFoundError):
        client.get(sandbox.id)


# ---- the async client ------------------------------------------------------------------------------


async def test_async_create_get_and_delete(async_client: AsyncDaytona) -> None:
    name = _unique("sdk-async")
    sandbox = await async_client.create(CreateSandboxFromSnapshotParams(name=name, labels={"team": "async"}))
    try:
        assert sandbox.state == "started"
        assert (await async_client.get(name)).id == sandbox.id
        assert (await sandbox.process.exec("echo async")).result.strip() == "async"
    finally:
        await async_client.delete(sandbox)
    with pytest.raises(DaytonaNotFoundError):
        await async_client.get(sandbox.id)


async def test_async_list_filters_by_labels(async_client: AsyncDaytona) -> None:
    flow = _unique("flow")
    sandbox = await async_client.create(CreateSandboxFromSnapshotParams(labels={"flow": flow}))
    try:
        if _CURSOR_LIST:
            from daytona import ListSandboxesQuery

            ids = [s.id async for s in async_client.list(ListSandboxesQuery(labels={"flow": flow}))]
        else:
            ids = [s.id for s in (await async_client.list({"flow": flow})).items]  # type: ignore[attr-defined]
        assert ids == [sandbox.id]
    finally:
        await async_client.delete(sandbox)


async def test_async_lifecycle_labels_and_auto_stop(async_client: AsyncDaytona) -> None:
    sandbox = await async_client.create()
    try:
        await sandbox.stop()
        assert sandbox.state == "stopped"
        await sandbox.start()
        assert sandbox.state == "started"
        assert await sandbox.set_labels({"k": "v"}) == {"k": "v"}
        await sandbox.set_autostop_interval(5)
        await sandbox.refresh_data()
        assert sandbox.auto_stop_interval == 5
        assert sandbox.labels == {"k": "v"}
    finally:
        await async_client.delete(sandbox)


async def test_async_get_of_an_unknown_sandbox_is_not_found(async_client: AsyncDaytona) -> None:
    with pytest.raises(DaytonaNotFoundError, match="not found"):
        await async_client.get("no-such-sandbox")
