"""A sandbox's disk: hostile trees are removed, the quota holds in both modes, failures stay local.

Every quota test runs twice: with each home its own loop-mounted filesystem (``loop``, what a
root server with loop devices gets) and with the server counting usage (``accounting``, what
every other host gets, forced here while running as root).
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from localserver_testkit import (
    DISK_MODES,
    LOOP_AVAILABLE,
    MIB,
    TEST_LIMITS,
    Api,
    client,
    each_disk_mode,
    host_home,
    make_state_root,
)

from daytonaflow.localserver import DiskMode, LocalServer, disk, sandboxes
from daytonaflow.localserver.disk import (
    OVER_ANY_QUOTA,
    DiskUsage,
    disk_usage,
    loop_devices_of,
    measure_disk,
    open_unlinked_bytes,
    remove_tree,
)

pytestmark = pytest.mark.sandbox

QUOTA_MIB = TEST_LIMITS.disk_bytes // MIB

# The reproduction, then far deeper with 200-byte names (a path of ~1 MB, 250 times
# PATH_MAX), a directory made 000 and a symlink to a host file on the way down.
DEEP_TREE = r"""
import os, sys
for i in range(1500):
    os.mkdir("d"); os.chdir("d")
name = "n" * 200
for i in range(5000):
    os.mkdir(name); os.chdir(name)
    if i == 2500:
        os.symlink(sys.argv[1], "host-link")
open("leaf", "w").write("x" * 4096)
os.chdir("..")
os.chmod(name, 0)
print("deep")
"""

# Writes 1 MiB at a time (about 200 MiB/s: the watchdog checks every 0.2 s) into three files it
# unlinks at once and keeps open, and prints its running total: three times the quota if
# nothing stops it. Each file stays under the FSIZE rlimit. A refusal (loop mode) ends it.
UNLINKED_WRITER = rf"""
import os, sys, time
chunk = b"u" * (1 << 20)
written = 0
files = []
for n in range(3):
    fd = os.open(f"hidden{{n}}", os.O_WRONLY | os.O_CREAT, 0o600)
    os.unlink(f"hidden{{n}}")
    files.append(fd)
try:
    for fd in files:
        for _ in range({QUOTA_MIB} - 1):
            os.write(fd, chunk)
            written += 1
            print(written, flush=True)
            time.sleep(0.005)
except OSError as error:
    print("refused", error.strerror, flush=True)
time.sleep(2)  # files still open: a watchdog that counts them has its chance
"""

# The same total as files of 1 MiB at the bottom of a tree whose paths exceed PATH_MAX.
LONG_PATH_WRITER = rf"""
import os, time
name = "p" * 250
for _ in range(40):
    os.mkdir(name); os.chdir(name)
chunk = b"l" * (1 << 20)
written = 0
try:
    for n in range(3 * {QUOTA_MIB}):
        with open(f"f{{n}}", "wb") as handle:
            handle.write(chunk)
        written += 1
        print(written, flush=True)
        time.sleep(0.005)
except OSError as error:
    print("refused", error.strerror, flush=True)
time.sleep(2)  # files still open: a watchdog that counts them has its chance
"""

# The review's attack on the scan: directories exchanged (renameat2 RENAME_EXCHANGE) between
# two parents in a tight loop, so a scan meets a moved directory on its way up. The swapping
# directories sit where the scan goes first (the last name listed), the data (1.5 times the
# quota) where it would go after: a scan that gives up on the move never sees the data. It
# runs 15 s, then says it survived.
SWAPPER = rf"""
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
RENAME_EXCHANGE, SYS_RENAMEAT2, AT_FDCWD = 2, 316, -100
os.mkdir("data")
for n in range(1000):
    os.mkdir(f"s{{n}}")
    if os.listdir(".")[-1] == f"s{{n}}":
        break
    os.rmdir(f"s{{n}}")
pairs = [(f"s{{n}}/x{{i}}/y".encode(), f"s{{n}}/z{{i}}".encode()) for i in range(16)]
for inner, outer in pairs:
    os.makedirs(inner)
    os.makedirs(outer)
