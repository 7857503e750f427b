"""Snapshots: a saved sandbox home that new sandboxes start from, taken from a running sandbox or
built from the Dockerfile the official SDK's ``Image`` writes. The home storage tests run in both
disk modes; the build installs a package from a package index on the host's loopback."""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from localserver_testkit import (
    MIB,
    Api,
    client,
    each_disk_mode,
    host_home,
    make_state_root,
    started,
    wait_for,
)
from package_index import MODULE, PACKAGE, VALUE, Index, served_index

from daytonaflow.localserver import LocalServer, sandboxes
from daytonaflow.localserver._processes import frozen_sandbox
from daytonaflow.localserver.disk import remove_tree
from daytonaflow.localserver.errors import ApiError
from daytonaflow.localserver.sandboxes import _agent_pid

pytestmark = pytest.mark.sandbox

Image = pytest.importorskip("daytona").Image


mode_server = each_disk_mode()


@pytest.fixture(scope="module")
def api(mode_server: LocalServer) -> Iterator[Api]:
    with client(mode_server, timeout=120) as api:
        yield api


@pytest.fixture
def make(api: Api) -> Iterator[Any]:
    """Sandboxes made by one test, deleted after it; the snapshots it took too."""
    sandboxes: list[str] = []

    def sandbox(**body: Any) -> dict[str, Any]:
        created = api.create(**body)
        sandboxes.append(created["id"])
        return created

    yield sandbox
    for sandbox_id in sandboxes:
        api.delete(sandbox_id)
    for snapshot in api.api("GET", "/snapshots", params={"limit": 200}).json()["items"]:
        api.api("DELETE", f"/snapshots/{snapshot['id']}")


def _snapshot(api: Api, sandbox_id: str, name: str) -> dict[str, Any]:
    response = api.api("POST", f"/sandbox/{sandbox_id}/snapshot", json={"name": name})
    assert response.status_code == 200, response.text
    snapshot: dict[str, Any] = api.api("GET", f"/snapshots/{name}").json()
    return snapshot


def _active(api: Api, name: str, timeout: float = 240) -> dict[str, Any]:
    def settled() -> dict[str, Any] | None:
        snapshot: dict[str, Any] = api.api("GET", f"/snapshots/{name}").json()
        return snapshot if snapshot["state"] not in ("pending", "building") else None

    return wait_for(settled, timeout, f"snapshot {name} to build")


TREE = (
    "mkdir -p proj/src && echo 'print(42)' > proj/src/main.py && chmod 755 proj/src/main.py && "
    "ln -s src/main.py proj/link && echo dot > .config && "
    "python3 -c \"open('sparse','wb').truncate(8 << 20)\""
)


def test_a_sandbox_made_from_a_snapshot_starts_with_the_home_it_was_taken_of(api: Api, make: Any) -> None:
    source = make()
    assert api.run(source["id"], TREE)["exitCode"] == 0
    snapshot = _snapshot(api, source["id"], "proj-v1")
    api.run(source["id"], "echo changed-after > proj/src/main.py")  # the snapshot is of before

    made = make(snapshot="proj-v1")
    listing = api.run(
        made["id"], "cat proj/src/main.py .config; readlink proj/link; stat -c '%a %U' proj/src/main.py"
    )
    writable = api.run(made["id"], "echo mine > proj/new && rm proj/src/main.py && echo ok")

    assert snapshot["state"] == "active"
    assert made["snapshot"] == "proj-v1"
    assert listing["result"] == "print(42)\ndot\nsrc/main.py\n755 daytona\n"
    assert writable["result"] == "ok\n"
    assert api.run(source["id"], "cat proj/src/main.py")["result"] == "changed-after\n"


def test_the_source_sandbox_keeps_running_its_processes_through_the_snapshot(api: Api, make: Any) -> None:
    source = make()
    api.run(
        source["id"], "nohup sh -c 'while true; do date +%s%N >> ticks; sleep 0.05; done' >/dev/null 2>&1 &"
    )

    def ticks() -> int | None:
        counted = api.run(source["id"], "wc -l < ticks")
        return int(counted["result"]) if counted["exitCode"] == 0 else None

    wait_for(lambda: ticks() or None, 10, "the loop to tick")
    _snapshot(api, source["id"], "ticking")
    before = wait_for(ticks, 10, "the ticks to be counted")
    after = wait_for(lambda: n if (n := ticks()) is not None and n > before else None, 10, "another tick")
    assert after > before
    assert api.api("GET", f"/sandbox/{source['id']}").json()["state"] == "started"


