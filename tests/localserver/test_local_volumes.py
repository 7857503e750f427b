"""Volumes: host directories the server owns, shared read-write by the sandboxes that mount them.

Every storage test runs in both disk modes (each volume its own loop-mounted filesystem, or a
directory the monitor accounts). The sandboxes of one test run as different host uids: sharing
goes through the volume's own group and inherited ACL (see localserver/volumes.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from localserver_testkit import MIB, Api, client, each_disk_mode, make_state_root, started

from daytonaflow.localserver import LocalServer
from daytonaflow.localserver.disk import remove_tree
from daytonaflow.localserver.volumes import VolumeMount

pytestmark = pytest.mark.sandbox

VOLUME_MIB = 16


_OPTIONS: dict[str, Any] = {"volume_bytes": VOLUME_MIB * MIB}

mode_server = each_disk_mode(**_OPTIONS)


@pytest.fixture(scope="module")
def api(mode_server: LocalServer) -> Iterator[Api]:
    with client(mode_server, timeout=120) as api:
        yield api


@pytest.fixture
def make(api: Api) -> Iterator[Any]:
    """Sandboxes and volumes made by one test, deleted after it (sandboxes first)."""
    sandboxes: list[str] = []
    volumes: list[str] = []

    def sandbox(*mounts: dict[str, str], **body: Any) -> dict[str, Any]:
        created = api.create(volumes=list(mounts), **body)
        sandboxes.append(created["id"])
        return created

    def volume(name: str) -> dict[str, Any]:
        response = api.api("POST", "/volumes", json={"name": name})
        assert response.status_code == 200, response.text
        volumes.append(response.json()["id"])
        made: dict[str, Any] = response.json()
        return made

    yield sandbox, volume
    for sandbox_id in sandboxes:
        api.delete(sandbox_id)
    for volume_id in volumes:
        api.api("DELETE", f"/volumes/{volume_id}")


def _uid(server: LocalServer, sandbox_id: str) -> int:
    assert server.state is not None
    manager = server.state.manager
    return manager.uid_of(manager.get(sandbox_id))


def test_a_volume_is_created_ready_and_found_by_id_and_by_name(api: Api, make: Any) -> None:
    _, volume = make
    made = volume("found")
    assert made["state"] == "ready"
    assert made["name"] == "found"
    assert api.api("GET", f"/volumes/{made['id']}").json()["id"] == made["id"]
    assert api.api("GET", "/volumes/by-name/found").json()["id"] == made["id"]
    assert made["id"] in [v["id"] for v in api.api("GET", "/volumes").json()]
    taken = api.api("POST", "/volumes", json={"name": "found"})
    assert taken.status_code == 409
    assert taken.json()["message"] == "Volume with name found already exists"


def test_a_server_keeps_at_most_its_count_of_volumes(api: Api, make: Any, mode_server: LocalServer) -> None:
    _, volume = make
    assert mode_server.state is not None
    store = mode_server.state.manager.volume_store
    kept = store.max_count
    store.max_count = len(store.records) + 1
    try:
        volume("counted-1")
        refused = api.api("POST", "/volumes", json={"name": "counted-2"})
    finally:
        store.max_count = kept
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("this server keeps at most")


def test_a_file_written_by_one_sandbox_is_read_and_overwritten_by_another(
    api: Api, make: Any, mode_server: LocalServer
) -> None:
    sandbox, volume = make
    shared = volume("shared")
    first = sandbox({"volumeId": shared["id"], "mountPath": "/data"})
    # By name, as the spec allows: resolved to the ID on create.
    second = sandbox({"volumeId": "shared", "mountPath": "/home/daytona/cache"})
    assert _uid(mode_server, first["id"]) != _uid(mode_server, second["id"])
    assert second["volumes"] == [{"volumeId": shared["id"], "mountPath": "/home/daytona/cache"}]
    written = api.run(first["id"], "mkdir -p /data/dir && echo from-first > /data/dir/note.txt")
    assert written["exitCode"] == 0, written["result"]

    read = api.run(second["id"], "cat /home/daytona/cache/dir/note.txt")
    overwritten = api.run(
        second["id"],
        "echo from-second > /home/daytona/cache/dir/note.txt && touch /home/daytona/cache/dir/new",
    )
    assert (read["exitCode"], read["result"]) == (0, "from-first\n")
    assert overwritten["exitCode"] == 0, overwritten["result"]
    back = api.run(
        first["id"], "cat /data/dir/note.txt && echo more >> /data/dir/new && rm /data/dir/note.txt"
    )
    assert (back["exitCode"], back["result"]) == (0, "from-second\n")


def test_a_sandbox_without_the_volume_cannot_reach_it(api: Api, make: Any) -> None:
    sandbox, volume = make
    private = volume("private")
    owner = sandbox({"volumeId": private["id"], "mountPath": "/data"})
    api.run(owner["id"], "echo volume-secret-7f3 > /data/secret.txt")
    other = sandbox()
    found = api.run(
        other["id"], "grep -rs volume-secret-7f3 / --exclude-dir=proc --exclude-dir=sys; echo done"
    )
    assert found["result"] == "done\n"


def test_a_subpath_exposes_only_that_directory_of_the_volume(api: Api, make: Any) -> None:
    sandbox, volume = make
    users = volume("users")
    whole = sandbox({"volumeId": users["id"], "mountPath": "/data"})
    api.run(whole["id"], "mkdir -p /data/alice /data/bob && echo bob-only > /data/bob/b.txt")
    alice = sandbox({"volumeId": users["id"], "mountPath": "/data", "subpath": "alice"})
    assert alice["volumes"] == [{"volumeId": users["id"], "mountPath": "/data", "subpath": "alice"}]

    api.run(alice["id"], "echo alice-file > /data/a.txt")
    # `..` of the mount is the sandbox's own root, never the volume's other directories.
    escape = api.run(alice["id"], "ls /data/..; cat /data/../bob/b.txt")

    assert api.run(whole["id"], "cat /data/alice/a.txt")["result"] == "alice-file\n"
    assert "bob-only" not in escape["result"]
    assert "No such file" in escape["result"]


def test_a_missing_subpath_is_made_inside_the_volume(api: Api, make: Any) -> None:
    sandbox, volume = make
    made = volume("deep")
    inner = sandbox({"volumeId": made["id"], "mountPath": "/data", "subpath": "a/b/c"})
    api.run(inner["id"], "echo deep > /data/f")
    whole = sandbox({"volumeId": made["id"], "mountPath": "/data"})
    assert api.run(whole["id"], "cat /data/a/b/c/f")["result"] == "deep\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="subpaths are staged by bind mounts, which need root")
def test_deleting_a_sandbox_never_removes_a_volume_subpath_still_staged_in_it(
    api: Api, make: Any, mode_server: LocalServer
) -> None:
    """As when a server dies between a start and the staging's unmount: the bind is still there."""
    sandbox, volume = make
    made = volume("staged")
    user = sandbox({"volumeId": made["id"], "mountPath": "/data", "subpath": "inner"})
    api.run(user["id"], "echo keep > /data/keep.txt")
    assert mode_server.state is not None
    manager = mode_server.state.manager
    fd = manager.volume_store.open_mount(VolumeMount(made["id"], "/data", "inner"))
    os.close(manager._staged(user["id"], 0, fd))

    assert api.delete(user["id"]).status_code == 200

    reader = sandbox({"volumeId": made["id"], "mountPath": "/data"})
    assert api.run(reader["id"], "cat /data/inner/keep.txt")["result"] == "keep\n"


