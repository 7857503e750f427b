"""Per-sandbox kernel quotas: one sandbox using up its own share leaves its neighbours theirs.

The kernel counts inotify instances, POSIX message queue bytes and more per host uid, and ptys
per devpts instance within one host-wide pool; these tests run against a root server, which gives
each sandbox its own uid and its own devpts instance. The module's server asks for far more open
files per process than the host's file table allows, so the cap to a share of it is in force.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from localserver_testkit import MIB, TEST_LIMITS, Api, host_home, make_state_root, served

from daytonaflow.localserver import LocalServer, cli, sandboxes
from daytonaflow.localserver import server as server_module
from daytonaflow.localserver.errors import UnsafeSandboxUidsError
from daytonaflow.localserver.isolation import (
    DEFAULT_SANDBOX_UIDS,
    FILE_TABLE_PRESSURE,
    FILE_TABLE_SHARE,
    SandboxUids,
    host_file_max,
    host_files_in_use,
)
from daytonaflow.localserver.sandboxes import _agent_pid

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(os.geteuid() != 0, reason="a uid and a devpts instance per sandbox need root"),
]

QUOTA_LIMITS = replace(TEST_LIMITS, ptys=8, shm_bytes=8 * MIB, open_files=1_000_000)

_TAKE = """
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
def check(result):
    if result < 0:
        raise OSError(ctypes.get_errno(), "refused")
    return result
def take(resource, index):
    if resource == "pty":
        return os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY)
    if resource == "inotify":
        return check(libc.inotify_init1(0))
    return check(libc.mq_open(b"/q%d" % index, os.O_CREAT | os.O_RDWR, 0o600, None))
"""
# Takes one resource until the kernel refuses, keeps what it got, and writes "<count> <errno>" to
# the marker file named by its second argument.
_EXHAUST = (
    _TAKE
    + """
held = []
try:
    while len(held) < 100000:
        held.append(take(sys.argv[1], len(held)))
except OSError as error:
    refusal = error.errno