CHURN = r"""
import os
fd = os.open("churn.bin", os.O_RDWR | os.O_CREAT, 0o644)
size = 4 << 20
i = 0
while True:
    i += 1
    os.pwrite(fd, bytes([i % 256]) * size, 0)
"""


def test_a_snapshot_is_of_one_instant_not_of_a_file_half_rewritten(api: Api, make: Any) -> None:
    """A process rewrites a 4 MiB file whole, over and over, each round with one byte value: a copy
    taken while it runs holds a mix of rounds; one taken of the frozen sandbox holds one."""
    source = make()
    api.toolbox("POST", source["id"], "/files/upload", params={"path": "churn.py"}, files={"file": CHURN})
    api.run(source["id"], "nohup python3 churn.py >/dev/null 2>&1 & sleep 1")
    for round_ in range(3):
        _snapshot(api, source["id"], f"churn-{round_}")
        made = make(snapshot=f"churn-{round_}")
        distinct = api.run(made["id"], "python3 -c \"print(len(set(open('churn.bin','rb').read())))\"")
        assert distinct["result"] == "1\n", f"round {round_}: {distinct['result']} byte values"


def test_an_unknown_snapshot_is_refused_with_daytonas_error_and_nothing_is_made(api: Api) -> None:
    before = len(api.api("GET", "/sandbox").json()["items"])
    response = api.api("POST", "/sandbox", json={"snapshot": "no-such-snapshot"})
    assert response.status_code == 400
    assert response.json()["message"] == (
        "Snapshot no-such-snapshot not found. Did you add it through the Daytona Dashboard?"
    )
    assert len(api.api("GET", "/sandbox").json()["items"]) == before
    assert api.api("GET", "/snapshots/no-such-snapshot").status_code == 404


def test_the_default_snapshot_name_gives_the_default_empty_home(api: Api, make: Any) -> None:
    made = make(snapshot="local")
    assert api.run(made["id"], "ls -A | grep -v '^\\.' | wc -l")["result"] == "0\n"


def test_snapshots_are_listed_by_page_and_name_and_got_by_id_or_name_and_deleted(api: Api, make: Any) -> None:
    source = make()
    first = _snapshot(api, source["id"], "list-alpha")
    _snapshot(api, source["id"], "list-beta")
    page = api.api(
        "GET", "/snapshots", params={"name": "list-", "limit": 1, "sort": "name", "order": "asc"}
    ).json()
    named = api.api("GET", "/snapshots", params={"name": "ALPHA"}).json()

    assert (page["total"], page["totalPages"], page["page"]) == (2, 2, 1)
    assert [s["name"] for s in page["items"]] == ["list-alpha"]
    assert [s["name"] for s in named["items"]] == ["list-alpha"]
    assert api.api("GET", f"/snapshots/{first['id']}").json()["name"] == "list-alpha"
    assert api.api("DELETE", f"/snapshots/{first['id']}").status_code == 200
    assert api.api("GET", "/snapshots/list-alpha").status_code == 404
    taken = api.api("POST", f"/sandbox/{source['id']}/snapshot", json={"name": "list-beta"})
    assert taken.status_code == 409


def test_a_snapshot_larger_than_a_new_sandboxs_disk_is_refused(api: Api, make: Any) -> None:
    big = make(disk=1)  # 1 GiB, over the server's 64 MiB default
    assert api.run(big["id"], "head -c 80M /dev/urandom > blob && echo ok")["result"] == "ok\n"
    _snapshot(api, big["id"], "big-home")
    response = api.api("POST", "/sandbox", json={"snapshot": "big-home"})
    assert response.status_code == 400
    assert "more than the sandbox's disk" in response.json()["message"]
    assert api.run(make(snapshot="big-home", disk=1)["id"], "stat -c %s blob")["result"] == f"{80 * MIB}\n"


def test_a_home_over_its_quota_is_not_saved(mode_server: LocalServer, tmp_path: Path) -> None:
    assert mode_server.state is not None
    store = mode_server.state.manager.snapshot_store
    home = tmp_path / "home"
    home.mkdir()
    (home / "data").write_bytes(b"x" * (2 * MIB))
    record = store.new("over-quota", source="test")
    try:
        with pytest.raises(ApiError, match="more than its disk quota of 1048576"):
            store.save_home(record, home, MIB)
        assert not store.home(record).exists()
    finally:
        store.delete(record)