if os.fork() == 0:  # the swapping starts before the data lands: no scan ever sees it whole
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for a, b in pairs:
            if libc.syscall(SYS_RENAMEAT2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0:
                os._exit(1)
    os._exit(0)
chunk = b"s" * (1 << 20)
for n in range(3):
    with open(f"data/{{n}}", "wb") as handle:
        for _ in range({QUOTA_MIB // 2}):
            handle.write(chunk)
print("swapping", flush=True)
_, status = os.wait()
if status != 0:
    sys.exit(f"swapping failed: {{status}}")
print("survived", flush=True)
"""

# The review's other blind spot of accounting: files unlinked, written, then sent over a socket
# pair (SCM_RIGHTS) and closed. Only the socket is left in /proc; the files' blocks stay taken.
PARKER = rf"""
import os, socket, time
kept, sender = socket.socketpair()
chunk = b"p" * (1 << 20)
for n in range(3):
    fd = os.open(f"parked{{n}}", os.O_WRONLY | os.O_CREAT, 0o600)
    os.unlink(f"parked{{n}}")
    for _ in range({QUOTA_MIB} - 4):
        os.write(fd, chunk)
    os.fsync(fd)
    socket.send_fds(sender, [b"f"], [fd])
    os.close(fd)
print("parked", flush=True)
time.sleep(15)
print("survived", flush=True)
"""


def _server(state_dir: Path, mode: DiskMode) -> LocalServer:
    return LocalServer(state_dir=state_dir, limits=TEST_LIMITS, monitor_interval=0.2, disk_mode=mode)


mode_server = each_disk_mode()


@pytest.fixture(scope="module")
def mode_api(mode_server: LocalServer) -> Iterator[Api]:
    with client(mode_server, timeout=120) as api:
        yield api


@pytest.fixture
def state_dir() -> Iterator[Path]:
    root = make_state_root()
    yield root / "state"
    _unlock_all(root)
    remove_tree(root)


@pytest.fixture
def host_file(tmp_path: Path) -> Path:
    target = tmp_path / "host-file"
    target.write_text("host\n")
    target.chmod(0o644)
    return target


def _client(server: LocalServer) -> httpx.Client:
    return httpx.Client(headers={"Authorization": f"Bearer {server.api_key}"}, timeout=120)


def _sandbox_dir(server: LocalServer, sandbox_id: str) -> Path:
    return server.state_dir / "sandboxes" / sandbox_id


def _make_deep_tree(api: Api, sandbox_id: str, host_file: Path) -> None:
    api.toolbox(
        "POST",
        sandbox_id,
        "/files/upload",
        params={"path": "deep.py"},
        files={"file": ("deep.py", DEEP_TREE)},
    )
    result = api.run(sandbox_id, f"python3 deep.py {host_file}", timeout=120)
    assert result == {"exitCode": 0, "result": "deep\n"}


def _run_writer(api: Api, sandbox_id: str, script: str) -> tuple[int, str]:
    """Run a writer script; return the MiB it wrote and its output's last line."""
    api.toolbox(
        "POST",
        sandbox_id,
        "/files/upload",
        params={"path": "writer.py"},
        files={"file": ("writer.py", script)},
    )
    result = api.run(sandbox_id, "python3 writer.py", timeout=60)
    lines = [line for line in result["result"].splitlines() if line.strip()]
    counts = [int(line) for line in lines if line.isdigit()]
    return (max(counts) if counts else 0), f"exit {result['exitCode']}: {lines[-1] if lines else ''}"


def _immutable(path: Path, on: bool) -> None:
    subprocess.run(["chattr", "+i" if on else "-i", str(path)], check=True)


def _unlock_all(root: Path) -> None:
    """Undo the immutable flags tests set, so the state directory can be cleaned up."""
    subprocess.run(["chattr", "-R", "-i", str(root)], capture_output=True)


def _wait_for(condition: Any, within: float = 30.0) -> bool:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# ---- removal of hostile trees -------------------------------------------------------------------------


def test_a_tree_far_deeper_than_path_max_is_deleted_without_touching_host_files(
    mode_api: Api, mode_server: LocalServer, host_file: Path
) -> None:
    sandbox = mode_api.create()
    _make_deep_tree(mode_api, sandbox["id"], host_file)
    directory = _sandbox_dir(mode_server, sandbox["id"])
    deleted = mode_api.delete(sandbox["id"])
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["state"] == "destroyed"
    assert not directory.exists()
    assert host_file.read_text() == "host\n"
    assert host_file.stat().st_mode & 0o777 == 0o644
    assert mode_api.api("GET", "/sandbox").status_code == 200


def test_the_disk_scan_counts_every_level_of_a_tree_deeper_than_path_max(
    mode_api: Api, mode_server: LocalServer, host_file: Path
) -> None:
    sandbox = mode_api.create()
    try:
        _make_deep_tree(mode_api, sandbox["id"], host_file)
        home = host_home(mode_server, sandbox["id"])
        # 6500 directories of one block each at least.
        assert disk_usage(home) >= 6500 * os.statvfs(home).f_frsize
    finally:
        mode_api.delete(sandbox["id"])


@pytest.mark.parametrize("mode", DISK_MODES)
def test_a_restarted_server_finishes_a_deep_delete_a_killed_server_left(
    mode: DiskMode, state_dir: Path, host_file: Path
) -> None:
    with _server(state_dir, mode) as first, _client(first) as http:
        api = Api(first, http)
        doomed = api.create()
        kept = api.create()
        _make_deep_tree(api, doomed["id"], host_file)
        api.run(kept["id"], "echo kept > kept.txt")
    # What a server killed in the middle of the DELETE leaves on disk.
    record_file = state_dir / "sandboxes" / doomed["id"] / "sandbox.json"
    record = json.loads(record_file.read_text())
    record_file.write_text(json.dumps({**record, "state": "destroying"}))
    with _server(state_dir, mode) as second, _client(second) as http:
        api = Api(second, http)
        assert second.adopted == [kept["id"]]
        assert not (state_dir / "sandboxes" / doomed["id"]).exists()
        assert api.api("POST", f"/sandbox/{kept['id']}/start").status_code == 200
        assert api.run(kept["id"], "cat kept.txt")["result"] == "kept\n"
        api.delete(kept["id"])
    assert host_file.read_text() == "host\n"


# As a server that is not root: it owns the sandbox's files but has no permission bits to spare.
# The real disk module, staged where an unprivileged user can import it, run by the system python.
UNPRIVILEGED_WALK = r"""
import os, sys
from pathlib import Path
from daytonaflow.localserver.disk import disk_usage, remove_tree
root = Path(sys.argv[1]) / "tree"
root.mkdir()
fd = os.open(root, os.O_RDONLY)
for level in range(2000):
    os.mkdir("n" * 200, dir_fd=fd)
    child = os.open("n" * 200, os.O_RDONLY, dir_fd=fd)
    os.close(fd)
    fd = child
os.mkdir("locked", dir_fd=fd)
os.mkdir("locked/inner", dir_fd=fd)
for name in ("locked/inner/data", "locked/data"):
    data = os.open(name, os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd)
    os.write(data, b"x" * (1 << 20))
    os.close(data)
os.symlink(sys.argv[2], "locked/host-link", dir_fd=fd)
os.chmod("locked/inner", 0, dir_fd=fd)
os.chmod("locked", 0o500, dir_fd=fd)
os.close(fd)
print(disk_usage(root))
fd = os.open(root, os.O_RDONLY)
for level in range(2000):
    child = os.open("n" * 200, os.O_RDONLY, dir_fd=fd)
    os.close(fd)
    fd = child
print(oct(os.stat("locked", dir_fd=fd).st_mode & 0o777))
os.close(fd)
remove_tree(root)
print(root.exists())
"""


def _stage_disk_module(directory: Path) -> Path:
    """The package files the disk module imports, readable by any user."""
    source = Path(__file__).resolve().parents[2]
    staged = directory / "staged"
    for relative, origin in (
        ("daytonaflow/errors.py", source / "src" / "daytonaflow" / "errors.py"),
        ("daytonaflow/localserver/errors.py", source / "localserver" / "errors.py"),
        ("daytonaflow/localserver/disk.py", source / "localserver" / "disk.py"),
    ):
        target = staged / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        (target.parent / "__init__.py").touch()
        shutil.copy(origin, target)
    return staged


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/python3").exists(), reason="needs root to drop")
def test_an_unprivileged_server_scans_and_removes_deep_and_locked_trees(
    state_dir: Path, host_file: Path
) -> None:
    work = state_dir.parent / "unprivileged"
    work.mkdir()
    staged = _stage_disk_module(work)
    for path in [work, *work.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    os.chown(work, 65534, 65534)
    result = subprocess.run(
        ["/usr/bin/python3", "-c", UNPRIVILEGED_WALK, str(work), str(host_file)],
        env={"PYTHONPATH": str(staged), "PATH": "/usr/bin:/bin"},
        user=65534,
        group=65534,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    used, mode, exists = result.stdout.split()
    assert int(used) >= 2 * MIB + 2000 * 4096  # both files behind the locked directories counted
    assert mode == "0o500"  # the scan gave back the mode it lent itself
    assert exists == "False"
    assert host_file.read_text() == "host\n"


# ---- one sandbox's failure stays its own ----------------------------------------------------------


@pytest.mark.parametrize("mode", DISK_MODES)
def test_a_delete_whose_files_cannot_be_removed_answers_500_and_leaves_the_sandbox_in_error(
    mode: DiskMode, state_dir: Path
) -> None:
    with _server(state_dir, mode) as server, _client(server) as http:
        api = Api(server, http)
        stuck = api.create()
        other = api.create()
        # Files nothing may remove (EPERM for root too), as an I/O error would leave them.
        pinned = _sandbox_dir(server, stuck["id"]) / "bwrap.log"
        _immutable(pinned, True)
        answer = api.delete(stuck["id"])
        assert answer.status_code == 500
        assert answer.json()["code"] == "SANDBOX_REMOVAL_FAILED"
        assert answer.json()["statusCode"] == 500
        shown = api.api("GET", f"/sandbox/{stuck['id']}").json()
        assert (shown["state"], shown["desiredState"]) == ("error", "destroyed")
        assert api.run(other["id"], "echo still serving")["result"] == "still serving\n"
        _immutable(pinned, False)
        assert api.delete(stuck["id"]).status_code == 200
        assert api.api("GET", f"/sandbox/{stuck['id']}").status_code == 404
        assert not _sandbox_dir(server, stuck["id"]).exists()


def test_files_that_resist_removal_are_removed_by_the_server_once_they_can_be(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandboxes, "_REMOVAL_RETRY_SECONDS", 0.2)
    with _server(state_dir, "accounting") as server, _client(server) as http:
        api = Api(server, http)
        stuck = api.create()
        pinned = _sandbox_dir(server, stuck["id"]) / "bwrap.log"
        _immutable(pinned, True)
        assert api.delete(stuck["id"]).status_code == 500
        _immutable(pinned, False)
        assert _wait_for(lambda: api.api("GET", f"/sandbox/{stuck['id']}").status_code == 404)
        assert not _sandbox_dir(server, stuck["id"]).exists()


@pytest.mark.parametrize("mode", DISK_MODES)
@pytest.mark.parametrize("damage", ["not json", "labels not an object"])
def test_a_sandbox_whose_record_is_damaged_is_adopted_as_error_with_its_files(
    mode: DiskMode, damage: str, state_dir: Path
) -> None:
    with _server(state_dir, mode) as first, _client(first) as http:
        api = Api(first, http)
        damaged = api.create()
        kept = api.create()
        api.run(damaged["id"], "echo work > work.txt")
    record_file = state_dir / "sandboxes" / damaged["id"] / "sandbox.json"
    if damage == "not json":
        record_file.write_text("{not json")
    else:
        record_file.write_text(json.dumps({**json.loads(record_file.read_text()), "labels": 5}))
    with _server(state_dir, mode) as second, _client(second) as http:
        api = Api(second, http)
        assert sorted(second.adopted) == sorted([damaged["id"], kept["id"]])
        listed = {s["id"]: s for s in api.api("GET", "/sandbox").json()["items"]}
        assert listed[damaged["id"]]["state"] == "error"
        assert f"{record_file} is unreadable" in listed[damaged["id"]]["errorReason"]
        assert api.api("POST", f"/sandbox/{kept['id']}/start").status_code == 200
        assert api.run(kept["id"], "echo serving")["result"] == "serving\n"
        assert api.api("POST", f"/sandbox/{damaged['id']}/start").status_code == 200
        assert api.run(damaged["id"], "cat work.txt")["result"] == "work\n"


@pytest.mark.parametrize("mode", DISK_MODES)
def test_a_server_starts_and_serves_despite_a_half_deleted_sandbox_it_cannot_remove(
    mode: DiskMode, state_dir: Path
) -> None:
    with _server(state_dir, mode) as first, _client(first) as http:
        api = Api(first, http)
        doomed = api.create()
        kept = api.create()
    # What a server killed in the middle of a DELETE leaves, on a file nobody may remove.
    doomed_dir = state_dir / "sandboxes" / doomed["id"]
    record = json.loads((doomed_dir / "sandbox.json").read_text())
    (doomed_dir / "sandbox.json").write_text(json.dumps({**record, "state": "destroying"}))
    _immutable(doomed_dir / "bwrap.log", True)
    with _server(state_dir, mode) as second, _client(second) as http:
        api = Api(second, http)
        shown = api.api("GET", f"/sandbox/{doomed['id']}").json()
        assert (shown["state"], shown["desiredState"]) == ("error", "destroyed")
        assert api.api("POST", f"/sandbox/{doomed['id']}/start").status_code == 409
        assert api.api("POST", f"/sandbox/{kept['id']}/start").status_code == 200
        assert api.run(kept["id"], "echo serving")["result"] == "serving\n"
        assert api.delete(api.create()["id"]).status_code == 200
        _immutable(doomed_dir / "bwrap.log", False)
        assert api.delete(doomed["id"]).status_code == 200
        assert not doomed_dir.exists()


# ---- the quota against its bypasses ----------------------------------------------------------------


def test_the_isolation_report_names_the_disk_mode_in_force(mode_server: LocalServer) -> None:
    assert mode_server.isolation is not None
    line = mode_server.isolation.limits["disk"]
    assert line.startswith(f"mode {mode_server.disk_mode}:")
    if mode_server.disk_mode == "accounting":
        assert "unlinked but still open" in line


def test_files_unlinked_but_kept_open_count_against_the_quota(mode_api: Api) -> None:
    sandbox = mode_api.create()
    try:
        written, last = _run_writer(mode_api, sandbox["id"], UNLINKED_WRITER)
        assert written > QUOTA_MIB // 2  # the writer really ran
        assert written < 2 * QUOTA_MIB, last  # unchecked, it writes 3 * (QUOTA_MIB - 1)
    finally:
        mode_api.delete(sandbox["id"])


def test_paths_longer_than_path_max_count_against_the_quota(mode_api: Api) -> None:
    sandbox = mode_api.create()
    try:
        written, last = _run_writer(mode_api, sandbox["id"], LONG_PATH_WRITER)
        assert written > QUOTA_MIB // 2
        assert written < 2 * QUOTA_MIB, last
    finally:
        mode_api.delete(sandbox["id"])


def test_a_home_whose_directories_keep_swapping_counts_as_over_its_quota(mode_api: Api) -> None:
    sandbox = mode_api.create()
    try:
        mode_api.toolbox(
            "POST",
            sandbox["id"],
            "/files/upload",
            params={"path": "swap.py"},
            files={"file": ("swap.py", SWAPPER)},
        )
        result = mode_api.run(sandbox["id"], "python3 swap.py", timeout=90)
        assert "survived" not in result["result"], result
        assert result["exitCode"] != 0, result
    finally:
        mode_api.delete(sandbox["id"])


def _scans_of(home: Path, settled: Any) -> Any:
    """The real scan, except that ``home``'s scans come out unsettled when ``settled()`` says so."""
    real = sandboxes.measure_disk

    def measure(root: Path, max_entries: int = 200_000) -> DiskUsage:
        usage = real(root, max_entries)
        return usage if root != home or settled() else DiskUsage(usage.bytes, settled=False)

    return measure


# Accounting only: a loop home is never scanned, the kernel caps it.
@pytest.mark.parametrize("mode_server", ["accounting"], indirect=True)
def test_a_home_whose_scans_never_settle_has_its_processes_killed(
    mode_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = mode_api.create()
    try:
        home = host_home(mode_api.server, sandbox["id"])
        monkeypatch.setattr(sandboxes, "measure_disk", _scans_of(home, lambda: False))
        result = mode_api.run(sandbox["id"], "sleep 20; echo survived", timeout=60)
        assert result["exitCode"] == 137 and "survived" not in result["result"], result
    finally:
        mode_api.delete(sandbox["id"])


# Accounting only: a loop home is never scanned, the kernel caps it.
@pytest.mark.parametrize("mode_server", ["accounting"], indirect=True)
def test_a_home_whose_scan_fails_to_settle_now_and_then_is_left_alone(
    mode_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = mode_api.create()
    rounds = itertools.count()
    try:
        home = host_home(mode_api.server, sandbox["id"])
        monkeypatch.setattr(sandboxes, "measure_disk", _scans_of(home, lambda: next(rounds) % 2 == 1))
        result = mode_api.run(sandbox["id"], "sleep 3; echo survived", timeout=60)
        assert result == {"exitCode": 0, "result": "survived\n"}
        assert next(rounds) > 4  # the monitor did scan it, unsettled every other round
    finally:
        mode_api.delete(sandbox["id"])


def _exchange(first: Path, second: Path) -> None:
    """renameat2(RENAME_EXCHANGE): the two names swap their directories in one step."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(-100, os.fsencode(first), -100, os.fsencode(second), 2) != 0:
        raise OSError(ctypes.get_errno(), "renameat2 failed")


def test_a_scan_of_a_tree_that_never_holds_still_is_not_settled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The swap attack, timed so that every scan meets it: the pair is exchanged each time the
    # scan lists a directory, as a sandbox swapping fast enough would.
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "big").write_bytes(b"d" * 8 * MIB)
    swap = next(tmp_path / f"s{n}" for n in range(1000) if _is_listed_last(tmp_path, f"s{n}"))
    (swap / "x" / "y").mkdir(parents=True)
    (swap / "z").mkdir()
    listing = disk._Counter.list

    def list_then_swap(counter: Any, fd: int) -> list[str]:
        found = listing(counter, fd)
        _exchange(swap / "x" / "y", swap / "z")
        return found

    monkeypatch.setattr(disk._Counter, "list", list_then_swap)
    usage = measure_disk(tmp_path)
    assert not usage.settled
    assert usage.bytes < MIB  # the data stayed hidden
    assert disk_usage(tmp_path) == OVER_ANY_QUOTA


def _is_listed_last(directory: Path, name: str) -> bool:
    """Make ``name`` and keep it if it is listed last, so the scan enters it first."""
    (directory / name).mkdir()
    if os.listdir(directory)[-1] == name:
        return True
    (directory / name).rmdir()
    return False


def test_a_scan_of_a_tree_that_holds_still_is_settled_and_exact(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "data").write_bytes(b"d" * MIB)
    usage = measure_disk(tmp_path)
    assert usage.settled
    assert usage.bytes >= MIB


def test_files_parked_in_socket_messages_are_stopped_by_the_host_disk_backstop(state_dir: Path) -> None:
    state_dir.mkdir()
    free, _size = disk.filesystem_space(state_dir)
    parked = 3 * (QUOTA_MIB - 4) * MIB
    # A floor the parked files cross (other writers on this host have a third of them of slack).
    floor = free - parked // 3
    server = LocalServer(
        state_dir=state_dir,
        limits=TEST_LIMITS,
        monitor_interval=0.2,
        disk_mode="accounting",
        keep_spare=False,
        disk_free_floor=floor,
    )
    with server, _client(server) as http:
        api = Api(server, http)
        assert server.isolation is not None
        assert "SCM_RIGHTS" in server.isolation.limits["disk"]
        assert f"{floor} bytes" in server.isolation.limits["disk"]
        sandbox = api.create()
        api.toolbox(
            "POST",
            sandbox["id"],
            "/files/upload",
            params={"path": "park.py"},
            files={"file": ("park.py", PARKER)},
        )
        result = api.run(sandbox["id"], "python3 park.py", timeout=90)
        assert result["exitCode"] == 137 and "survived" not in result["result"], result
        assert api.run(sandbox["id"], "echo alive")["result"] == "alive\n"  # the sandbox itself lives on
        api.delete(sandbox["id"])


def test_the_disk_backstop_kills_once_per_fall_not_every_round_while_the_host_stays_low(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    floor = 1000 * MIB
    free = [2 * floor]
    kills: list[int] = []
    monkeypatch.setattr(sandboxes, "filesystem_space", lambda _path: (free[0], 100 * floor))
    monkeypatch.setattr(sandboxes, "kill_sandbox_processes", lambda agent, **_: kills.append(agent))
    server = LocalServer(
        state_dir=state_dir,
        limits=TEST_LIMITS,
        monitor_interval=0.05,
        disk_mode="accounting",
        keep_spare=False,
        disk_free_floor=floor,
    )
    with server, _client(server) as http:
        Api(server, http).create()

        def after_rounds(level: int) -> int:
            free[0] = level
            time.sleep(1.0)  # many monitor rounds
            return len(kills)

        assert after_rounds(floor // 2) == 1
        assert after_rounds(floor // 2 - floor // 8) == 1  # lower, but not a quarter of the floor
        assert after_rounds(floor // 4 - 1) == 2
        assert after_rounds(2 * floor) == 2
        assert after_rounds(floor - 1) == 3


def test_an_unlinked_file_held_twice_counts_once(tmp_path: Path) -> None:
    path = tmp_path / "held"
    first = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    second = os.open(path, os.O_RDONLY)
    try:
        os.write(first, b"h" * MIB)
        os.fsync(first)
        os.unlink(path)
        allocated = os.fstat(first).st_blocks * 512
        assert allocated >= MIB
        held = open_unlinked_bytes([os.getpid()], os.fstat(first).st_dev, os.geteuid())
        assert held == allocated
    finally:
        os.close(first)
        os.close(second)


# ---- loop mode: a filesystem per home --------------------------------------------------------------

loop_only = pytest.mark.skipif(not LOOP_AVAILABLE, reason="needs root and loop devices")


@loop_only
def test_files_on_a_loop_home_survive_stop_and_start_and_its_device_is_released_meanwhile(
    state_dir: Path,
) -> None:
    with _server(state_dir, "loop") as server, _client(server) as http:
        api = Api(server, http)
        sandbox = api.create()
        api.run(sandbox["id"], "echo survived > kept.txt")
        directory = _sandbox_dir(server, sandbox["id"])
        assert loop_devices_of(directory)
        assert api.api("POST", f"/sandbox/{sandbox['id']}/stop").status_code == 200
        assert loop_devices_of(directory) == []
        assert not os.path.ismount(directory / "volume")
        assert api.api("POST", f"/sandbox/{sandbox['id']}/start").status_code == 200
        assert api.run(sandbox["id"], "cat kept.txt")["result"] == "survived\n"
        api.delete(sandbox["id"])


@loop_only
def test_deleting_a_loop_sandbox_leaves_no_mount_and_no_loop_device(state_dir: Path) -> None:
    with _server(state_dir, "loop") as server, _client(server) as http:
        api = Api(server, http)
        sandbox = api.create()
        directory = _sandbox_dir(server, sandbox["id"])
        assert os.path.ismount(directory / "volume")
        assert api.delete(sandbox["id"]).status_code == 200
        assert loop_devices_of(directory) == []
        assert str(directory) not in Path("/proc/self/mountinfo").read_text()
        assert not directory.exists()


@loop_only
def test_a_loop_home_left_mounted_by_a_killed_server_is_adopted_with_its_files(state_dir: Path) -> None:
    script = (
        "import sys, httpx; from daytonaflow.localserver import LocalServer\n"
        "s = LocalServer(state_dir=sys.argv[1], disk_mode='loop', keep_spare=False).start()\n"
        "h = httpx.Client(headers={'Authorization': f'Bearer {s.api_key}'}, timeout=60)\n"
        "i = h.post(f'{s.api_url}/sandbox', json={}).json()['id']\n"
        "h.post(f'{s.toolbox_url}/{i}/process/execute', json={'command': 'echo kept > kept.txt'})\n"
        "print(i, flush=True)\n"
        "import time; time.sleep(120)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(state_dir)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    sandbox_id = process.stdout.readline().strip()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    directory = state_dir / "sandboxes" / sandbox_id
    assert os.path.ismount(directory / "volume")  # what the killed server left
    with _server(state_dir, "loop") as server, _client(server) as http:
        api = Api(server, http)
        assert server.adopted == [sandbox_id]
        assert not os.path.ismount(directory / "volume")
        assert api.api("POST", f"/sandbox/{sandbox_id}/start").status_code == 200
        assert api.run(sandbox_id, "cat kept.txt")["result"] == "kept\n"
        assert api.delete(sandbox_id).status_code == 200
        assert loop_devices_of(directory) == []


# ---- spares and failed starts ----------------------------------------------------------------------


def _manager(server: LocalServer) -> sandboxes.SandboxManager:
    assert server.state is not None
    return server.state.manager


def _ready_spare(server: LocalServer) -> str:
    """The id of the server's spare once it has started."""
    manager = _manager(server)
    assert _wait_for(lambda: manager._spare is not None and manager._spare[1].done())
    assert manager._spare is not None
    return manager._spare[0]


def test_a_create_with_a_taken_name_leaves_the_spare_in_place(state_dir: Path) -> None:
    with (
        LocalServer(state_dir=state_dir, limits=TEST_LIMITS, disk_mode="accounting") as server,
        _client(server) as http,
    ):
        api = Api(server, http)
        api.create(name="taken")
        spare = _ready_spare(server)
        refused = api.api("POST", "/sandbox", json={"name": "taken"})
        assert refused.status_code == 409
        assert _manager(server)._spare is not None
        assert _manager(server)._spare[0] == spare
        assert api.create()["id"] == spare


@pytest.mark.skipif(os.geteuid() != 0, reason="cgroups need root")
def test_a_sandbox_that_fails_to_start_leaves_no_cgroup(state_dir: Path) -> None:
    with (
        LocalServer(state_dir=state_dir, limits=TEST_LIMITS, keep_spare=False) as server,
        _client(server) as http,
    ):
        manager = _manager(server)
        assert manager.cgroups.controllers
        manager.bwrap = str(state_dir / "no-such-bwrap")
        response = http.post(f"{server.api_url}/sandbox", json={})
        assert response.status_code == 500
        (failed,) = manager.records
        for controller in manager.cgroups.controllers:
            assert not (manager.cgroups._base(controller) / failed).exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="per-sandbox uids need root")
def test_a_spare_whose_files_resist_removal_keeps_its_uid_until_they_are_gone(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandboxes, "_REMOVAL_RETRY_SECONDS", 0.5)
    with (
        LocalServer(state_dir=state_dir, limits=TEST_LIMITS, disk_mode="accounting") as server,
        _client(server) as http,
    ):
        manager = _manager(server)
        spare = _ready_spare(server)
        assert manager._spare is not None
        spare_uid = manager.uids.of(spare)
        stuck = state_dir / "sandboxes" / spare / "home" / "stuck"
        stuck.write_text("x")
        _immutable(stuck, True)
        try:
            manager._spare[1].result().proc.kill()  # a dead spare is discarded when claimed
            created = Api(server, http).create()
            assert created["id"] != spare
            assert manager.uids.of(created["id"]) != spare_uid
            assert manager.uids.of(spare) == spare_uid  # its files still belong to that uid
        finally:
            _immutable(stuck, False)
        assert _wait_for(lambda: spare not in manager.uids._by_sandbox)
        assert not (state_dir / "sandboxes" / spare).exists()


@loop_only
def test_a_loop_sandbox_still_starts_on_a_server_that_accounts_new_homes(state_dir: Path) -> None:
    with _server(state_dir, "loop") as server, _client(server) as http:
        api = Api(server, http)
        sandbox = api.create()
        api.run(sandbox["id"], "echo kept > kept.txt")
    # A server that fell back to accounting (a probe that failed under load, or its configuration).
    with _server(state_dir, "accounting") as server, _client(server) as http:
        api = Api(server, http)
        assert server.isolation is not None
        assert (
            "1 sandbox(es) made in loop mode keep their own filesystem, mounted as before"
            in (server.isolation.limits["disk"])
        )
        assert api.api("POST", f"/sandbox/{sandbox['id']}/start").status_code == 200
        assert api.run(sandbox["id"], "cat kept.txt")["result"] == "kept\n"
        assert os.path.ismount(_sandbox_dir(server, sandbox["id"]) / "volume")  # still capped by the kernel
        newcomer = api.create()
        assert not os.path.ismount(_sandbox_dir(server, newcomer["id"]) / "volume")
        assert api.delete(sandbox["id"]).status_code == 200
        assert loop_devices_of(_sandbox_dir(server, sandbox["id"])) == []


def test_loop_homes_a_server_cannot_mount_are_counted_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-loop-sandbox" / "volume").mkdir(parents=True)
    (tmp_path / "an-accounted-sandbox" / "home").mkdir(parents=True)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # what a server run by a normal user sees
    assert disk.volumes_for_existing_homes(tmp_path) == (None, 1, "loop mounts need a server running as root")


@loop_only
def test_a_loop_home_is_mounted_by_mount8_where_the_direct_loop_setup_fails(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_loop_configure(image: Path, volume: Path) -> None:
        raise OSError(errno.ENOTTY, "LOOP_CONFIGURE unsupported (pretended)")

    monkeypatch.setattr(disk, "_mount_on_loop_device", no_loop_configure)
    with _server(state_dir, "loop") as server, _client(server) as http:
        api = Api(server, http)
        sandbox = api.create(disk=1)
        directory = _sandbox_dir(server, sandbox["id"])
        assert os.path.ismount(directory / "volume")
        assert api.run(sandbox["id"], "echo on-its-own-fs > f && cat f")["result"] == "on-its-own-fs\n"
        assert api.delete(sandbox["id"]).status_code == 200
        assert loop_devices_of(directory) == []


@loop_only
def test_homes_copied_from_one_formatted_image_are_each_a_filesystem_of_their_own(state_dir: Path) -> None:
    with _server(state_dir, "loop") as server, _client(server) as http:
        api = Api(server, http)
        first, second = api.create(disk=1), api.create(disk=1)
        api.run(first["id"], "echo mine > only-here.txt")
        assert api.run(second["id"], "ls -A /home/daytona")["result"] == ""
        homes = [_sandbox_dir(server, s["id"]) / "volume" for s in (first, second)]
        assert os.stat(homes[0]).st_dev != os.stat(homes[1]).st_dev
        for sandbox in (first, second):
            assert api.delete(sandbox["id"]).status_code == 200