@pytest.mark.parametrize("subpath", ["..", "../x", "a/../../b", "/etc", "a//b", "./a"])
def test_a_subpath_leaving_the_volume_is_refused(api: Api, make: Any, subpath: str) -> None:
    _, volume = make
    made = volume(f"escape-{abs(hash(subpath))}")
    before = len(api.api("GET", "/sandbox").json()["items"])
    response = api.api(
        "POST",
        "/sandbox",
        json={"volumes": [{"volumeId": made["id"], "mountPath": "/data", "subpath": subpath}]},
    )
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith("volumes[0].subpath must be a relative path of names")
    assert len(api.api("GET", "/sandbox").json()["items"]) == before


def test_a_symlink_planted_in_the_volume_cannot_lead_a_subpath_out(api: Api, make: Any) -> None:
    sandbox, volume = make
    made = volume("planted")
    attacker = sandbox({"volumeId": made["id"], "mountPath": "/data"})
    planted = api.run(attacker["id"], "ln -s / /data/root && ln -s /etc /data/etc && mkdir /data/ok")
    assert planted["exitCode"] == 0, planted["result"]
    before = len(api.api("GET", "/sandbox").json()["items"])
    for subpath in ("root", "etc", "root/etc", "ok/../root"):
        response = api.api(
            "POST",
            "/sandbox",
            json={"volumes": [{"volumeId": made["id"], "mountPath": "/data", "subpath": subpath}]},
        )
        assert response.status_code == 400, (subpath, response.text)
    assert len(api.api("GET", "/sandbox").json()["items"]) == before


@pytest.mark.parametrize(
    "mount_path",
    [
        "/",
        "/usr",
        "/usr/local/x",
        "/etc",
        "/etc/ssl",
        "/proc/x",
        "/home/daytona",
        "/home",
        "/tmp/x",
        "/opt/daytonaflow",
        "data",
        "/data/../etc",
        "/data//x",
        "/bin",
    ],
)
def test_a_mount_path_over_a_system_directory_or_not_normalised_is_refused(
    api: Api, make: Any, mount_path: str
) -> None:
    _, volume = make
    made = volume(f"paths-{abs(hash(mount_path))}")
    response = api.api(
        "POST", "/sandbox", json={"volumes": [{"volumeId": made["id"], "mountPath": mount_path}]}
    )
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith("volumes[0].mountPath ")