def test_a_server_keeps_at_most_its_count_of_snapshots(api: Api, make: Any, mode_server: LocalServer) -> None:
    assert mode_server.state is not None
    store = mode_server.state.manager.snapshot_store
    source = make()
    kept = store.max_count
    store.max_count = len(store.records) + 1
    try:
        _snapshot(api, source["id"], "counted-1")
        refused = api.api("POST", f"/sandbox/{source['id']}/snapshot", json={"name": "counted-2"})
    finally:
        store.max_count = kept
    assert refused.status_code == 400
    assert "keeps at most" in refused.json()["message"]


def test_only_a_started_sandbox_can_be_snapshotted(api: Api, make: Any) -> None:
    stopped = make()
    api.api("POST", f"/sandbox/{stopped['id']}/stop")
    response = api.api("POST", f"/sandbox/{stopped['id']}/snapshot", json={"name": "from-stopped"})
    assert response.status_code == 409
    assert "must be started" in response.json()["message"]


# ---- built from a Dockerfile ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    with served_index(tmp_path_factory.mktemp("index")) as served:
        yield served


def _build(api: Api, name: str, dockerfile: str) -> httpx.Response:
    return api.api("POST", "/snapshots", json={"name": name, "buildInfo": {"dockerfileContent": dockerfile}})


def test_a_snapshot_built_from_the_sdks_image_has_the_pip_package(api: Api, make: Any, index: Index) -> None:
    image = (
        Image.debian_slim("3.12")
        .pip_install([PACKAGE], index_url=f"http://127.0.0.1:{index.port}/simple")
        .run_commands("echo built > /home/daytona/built.txt")
    )
    started = _build(api, "with-probe", image.dockerfile())
    assert started.status_code == 200, started.text
    assert started.json()["state"] == "building"

    built = _active(api, "with-probe")
    made = make(snapshot="with-probe")
    imported = api.run(made["id"], f"python3 -c 'import {MODULE}; print({MODULE}.VALUE)' && cat built.txt")

    assert built["state"] == "active", built["errorReason"]
    assert built["buildInfo"]["dockerfileContent"] == image.dockerfile()
    assert imported["result"] == f"{VALUE}\nbuilt\n"
    assert any(path.startswith(f"/simple/{PACKAGE}") for path in index.requests)
    # The build sandbox is gone once the snapshot is saved.
    assert not [
        s for s in api.api("GET", "/sandbox").json()["items"] if s["name"].startswith("snapshot-build-")
    ]


def test_a_failing_run_line_ends_the_build_failed_with_its_output(api: Api) -> None:
    dockerfile = (
        Image.debian_slim("3.12").run_commands("echo before", "echo broken-step >&2; exit 3").dockerfile()
    )
    assert _build(api, "broken", dockerfile).status_code == 200
    failed = _active(api, "broken")
    assert failed["state"] == "build_failed"
    assert failed["errorReason"].startswith("RUN echo broken-step >&2; exit 3 exited with 3")
    assert "broken-step" in failed["errorReason"]
    refused = api.api("POST", "/sandbox", json={"snapshot": "broken"})
    assert refused.json()["message"] == "Snapshot broken is build_failed"
    api.api("DELETE", "/snapshots/broken")


@pytest.mark.parametrize(
    ("dockerfile", "reason"),
    [
        (
            lambda: Image.debian_slim("3.12").run_commands("apt-get install -y curl").dockerfile(),
            "system packages cannot be installed",
        ),
        (lambda: Image.base("ubuntu:22.04").dockerfile(), "FROM ubuntu:22.04"),
        (lambda: Image.debian_slim("3.12").workdir("/srv").dockerfile(), "WORKDIR is not supported"),
        (lambda: "RUN echo no-from\n", "it must start with FROM"),
    ],
    ids=["apt", "other-base", "workdir", "no-from"],
)
def test_a_dockerfile_the_local_server_cannot_build_is_refused_at_once(
    api: Api, dockerfile: Any, reason: str
) -> None:
    response = _build(api, "refused", dockerfile())
    assert response.status_code == 400
    assert response.json()["message"].startswith("buildInfo.dockerfileContent cannot be built locally: ")
    assert reason in response.json()["message"]
    assert api.api("GET", "/snapshots/refused").status_code == 404