with open(sys.argv[2] + ".tmp", "w") as marker:
    marker.write(f"{len(held)} {refusal}")
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
time.sleep(600)
"""
)
_TAKE_ONE = _TAKE + "print(take(sys.argv[1], 0))\n"
_EMFILE = 24
_ENOSPC = 28


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with served(limits=QUOTA_LIMITS) as instance:
        yield instance


@pytest.fixture
def attacker(api: Api) -> Iterator[dict[str, Any]]:
    created = api.create(labels={"role": "attacker"})
    yield created
    api.delete(created["id"])


def _home(server: LocalServer, sandbox: dict[str, Any]) -> Path:
    return host_home(server, sandbox["id"])


def _uid_of_agent(server: LocalServer, sandbox: dict[str, Any]) -> int:
    assert server.state is not None
    agent = _agent_pid(server.state.manager.running[sandbox["id"]].proc.pid)
    status = Path(f"/proc/{agent}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def _uid_in_records(api: Api, sandbox: dict[str, Any]) -> int:
    assert api.server.state is not None
    manager = api.server.state.manager
    return manager.uid_of(manager.get(sandbox["id"]))


def _exhaust(api: Api, server: LocalServer, sandbox: dict[str, Any], resource: str) -> tuple[int, int]:
    """Run the exhausting script in the background; return what it held and why it stopped."""
    home = _home(server, sandbox)
    marker = home / f"{resource}.held"
    (home / "exhaust.py").write_text(_EXHAUST)
    api.run(sandbox["id"], f"nohup python3 exhaust.py {resource} {marker.name} >/dev/null 2>&1 &")
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < deadline, f"the {resource} flood never finished"
        time.sleep(0.05)
    count, refusal = marker.read_text().split()
    return int(count), int(refusal)


def _take_one(api: Api, server: LocalServer, sandbox: dict[str, Any], resource: str) -> dict[str, Any]:
    (_home(server, sandbox) / "take.py").write_text(_TAKE_ONE)
    return api.run(sandbox["id"], f"python3 take.py {resource}")


@pytest.mark.parametrize(
    ("resource", "own_quota", "refusal"),
    [("pty", QUOTA_LIMITS.ptys, _ENOSPC), ("inotify", None, _EMFILE), ("mqueue", None, _EMFILE)],
)
def test_a_sandbox_that_exhausts_its_quota_leaves_its_neighbour_its_own(
    api: Api,
    server: LocalServer,
    attacker: dict[str, Any],
    neighbour: dict[str, Any],
    resource: str,
    own_quota: int | None,
    refusal: int,
) -> None:
    held, errno = _exhaust(api, server, attacker, resource)
    assert errno == refusal
    assert held > 0
    if own_quota is not None:
        assert held == own_quota
    taken = _take_one(api, server, neighbour, resource)
    assert taken["exitCode"] == 0, taken["result"]
    assert taken["result"].strip().isdigit()


def test_sandboxes_run_as_distinct_host_uids_that_own_their_homes(
    api: Api, server: LocalServer, attacker: dict[str, Any], neighbour: dict[str, Any]
) -> None:
    uids = {_uid_of_agent(server, sandbox) for sandbox in (attacker, neighbour)}
    assert len(uids) == 2
    assert uids <= set(DEFAULT_SANDBOX_UIDS)
    for sandbox in (attacker, neighbour):
        assert _home(server, sandbox).stat().st_uid == _uid_of_agent(server, sandbox)
    assert server.isolation is not None
    assert "one host uid per sandbox" in server.isolation.limits["uids"]


def test_a_deleted_sandboxs_uid_is_handed_out_again(api: Api) -> None:
    # Limits of their own, so neither is the spare, whose uid stays taken throughout.
    first = api.create(cpu=2)
    uid = _uid_in_records(api, first)
    api.delete(first["id"])
    second = api.create(cpu=2)
    try:
        assert _uid_in_records(api, second) == uid  # the lowest free uid: the deleted one's
    finally:
        api.delete(second["id"])


def test_dev_shm_is_a_tmpfs_of_the_configured_size(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any]
) -> None:
    result = api.run(
        attacker["id"],
        "dd if=/dev/zero of=/dev/shm/fill bs=1M count=64 2>&1; stat -c %s /dev/shm/fill; stat -c %a /dev/shm",
        timeout=30,
    )
    assert "No space left on device" in result["result"]
    size, mode = result["result"].split()[-2:]
    assert int(size) <= QUOTA_LIMITS.shm_bytes
    assert mode == "1777"


def test_open_files_per_sandbox_fill_at_most_a_share_of_the_host_file_table(
    api: Api, server: LocalServer, attacker: dict[str, Any]
) -> None:
    file_max = host_file_max()
    per_process = int(api.run(attacker["id"], "ulimit -n")["result"])
    assert QUOTA_LIMITS.pids * per_process <= FILE_TABLE_SHARE * file_max
    assert per_process < QUOTA_LIMITS.open_files  # the request really was capped
    # A process stops at the cap; its forks share those files rather than adding to the table.
    code = (
        "import os\\nn = 0\\ntry:\\n    while True:\\n        os.open('/dev/null', os.O_RDONLY); n += 1\\n"
        "except OSError as e:\\n    print(n, e.errno)\\nfor _ in range(3):\\n    if os.fork() == 0:\\n"
        "        os._exit(0)\\n"
    )
    result = api.run(attacker["id"], f'printf "{code}" > fds.py; python3 fds.py', timeout=60)
    opened, errno = result["result"].split()
    assert int(errno) == _EMFILE
    assert int(opened) < per_process
    assert server.isolation is not None
    assert f"NOFILE={per_process}" in server.isolation.limits["openFiles"]


@contextlib.contextmanager
def _served(state_dir: Path, **options: Any) -> Iterator[Api]:
    """A server of its own on ``state_dir``, without a spare, and a client of it."""
    with (
        LocalServer(state_dir=state_dir, limits=TEST_LIMITS, keep_spare=False, **options) as server,
        httpx.Client(headers={"Authorization": f"Bearer {server.api_key}"}, timeout=60) as http,
    ):
        yield Api(server, http)


_MAPPINGS_SCRIPT = """
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
c = ctypes
libc.mmap.argtypes = [c.c_void_p, c.c_size_t, c.c_int, c.c_int, c.c_int, c.c_long]
with open("page", "wb") as page:
    page.write(bytes(4096))
for _ in range({count}):
    fd = os.open("page", os.O_RDONLY)
    if libc.mmap(None, 4096, 1, 1, fd, 0) in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap")
    os.close(fd)  # the mapping keeps the file open: it stays in the host's file table