def test_two_mounts_at_overlapping_paths_are_refused(api: Api, make: Any) -> None:
    _, volume = make
    made = volume("overlap")
    response = api.api(
        "POST",
        "/sandbox",
        json={
            "volumes": [
                {"volumeId": made["id"], "mountPath": "/data"},
                {"volumeId": made["id"], "mountPath": "/data/inner"},
            ]
        },
    )
    assert response.status_code == 400
    assert "overlaps the mount at /data" in response.json()["message"]


def test_an_unknown_volume_in_a_create_is_refused_and_nothing_is_made(api: Api) -> None:
    before = len(api.api("GET", "/sandbox").json()["items"])
    response = api.api(
        "POST", "/sandbox", json={"volumes": [{"volumeId": "no-such-volume", "mountPath": "/data"}]}
    )
    assert response.status_code == 400
    assert response.json()["message"] == "Volume 'no-such-volume' could not be resolved to a valid volume ID"
    assert len(api.api("GET", "/sandbox").json()["items"]) == before
    assert api.api("GET", "/volumes/no-such-volume").status_code == 404
    assert api.api("GET", "/volumes/by-name/no-such-volume").json()["message"] == (
        "Volume with name no-such-volume not found"
    )


def test_deleting_a_volume_a_sandbox_mounts_is_refused_with_409(api: Api, make: Any) -> None:
    sandbox, volume = make
    made = volume("busy")
    user = sandbox({"volumeId": made["id"], "mountPath": "/data"}, name="busy-user")
    api.run(user["id"], "echo kept > /data/kept")
    api.api("POST", f"/sandbox/{user['id']}/stop")  # stopped, it still mounts it

    refused = api.api("DELETE", f"/volumes/{made['id']}")

    assert refused.status_code == 409
    assert refused.json()["message"] == (
        "Volume cannot be deleted because it is in use by one or more sandboxes (e.g. busy-user)"
    )
    assert api.delete(user["id"]).status_code == 200
    assert api.api("DELETE", f"/volumes/{made['id']}").status_code == 200
    assert api.api("GET", f"/volumes/{made['id']}").status_code == 404


def test_a_volume_cannot_hold_more_than_its_size(api: Api, make: Any) -> None:
    """Loop mode: its filesystem refuses the bytes; accounting: the writers' processes are killed."""
    sandbox, volume = make
    made = volume("bounded")
    writer = sandbox({"volumeId": made["id"], "mountPath": "/data"})
    # 1 MiB every 20 ms up to four times the size: slow enough for the monitor to see it grow.
    script = (
        "import time\n"
        "with open('/data/big', 'wb') as f:\n"
        f"    for _ in range({4 * VOLUME_MIB}):\n"
        "        f.write(b'v' * (1 << 20)); f.flush(); time.sleep(0.02)\n"
        "print('wrote it all')\n"
    )
    api.toolbox(
        "POST", writer["id"], "/files/upload", params={"path": "/home/daytona/w.py"}, files={"file": script}
    )
    result = api.run(writer["id"], "python3 w.py", timeout=60)
    size = int(api.run(writer["id"], "stat -c %s /data/big")["result"] or 0)
    assert "wrote it all" not in result["result"]
    assert size < 2 * VOLUME_MIB * MIB


def test_a_volume_keeps_its_files_after_its_sandboxes_are_deleted_and_a_restart(
    mode_server: LocalServer,
) -> None:
    """On a server of its own: it is stopped and another started on the same state directory."""
    root = make_state_root()
    mode = mode_server.disk_mode
    try:
        with (
            started(root / "state", disk_mode=mode, **_OPTIONS) as server,
            client(server, timeout=120) as api,
        ):
            volume = api.api("POST", "/volumes", json={"name": "lasting"}).json()
            writer = api.create(volumes=[{"volumeId": volume["id"], "mountPath": "/data"}])
            api.run(writer["id"], "echo lasting-content > /data/kept.txt")
            assert api.delete(writer["id"]).status_code == 200
        with (
            started(root / "state", disk_mode=mode, **_OPTIONS) as server,
            client(server, timeout=120) as api,
        ):
            assert api.api("GET", "/volumes/by-name/lasting").json()["id"] == volume["id"]
            reader = api.create(volumes=[{"volumeId": "lasting", "mountPath": "/data"}])
            assert api.run(reader["id"], "cat /data/kept.txt")["result"] == "lasting-content\n"
            api.delete(reader["id"])
            assert api.api("DELETE", f"/volumes/{volume['id']}").status_code == 200
    finally:
        remove_tree(root)