def test_an_image_to_pull_is_refused_with_a_clear_reason(api: Api) -> None:
    response = api.api("POST", "/snapshots", json={"name": "pulled", "imageName": "ubuntu:22.04"})
    assert response.status_code == 400
    assert "imageName 'ubuntu:22.04' cannot be pulled" in response.json()["message"]


# ---- persistence ---------------------------------------------------------------------------------------


def test_a_snapshot_survives_a_server_restart(mode_server: LocalServer) -> None:
    root = make_state_root()
    mode = mode_server.disk_mode
    try:
        with started(root / "state", disk_mode=mode) as server, client(server, timeout=120) as api:
            source = api.create()
            api.run(source["id"], "echo saved > kept.txt")
            _snapshot(api, source["id"], "lasting")
            api.delete(source["id"])
        with started(root / "state", disk_mode=mode) as server, client(server, timeout=120) as api:
            made = api.create(snapshot="lasting")
            assert api.run(made["id"], "cat kept.txt")["result"] == "saved\n"
    finally:
        remove_tree(root)


def test_a_build_the_server_stopped_during_is_build_failed_after_a_restart(mode_server: LocalServer) -> None:
    root = make_state_root()
    mode = mode_server.disk_mode
    dockerfile = Image.debian_slim("3.12").run_commands("sleep 120").dockerfile()
    try:
        with started(root / "state", disk_mode=mode) as server, client(server, timeout=120) as api:
            assert _build(api, "interrupted", dockerfile).status_code == 200
            wait_for(
                lambda: (
                    [s for s in api.api("GET", "/sandbox").json()["items"] if s["state"] == "started"] or None
                ),
                30,
                "the build sandbox to start",
            )
        with started(root / "state", disk_mode=mode) as server, client(server, timeout=120) as api:
            snapshot = api.api("GET", "/snapshots/interrupted").json()
            assert snapshot["state"] == "build_failed"
            assert snapshot["errorReason"] == "the server stopped before the snapshot was complete"
            assert api.api("GET", "/sandbox").json()["items"] == []
    finally:
        remove_tree(root)


@contextlib.contextmanager
def _client(server: LocalServer) -> Iterator[Api]:
    try:
        with httpx.Client(headers={"Authorization": f"Bearer {server.api_key}"}, timeout=120) as http:
            yield Api(server, http)
    finally:
        server.stop()


# ---- a hostile source home -------------------------------------------------------------------------

# Each directory of the home has a symlink to the host's secret beside it, and the two are
# exchanged atomically (renameat2 RENAME_EXCHANGE), over and over: a name is never missing, so a
# copy walking by path never stumbles, but may look at a directory and then open a symlink.
SWAPPER = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
os.chdir("/home/daytona")
names = [str(i).encode() for i in range(300)]
for name in names:
    os.mkdir(name)
    os.symlink(sys.argv[1], name + b".l")
open("ready", "w").close()
while not os.path.exists("stop"):
    for name in names:
        libc.renameat2(-100, name, -100, name + b".l", 2)
"""


def _host_secret(tmp_path: Path) -> Path:
    """A root-only host directory holding a root-only file named as a directory of the home is."""
    secret = tmp_path / "secret"
    secret.mkdir(mode=0o700)
    (secret / "shadow").write_text("root-only-host-secret\n")
    (secret / "shadow").chmod(0o600)
    return secret


def _holds(root: Path, text: str) -> list[Path]:
    """Regular files under ``root`` (never through a symlink) whose content is ``text``."""
    found = []
    for directory, _dirs, files in os.walk(root):
        for name in files:
            path = Path(directory, name)
            if path.is_file() and not path.is_symlink() and path.read_text(errors="replace") == text:
                found.append(path)
    return found


def test_a_sandbox_that_escapes_the_freeze_cannot_swap_a_symlink_into_its_snapshot(
    api: Api, make: Any, mode_server: LocalServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The copy must be safe on its own: with the freeze escaped (here: none at all), processes
    swapping the home's directories for symlinks to a root-only host directory, over and over
    while the snapshot is copied, never get the host's file into the snapshot."""
    assert mode_server.state is not None
    monkeypatch.setattr(sandboxes, "frozen_sandbox", lambda *_a, **_k: contextlib.nullcontext())
    secret = _host_secret(tmp_path)
    source = make()
    api.toolbox("POST", source["id"], "/files/upload", params={"path": "swap.py"}, files={"file": SWAPPER})
    api.run(source["id"], f"nohup python3 swap.py {secret} >/dev/null 2>&1 & sleep 1; test -e ready")
    store = mode_server.state.manager.snapshot_store
    taken = 0
    try:
        for round_ in range(10):
            name = f"swapped-{round_}"
            response = api.api("POST", f"/sandbox/{source['id']}/snapshot", json={"name": name})
            if response.status_code != 200:
                continue  # a copy may give up on a tree that changes under it; it must not leak
            taken += 1
            leaked = _holds(store.home(store.get(name)), "root-only-host-secret\n")
            assert leaked == [], f"round {round_}: the host file was copied in as {leaked}"
            api.api("DELETE", f"/snapshots/{name}")
    finally:
        api.run(source["id"], "touch stop")
    assert taken >= 5, f"only {taken} of 10 snapshots were taken"