print("HELD", flush=True)
time.sleep(30)
print("ESCAPED", flush=True)
"""


def test_a_sandbox_holding_files_through_mappings_past_its_share_is_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Descriptors are capped by RLIMIT_NOFILE; files kept open only by a mapping are not, so the
    monitor counts them. A small pretend file table makes the share small enough to test."""
    pretend_file_max = 80_000
    budget = int(pretend_file_max * FILE_TABLE_SHARE)
    monkeypatch.setattr(server_module, "host_file_max", lambda: pretend_file_max)
    root = make_state_root()
    try:
        with _served(root / "state", monitor_interval=0.2) as api:
            neighbour, attacker = api.create(), api.create()
            (_home(api.server, attacker) / "maps.py").write_text(
                _MAPPINGS_SCRIPT.format(count=budget * 3 // 2)
            )
            response = api.toolbox(
                "POST", attacker["id"], "/process/execute", json={"command": "python3 maps.py", "timeout": 90}
            )
            assert response.status_code == 200, response.text
            assert response.json()["exitCode"] == 137, response.text
            assert "ESCAPED" not in response.json()["result"]
            assert api.run(neighbour["id"], "echo unaffected")["result"] == "unaffected\n"
            assert api.run(attacker["id"], "echo still-served")["result"] == "still-served\n"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_sandboxs_uid_survives_a_server_restart() -> None:
    root = make_state_root()
    try:
        with _served(root / "state") as api:
            api.create()  # takes the lowest uid, so that the one kept below is not the first
            kept = api.create(name="kept")
            api.run(kept["id"], "echo data > file.txt")
            uid = _uid_in_records(api, kept)
        with _served(root / "state") as api:
            assert api.api("POST", f"/sandbox/{kept['id']}/start").status_code == 200
            assert _uid_in_records(api, kept) == uid
            assert _uid_of_agent(api.server, kept) == uid
            # Its old files are still its own: it can change them.
            changed = api.run(kept["id"], "echo more >> file.txt && cat file.txt")
            assert changed["result"] == "data\nmore\n"
            assert _uid_in_records(api, api.create()) != uid
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_record_from_before_per_sandbox_uids_keeps_its_homes_owner() -> None:
    """Such records predate loop-mounted homes too: their home is a plain directory."""
    root = make_state_root()
    try:
        with _served(root / "state", disk_mode="accounting") as api:
            api.create()
            old = api.create(name="old")
            uid = _uid_in_records(api, old)
        record_file = root / "state" / "sandboxes" / old["id"] / "sandbox.json"
        record = json.loads(record_file.read_text())
        del record["host_uid"]
        record_file.write_text(json.dumps(record))
        with _served(root / "state", disk_mode="accounting") as api:
            assert _uid_in_records(api, old) == uid
            assert json.loads(record_file.read_text())["host_uid"] == uid
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_without_a_uid_range_sandboxes_share_one_uid_and_the_report_says_so() -> None:
    root = make_state_root()
    try:
        with _served(root / "state", sandbox_uids=None, private_ptys=False) as api:
            one, two = api.create(), api.create()
            assert _uid_of_agent(api.server, one) == _uid_of_agent(api.server, two) == 65534
            mounts = api.run(one["id"], "grep ' /dev/pts ' /proc/self/mountinfo")["result"]
            assert "max=" not in mounts
            assert api.server.isolation is not None
            limits = api.server.isolation.limits
        assert "share host uid 65534" in limits["uids"]
        assert "all sandboxes share one" in limits["kernelQuotas"]
        assert "no per-sandbox limit" in limits["ptys"]
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize(
    ("text", "uids"),
    [("1900100000-1900100009", range(1900100000, 1900100010)), ("7-7", range(7, 8)), ("shared", None)],
)
def test_serve_takes_the_sandbox_uid_range_from_its_flag(text: str, uids: range | None) -> None:
    assert cli._parser().parse_args(["--sandbox-uids", text]).sandbox_uids == uids


@pytest.mark.parametrize(
    "text",
    [
        "1900100009-1900100000",
        "0-5",
        "abc",
        "5",
        "-5-7",
        "1-4294967296",
        "4294967295-4294967295",
        "2147483000-2147483648",
        "65530-65540",
        "65535-65535",
    ],
)
def test_serve_refuses_a_bad_sandbox_uid_range_naming_the_flag(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli._parser().parse_args(["--sandbox-uids", text])
    assert exit_info.value.code == 2
    assert "--sandbox-uids" in capsys.readouterr().err


def test_a_uid_range_smaller_than_the_sandboxes_refuses_the_extra_one_with_503() -> None:
    root = make_state_root()
    try:
        with _served(root / "state", sandbox_uids=range(1900200000, 1900200002)) as api:
            api.create()
            api.create()
            refused = api.api("POST", "/sandbox", json={})
            assert refused.status_code == 503
            assert refused.json()["code"] == "SANDBOX_UIDS_EXHAUSTED"
            assert "1900200000-1900200001" in refused.json()["message"]
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize(
    "uids",
    [
        range(4294967295, 4294967296),  # (uid_t)-1: setuid(-1) keeps the caller's root
        range(0, 10),
        range(2147483647, 2147483649),
        range(65534, 65535),
        range(65500, 65600),
    ],
)
def test_an_unsafe_sandbox_uid_range_is_refused_before_any_sandbox_runs(uids: range) -> None:
    with pytest.raises(UnsafeSandboxUidsError):
        SandboxUids(uids, claims=None)
    with pytest.raises(UnsafeSandboxUidsError):
        LocalServer(state_dir=make_state_root() / "state", sandbox_uids=uids)


_CLAIM_TEST_UIDS = range(1900400000, 1900400010)


def _record_uid(state_dir: Path, sandbox_id: str) -> int:
    uid: int = json.loads((state_dir / "sandboxes" / sandbox_id / "sandbox.json").read_text())["host_uid"]
    return uid


def test_two_root_servers_give_their_sandboxes_distinct_uids() -> None:
    root = make_state_root()
    try:
        with (
            _served(root / "one", sandbox_uids=_CLAIM_TEST_UIDS) as one,
            _served(root / "two", sandbox_uids=_CLAIM_TEST_UIDS) as two,
        ):
            first, second = one.create(), two.create()
            assert _uid_of_agent(one.server, first) != _uid_of_agent(two.server, second)
            assert {_uid_in_records(one, first), _uid_in_records(two, second)} <= set(_CLAIM_TEST_UIDS)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _serve_in_a_process(state_dir: Path, uids: range) -> tuple[subprocess.Popen[str], str]:
    command = "import sys; from daytonaflow.localserver.cli import main; sys.exit(main(sys.argv[1:]))"
    flags = ["--port", "0", "--api-key", "k", "--state-dir", str(state_dir)]
    flags += ["--sandbox-uids", f"{uids.start}-{uids.stop - 1}"]
    process = subprocess.Popen(
        [sys.executable, "-c", command, *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    banner = ""
    while "Serving" not in banner:
        line = process.stdout.readline()
        assert line, banner
        banner += line
    api_url = next(
        line.split(":", 1)[1].strip() for line in banner.splitlines() if line.startswith("API URL")
    )
    return process, api_url


def test_a_killed_servers_uids_are_free_for_another_server() -> None:
    root = make_state_root()
    try:
        process, api_url = _serve_in_a_process(root / "killed", _CLAIM_TEST_UIDS)
        try:
            with httpx.Client(headers={"Authorization": "Bearer k"}, timeout=60) as http:
                created = http.post(f"{api_url}/sandbox", json={})
                assert created.status_code == 200, created.text
            killed_uid = _record_uid(root / "killed", created.json()["id"])
            with _served(root / "alive", sandbox_uids=_CLAIM_TEST_UIDS) as api:
                assert _uid_in_records(api, api.create()) != killed_uid
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                # The kernel dropped the dead server's claims: its (lowest) uid is handed out again.
                assert _uid_in_records(api, api.create()) == killed_uid
        finally:
            process.kill()
            process.wait()
            # A server adopting what the killed one left unmounts its sandboxes' home filesystems.
            with _served(root / "killed", sandbox_uids=_CLAIM_TEST_UIDS):
                pass
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_an_adopted_sandbox_whose_uid_another_server_holds_refuses_to_start() -> None:
    root = make_state_root()
    try:
        with _served(root / "first", sandbox_uids=_CLAIM_TEST_UIDS) as api:
            kept = api.create(name="kept")
            uid = _uid_in_records(api, kept)
        with _served(root / "second", sandbox_uids=_CLAIM_TEST_UIDS) as other:
            assert _uid_in_records(other, other.create()) == uid  # free while the first was stopped
            with _served(root / "first", sandbox_uids=_CLAIM_TEST_UIDS) as api:
                refused = api.api("POST", f"/sandbox/{kept['id']}/start")
                assert refused.status_code == 409, refused.text
                assert refused.json()["code"] == "SANDBOX_UID_IN_USE"
                assert f"host uid {uid} is in use by another daytonaflow server" in refused.json()["message"]
                assert api.api("GET", f"/sandbox/{kept['id']}").json()["state"] == "stopped"
        with _served(root / "first", sandbox_uids=_CLAIM_TEST_UIDS) as api:
            assert api.api("POST", f"/sandbox/{kept['id']}/start").status_code == 200
            assert _uid_of_agent(api.server, kept) == uid
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_without_host_wide_uid_claims_the_report_says_ranges_must_be_disjoint() -> None:
    root = make_state_root()
    shared_dir = root / "not-roots-alone"
    shared_dir.mkdir(mode=0o755)
    shared_dir.chmod(0o755)
    try:
        for claims, why in ((None, "not requested"), (shared_dir, "cannot use")):
            with _served(root / "state", sandbox_uids=_CLAIM_TEST_UIDS, uid_claims=claims) as api:
                assert api.server.isolation is not None
                described = api.server.isolation.limits["uids"]
                assert "known to this server only" in described
                assert why in described
                assert "disjoint ranges" in described
                assert _uid_in_records(api, api.create()) in _CLAIM_TEST_UIDS
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize(
    ("host_uid", "reason"),
    [(0, "host uid is 0 (root)"), (12345, "host uid 12345 is neither")],
)
def test_an_adopted_sandbox_recorded_with_a_uid_it_must_not_run_as_stays_error(
    host_uid: int, reason: str
) -> None:
    root = make_state_root()
    try:
        with _served(root / "state", sandbox_uids=_CLAIM_TEST_UIDS) as api:
            damaged = api.create(name="damaged")
            healthy = api.create(name="healthy")
        record_file = root / "state" / "sandboxes" / damaged["id"] / "sandbox.json"
        record = json.loads(record_file.read_text())
        record["host_uid"] = host_uid
        record_file.write_text(json.dumps(record))
        with _served(root / "state", sandbox_uids=_CLAIM_TEST_UIDS) as api:
            shown = api.api("GET", f"/sandbox/{damaged['id']}").json()
            assert shown["state"] == "error"
            assert reason in shown["errorReason"]
            refused = api.api("POST", f"/sandbox/{damaged['id']}/start")
            assert refused.status_code == 409, refused.text
            assert refused.json()["code"] == "SANDBOX_UID_REFUSED"
            assert damaged["id"] not in api.server.state.manager.running  # type: ignore[union-attr]
            assert api.api("POST", f"/sandbox/{healthy['id']}/start").status_code == 200
            assert api.delete(damaged["id"]).status_code == 200
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("host_uid", [True, "1900400000", 1.5, [1900400000]])
def test_a_record_whose_host_uid_is_not_an_integer_is_adopted_as_unreadable(host_uid: object) -> None:
    root = make_state_root()
    try:
        with _served(root / "state", sandbox_uids=_CLAIM_TEST_UIDS) as api:
            damaged = api.create(name="damaged")
        record_file = root / "state" / "sandboxes" / damaged["id"] / "sandbox.json"
        record = json.loads(record_file.read_text())
        record["host_uid"] = host_uid
        record_file.write_text(json.dumps(record))
        with _served(root / "state", sandbox_uids=_CLAIM_TEST_UIDS) as api:
            shown = api.api("GET", f"/sandbox/{damaged['id']}").json()
            assert shown["state"] == "error"
            assert "'host_uid' is not int | None" in shown["errorReason"]
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_sandboxes_each_under_their_share_are_stopped_when_the_host_file_table_is_under_pressure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Four sandboxes just under their share would fill the table: past the pressure mark the
    largest holder is killed, whatever its share. The rest of a pretend host's table is in use."""
    pretend_file_max = 80_000
    share = int(pretend_file_max * FILE_TABLE_SHARE)
    pressure = int(pretend_file_max * FILE_TABLE_PRESSURE)
    mapped = share // 2  # well under its share
    baseline = host_files_in_use()
    others = pressure - mapped // 2  # the attacker's mappings take the host past the mark
    monkeypatch.setattr(server_module, "host_file_max", lambda: pretend_file_max)
    monkeypatch.setattr(sandboxes, "host_files_in_use", lambda: host_files_in_use() - baseline + others)
    root = make_state_root()
    try:
        with _served(root / "state", monitor_interval=0.2) as api:
            neighbour, attacker = api.create(), api.create()
            (_home(api.server, attacker) / "maps.py").write_text(_MAPPINGS_SCRIPT.format(count=mapped))
            response = api.toolbox(
                "POST", attacker["id"], "/process/execute", json={"command": "python3 maps.py", "timeout": 90}
            )
            assert response.status_code == 200, response.text
            assert response.json()["exitCode"] == 137, response.text
            assert "ESCAPED" not in response.json()["result"]
            assert api.run(neighbour["id"], "echo unaffected")["result"] == "unaffected\n"
            assert api.run(attacker["id"], "echo still-served")["result"] == "still-served\n"
            assert api.server.isolation is not None
            assert f"past {FILE_TABLE_PRESSURE:.0%} in use" in api.server.isolation.limits["openFiles"]
    finally:
        shutil.rmtree(root, ignore_errors=True)