ESCAPER = r"""
import ctypes, threading, time
def tick():
    n = 0
    while True:
        n += 1
        with open("/home/daytona/tick", "w") as f:
            f.write(str(n))
        time.sleep(0.003)
threading.Thread(target=tick).start()
time.sleep(0.2)
ctypes.CDLL(None).syscall(60, 0)  # SYS_exit of the main thread only: the leader shows as a zombie
"""


def test_the_freeze_stops_the_threads_of_a_process_whose_leader_exited(
    api: Api, make: Any, mode_server: LocalServer
) -> None:
    assert mode_server.state is not None
    manager = mode_server.state.manager
    source = make()
    api.toolbox("POST", source["id"], "/files/upload", params={"path": "esc.py"}, files={"file": ESCAPER})
    started = api.run(
        source["id"], "(setsid python3 esc.py >/dev/null 2>&1 &); sleep 1; ps -o stat=,nlwp=,args= -e"
    )
    assert any(
        line.split()[:2] == ["Z", "2"] or line.startswith("Zs") for line in started["result"].splitlines()
    )
    running = manager.running[source["id"]]
    tick = host_home(mode_server, source["id"]) / "tick"
    with frozen_sandbox(_agent_pid(running.proc.pid), parent_pid=running.proc.pid):
        before = tick.read_text()
        time.sleep(0.3)
        after = tick.read_text()
    assert before == after, "a thread of the zombie leader kept running through the freeze"


def test_a_snapshot_carries_no_setuid_program_and_not_the_homes_own_mode(
    api: Api, make: Any, mode_server: LocalServer
) -> None:
    assert mode_server.state is not None
    store = mode_server.state.manager.snapshot_store
    source = make()
    prepared = api.run(source["id"], "cp /usr/bin/id myid && chmod 6755 myid && chmod 0777 /home/daytona")
    assert prepared["exitCode"] == 0
    _snapshot(api, source["id"], "setuid")
    saved = store.home(store.get("setuid")) / "myid"
    made = make(snapshot="setuid")
    home = host_home(mode_server, made["id"])

    assert stat.S_IMODE(saved.stat().st_mode) == 0o755
    assert stat.S_IMODE(home.stat().st_mode) == 0o755
    assert (home / "myid").stat().st_uid == home.stat().st_uid != 0
    assert api.run(made["id"], "stat -c '%a %U' myid && ./myid -un")["result"] == "755 daytona\ndaytona\n"


DEEP = """
import os
for _ in range(1000):  # 6 characters a level: the leaf's path is past PATH_MAX (4096)
    os.mkdir("level")
    os.chdir("level")
open("leaf", "w").write("deep")
"""
CLIMB = """
import os
for _ in range(1000):
    os.chdir("level")
print(open("leaf").read())
"""


def test_a_home_deeper_than_path_max_is_snapshotted_whole(api: Api, make: Any) -> None:
    deep, climb = DEEP, CLIMB
    source = make()
    api.toolbox("POST", source["id"], "/files/upload", params={"path": "deep.py"}, files={"file": deep})
    api.toolbox("POST", source["id"], "/files/upload", params={"path": "climb.py"}, files={"file": climb})
    assert api.run(source["id"], "python3 deep.py")["exitCode"] == 0
    _snapshot(api, source["id"], "deep")
    made = make(snapshot="deep")
    assert api.run(made["id"], "python3 climb.py")["result"] == "deep\n"
