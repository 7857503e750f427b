"""Escape and abuse attempts: each must be contained, and leave the host and other sandboxes intact.

Every test runs its attack in a fresh sandbox and then checks, through ``_assert_unaffected``,
that the host marker file, the server and a long-lived neighbour sandbox are untouched.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from localserver_testkit import MIB, TEST_LIMITS, Api, host_home, served

from daytonaflow.localserver import LocalServer, _processes, gitclone, seccomp
from daytonaflow.localserver._processes import kill_sandbox_processes
from daytonaflow.localserver.errors import GitCloneError, SandboxKillError
from daytonaflow.localserver.sandboxes import _agent_pid, _remove_tree

pytestmark = pytest.mark.sandbox

PROJECT_FILE = Path(__file__).resolve().parents[2] / "pyproject.toml"
_NAMESPACED_SYSCTL = re.compile(
    r"^/proc/sys/(fs/mqueue/\w+|kernel/(msg\w+|auto_msgmni|sem|shm\w+|ns_last_pid|pid_max))$"
)


@pytest.fixture(scope="module")
def host_marker() -> Iterator[Path]:
    directory = Path(f"/tmp/daytonaflow-host-marker-{os.getpid()}")
    directory.mkdir(exist_ok=True)
    marker = directory / "host-secret.txt"
    marker.write_text("HOST-MARKER-CONTENT\n")
    yield marker
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def attacker(api: Api) -> Iterator[dict[str, Any]]:
    created = api.create(labels={"role": "attacker"})
    yield created
    api.delete(created["id"])


@pytest.fixture(scope="module")
def accounting_server() -> Iterator[LocalServer]:
    """A server whose disk quota is the watchdog's (what a host without loop mounts gets)."""
    with served(disk_mode="accounting") as instance:
        yield instance


@pytest.fixture
def watched(accounting_server: LocalServer) -> Iterator[tuple[Api, dict[str, Any]]]:
    """An attacker sandbox of the accounting server, with a client of that server."""
    headers = {"Authorization": f"Bearer {accounting_server.api_key}"}
    with httpx.Client(headers=headers, timeout=60) as http:
        watched_api = Api(accounting_server, http)
        created = watched_api.create(labels={"role": "attacker"})
        yield watched_api, created
        watched_api.delete(created["id"])


@pytest.fixture(scope="module")
def small_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A host repository on the state directory's filesystem, where git could hard-link it."""
    repo = tmp_path_factory.mktemp("host-repo")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    (repo / "README.md").write_text("host content\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first"], check=True)
    return repo


@pytest.fixture
def victim(server: LocalServer, attacker: dict[str, Any]) -> Iterator[subprocess.Popen[bytes]]:
    """A host process running as the attacker's own host uid: only the pid namespace hides it."""
    assert server.state is not None
    manager = server.state.manager
    uid = manager.uid_of(manager.get(attacker["id"]))
    as_other = uid != os.geteuid()
    process = subprocess.Popen(
        ["sleep", "60"],
        user=uid if as_other else None,
        group=uid if as_other else None,
        extra_groups=[] if as_other else None,
    )
    yield process
    process.kill()
    process.wait()


def _assert_unaffected(api: Api, neighbour: dict[str, Any], host_marker: Path) -> None:
    assert host_marker.read_text() == "HOST-MARKER-CONTENT\n"
    assert api.api("GET", "/config").status_code == 200
    assert api.run(neighbour["id"], "cat marker.txt") == {"exitCode": 0, "result": "neighbour-secret\n"}


def _sh(api: Api, sandbox: dict[str, Any], command: str, timeout: int = 20) -> dict[str, Any]:
    return api.run(sandbox["id"], command, timeout=timeout)


# ---- reading what is not the sandbox's ---------------------------------------------------------------


def test_host_shadow_file_is_not_visible(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    result = _sh(api, attacker, "cat /etc/shadow")
    assert result["exitCode"] != 0
    assert "No such file" in result["result"]
    _assert_unaffected(api, neighbour, host_marker)


def test_project_checkout_and_host_files_are_not_visible(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    result = _sh(api, attacker, f"cat {PROJECT_FILE} {host_marker}; ls /work /root")
    assert result["exitCode"] != 0
    assert "HOST-MARKER-CONTENT" not in result["result"]
    assert "[project]" not in result["result"]
    _assert_unaffected(api, neighbour, host_marker)


def test_another_sandboxs_home_cannot_be_found(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    result = _sh(api, attacker, "grep -rs neighbour-secret / --exclude-dir=proc --exclude-dir=usr; echo done")
    assert result["result"] == "done\n"
    _assert_unaffected(api, neighbour, host_marker)


def test_host_passwd_is_replaced_by_a_synthetic_one(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    passwd = _sh(api, attacker, "cat /etc/passwd")["result"]
    assert Path("/etc/passwd").read_text() != passwd
    assert {line.split(":")[0] for line in passwd.splitlines()} == {"root", "daytona", "nobody"}
    _assert_unaffected(api, neighbour, host_marker)


# ---- writing outside the home ------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["/usr/bin/evil", "/etc/evil", "/evil", "/opt/daytonaflow/evil"])
def test_writes_outside_home_and_tmp_fail(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path, target: str
) -> None:
    result = _sh(api, attacker, f"echo pwned > {target}")
    assert result["exitCode"] != 0
    assert "Read-only file system" in result["result"] or "Permission denied" in result["result"]
    assert not Path(target).exists()
    _assert_unaffected(api, neighbour, host_marker)


# ---- network ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loopback", ["127.0.0.1", "::1"])
def test_server_on_the_host_loopback_is_unreachable(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path, loopback: str
) -> None:
    listener = socket.socket(socket.AF_INET6 if ":" in loopback else socket.AF_INET)
    try:
        listener.bind((loopback, 0))
    except OSError:
        listener.close()
        pytest.skip(f"no {loopback} on this host")
    listener.listen()
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted: list[object] = []

    def watch() -> None:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                accepted.append(listener.accept())
            except TimeoutError:
                continue

    watcher = threading.Thread(target=watch)
    watcher.start()
    code = f"import socket; socket.create_connection(('{loopback}', {port}), 2)"
    result = _sh(api, attacker, f'python3 -c "{code}"')
    watcher.join()
    listener.close()
    assert result["exitCode"] != 0
    assert "Connection refused" in result["result"]
    assert accepted == []
    _assert_unaffected(api, neighbour, host_marker)


def test_the_servers_api_and_proxy_ports_are_unreachable(
    api: Api, server: LocalServer, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    ports = f"{server.port} {server.proxy_port}"
    result = _sh(
        api,
        attacker,
        f"bash -c 'for p in {ports}; do (echo > /dev/tcp/127.0.0.1/$p) && echo reached $p; done'",
    )
    assert "reached" not in result["result"]
    for port in (server.port, server.proxy_port):
        assert f"/dev/tcp/127.0.0.1/{port}: Connection refused" in result["result"]
    _assert_unaffected(api, neighbour, host_marker)


def test_only_loopback_exists_and_no_route_leaves_the_sandbox(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    """No egress, proven from the sandbox's own network tables: no address outside is ever dialled."""
    separator = "----"
    tables = _sh(
        api,
        attacker,
        f"cat /proc/net/dev; echo {separator}; cat /proc/net/if_inet6; echo {separator}; "
        f"cat /proc/net/route; echo {separator}; cat /proc/net/ipv6_route",
    )["result"]
    devices, ipv6_addresses, ipv4_routes, ipv6_routes = (
        [line.split() for line in part.strip().splitlines()] for part in tables.split(separator)
    )
    assert [fields[0] for fields in devices[2:]] == ["lo:"]  # two header lines, then one per device
    assert {fields[-1] for fields in ipv6_addresses} <= {"lo"}
    assert ipv4_routes[1:] == []  # a header only: not even a route to a local network
    for route in ipv6_routes:
        # "unreachable" is routed to lo with RTF_REJECT; any gateway (RTF_GATEWAY) would be a way out.
        destination, prefix, flags, device = route[0], route[1], int(route[8], 16), route[9]
        assert device == "lo", route
        assert not flags & 0x0002, route
        if prefix == "00":
            assert destination == "0" * 32 and flags & 0x0200, route  # the default: a reject route
    _assert_unaffected(api, neighbour, host_marker)


# ---- processes ----------------------------------------------------------------------------------------


def test_host_processes_are_invisible(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    result = _sh(api, attacker, f"ps -eo pid,args; ls /proc/{os.getpid()}")
    assert "pytest" not in result["result"]
    assert "No such file" in result["result"]
    pids = [int(line.split()[0]) for line in result["result"].splitlines()[1:] if line.split()[0].isdigit()]
    assert max(pids) < 100
    _assert_unaffected(api, neighbour, host_marker)


def test_host_processes_of_the_same_uid_cannot_be_signalled(
    api: Api,
    attacker: dict[str, Any],
    neighbour: dict[str, Any],
    host_marker: Path,
    victim: subprocess.Popen[bytes],
) -> None:
    result = _sh(api, attacker, f"kill -9 {victim.pid}; kill -9 -1; echo survived")
    assert "No such process" in result["result"]
    assert "survived" in result["result"]
    assert victim.poll() is None
    _assert_unaffected(api, neighbour, host_marker)


def test_ptrace_of_a_host_process_of_the_same_uid_fails(
    api: Api,
    attacker: dict[str, Any],
    neighbour: dict[str, Any],
    host_marker: Path,
    victim: subprocess.Popen[bytes],
) -> None:
    code = (
        "import ctypes, os; libc = ctypes.CDLL(None, use_errno=True); "
        f"print(libc.ptrace(16, {victim.pid}, 0, 0), ctypes.get_errno())"
    )
    result = _sh(api, attacker, f'python3 -c "{code}"')
    assert result["result"].split() == ["-1", "3"]  # ESRCH: the pid does not exist in there
    assert victim.poll() is None
    _assert_unaffected(api, neighbour, host_marker)


def test_the_agent_cannot_be_traced_or_robbed_of_its_socket(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    code = (
        "import ctypes; libc = ctypes.CDLL(None, use_errno=True); "
        "print(libc.ptrace(16, 1, 0, 0), ctypes.get_errno())"
    )
    result = _sh(api, attacker, f'ls /proc/1/fd; echo rc=$?; python3 -c "{code}"')
    assert "rc=0" not in result["result"]
    assert result["result"].splitlines()[-1].split()[0] == "-1"
    assert api.run(attacker["id"], "echo still-served")["result"] == "still-served\n"
    _assert_unaffected(api, neighbour, host_marker)


# ---- privileges ---------------------------------------------------------------------------------------


def test_mount_and_new_user_namespaces_are_refused(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    result = _sh(api, attacker, "mount -t tmpfs none /tmp; echo rc=$?; unshare -r -m true; echo rc=$?")
    assert "rc=0" not in result["result"]
    _assert_unaffected(api, neighbour, host_marker)


def test_setuid_binaries_grant_nothing(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    result = _sh(
        api,
        attacker,
        "grep NoNewPrivs /proc/self/status; python3 -c 'import os; os.setuid(0)'; echo rc=$?; "
        "su -c id root </dev/null; echo rc=$?",
    )
    assert "NoNewPrivs:\t1" in result["result"]
    assert "rc=0" not in result["result"]
    assert "uid=0" not in result["result"]
    _assert_unaffected(api, neighbour, host_marker)


@pytest.mark.skipif(not seccomp.refused_syscalls(), reason="no seccomp filter for this architecture")
def test_kernel_attack_surface_syscalls_are_refused_by_seccomp(
    api: Api, server: LocalServer, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    # keyctl, bpf, perf_event_open, io_uring_setup, userfaultfd; then getpid, which must still work.
    code = (
        "import ctypes; libc = ctypes.CDLL(None, use_errno=True); "
        "print([(libc.syscall(n, 0, 0, 0, 0, 0), ctypes.get_errno()) for n in (250, 321, 298, 425, 323)])"
    )
    result = _sh(api, attacker, f'grep "^Seccomp:" /proc/self/status; python3 -c "{code}"; echo $$')
    status, refusals, pid = result["result"].splitlines()
    assert status.split() == ["Seccomp:", "2"]
    assert refusals == str([(-1, 1)] * 5)  # EPERM each
    assert pid.isdigit()
    assert server.isolation is not None
    assert "keyctl" in server.isolation.limits["syscalls"]
    _assert_unaffected(api, neighbour, host_marker)


def test_proc_sys_cannot_be_written(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    before = Path("/proc/sys/kernel/domainname").read_text()
    result = _sh(api, attacker, "echo pwned > /proc/sys/kernel/domainname; echo rc=$?")
    assert "rc=0" not in result["result"]
    # The only sysctls it may write belong to its own ipc/pid namespaces (it owns them); the rest
    # are root's, and it holds no capability.
    writable = _sh(api, attacker, "find /proc/sys /proc/sysrq-trigger -writable 2>/dev/null")["result"]
    assert writable.split() and all(_NAMESPACED_SYSCTL.match(path) for path in writable.split())
    host_value = Path("/proc/sys/kernel/shmmni").read_text()
    assert (
        _sh(api, attacker, "echo 1 > /proc/sys/kernel/shmmni; cat /proc/sys/kernel/shmmni")["result"] == "1\n"
    )
    assert Path("/proc/sys/kernel/shmmni").read_text() == host_value
    assert Path("/proc/sys/kernel/domainname").read_text() == before
    _assert_unaffected(api, neighbour, host_marker)


def test_device_nodes_cannot_be_created_or_reached(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    result = _sh(api, attacker, "mknod /tmp/disk b 8 0; echo rc=$?; ls /dev; ls /sys")
    assert "rc=0" not in result["result"]
    devices = set(result["result"].split())
    assert not devices & {"sda", "vda", "mem", "kmem", "port"}
    _assert_unaffected(api, neighbour, host_marker)


def test_hostname_change_stays_inside(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    before = socket.gethostname()
    _sh(api, attacker, "hostname pwned")
    assert socket.gethostname() == before
    _assert_unaffected(api, neighbour, host_marker)


# ---- file API paths -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["../../../tmp/escape.txt", "/home/daytona/../../tmp/escape.txt"])
def test_upload_with_dot_dot_is_rejected(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path, path: str
) -> None:
    response = api.toolbox(
        "POST", attacker["id"], "/files/upload", params={"path": path}, files={"file": ("x", b"pwned")}
    )
    assert response.status_code == 400
    assert "'..'" in response.json()["message"]
    assert not Path("/tmp/escape.txt").exists()
    _assert_unaffected(api, neighbour, host_marker)


def test_download_with_dot_dot_is_rejected(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    response = api.toolbox("GET", attacker["id"], "/files/download", params={"path": "../../etc/passwd"})
    assert response.status_code == 400
    _assert_unaffected(api, neighbour, host_marker)


def test_symlink_out_of_the_home_is_not_followed_by_the_file_api(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    _sh(api, attacker, "ln -s /etc/passwd leak; ln -s /usr outdir")
    download = api.toolbox("GET", attacker["id"], "/files/download", params={"path": "leak"})
    assert download.status_code == 403
    upload = api.toolbox(
        "POST", attacker["id"], "/files/upload", params={"path": "outdir/evil"}, files={"file": ("x", b"x")}
    )
    assert upload.status_code == 403
    _assert_unaffected(api, neighbour, host_marker)


def test_git_clone_path_cannot_leave_the_home(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path, small_repo: Path
) -> None:
    for path in ("../../../tmp/cloned", "/tmp/cloned", "/home/daytona/../x"):
        response = api.toolbox(
            "POST", attacker["id"], "/git/clone", json={"url": str(small_repo), "path": path}
        )
        assert response.status_code == 400, path
    _assert_unaffected(api, neighbour, host_marker)


def test_git_clone_into_a_symlink_planted_in_the_home_does_not_write_the_host(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path, small_repo: Path
) -> None:
    trap = Path(f"/tmp/daytonaflow-trap-{os.getpid()}")
    trap.mkdir(exist_ok=True)
    trap.chmod(0o777)
    try:
        _sh(api, attacker, f"ln -s {trap} planted")
        response = api.toolbox(
            "POST",
            attacker["id"],
            "/git/clone",
            json={"url": str(small_repo), "path": "planted/sub"},
        )
        assert response.status_code == 400
        assert list(trap.iterdir()) == []
    finally:
        shutil.rmtree(trap, ignore_errors=True)
    _assert_unaffected(api, neighbour, host_marker)


def _tree_state(root: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(root)): (p.lstat().st_uid, p.read_bytes()) for p in root.rglob("*") if p.is_file()
    }


def test_a_cloned_local_repository_shares_no_file_with_the_host(
    api: Api,
    server: LocalServer,
    attacker: dict[str, Any],
    neighbour: dict[str, Any],
    host_marker: Path,
    small_repo: Path,
) -> None:
    before = _tree_state(small_repo)
    response = api.toolbox(
        "POST", attacker["id"], "/git/clone", json={"url": str(small_repo), "path": "copy"}
    )
    assert response.status_code == 200, response.text
    # The sandbox owns its clone: it may rewrite every file of it, the host's repository must not move.
    _sh(api, attacker, "chmod -R u+w copy; find copy -type f -exec sh -c 'echo pwned > \"$1\"' _ {} \\;")
    assert _tree_state(small_repo) == before
    home = host_home(server, attacker["id"]) / "copy"
    assert all(p.lstat().st_nlink == 1 for p in home.rglob("*") if p.is_file())
    _assert_unaffected(api, neighbour, host_marker)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand directories to another uid")
def test_clone_directory_swapped_for_a_symlink_is_neither_followed_nor_chowned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sandbox wins the race between the server's mkdir and its chown of the new directory."""
    home = tmp_path / "home"
    home.mkdir()
    os.chown(home, 65534, 65534)
    host_file = tmp_path / "host-owned.txt"
    host_file.write_text("host\n")
    source = tmp_path / "scratch" / "repo"
    source.mkdir(parents=True)
    real_mkdir = os.mkdir

    def mkdir_then_swap(path: Any, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        real_mkdir(path, mode, dir_fd=dir_fd)
        os.rmdir(path, dir_fd=dir_fd)
        os.symlink(host_file, path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "mkdir", mkdir_then_swap)
    with pytest.raises(GitCloneError):
        gitclone._move_into_home(source, home, ["made", "repo"])
    monkeypatch.undo()
    assert host_file.lstat().st_uid == os.geteuid()
    assert source.is_dir()


def test_deleting_a_home_never_changes_a_host_file_its_symlinks_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that is not root fails to unlink in a directory the sandbox made read-only, and
    makes it writable to retry: never by following the sandbox's symlink to a host file."""
    host_file = tmp_path / "host-file"
    host_file.write_text("host\n")
    host_file.chmod(0o600)
    home = tmp_path / "home"
    (home / "locked").mkdir(parents=True)
    (home / "locked" / "link").symlink_to(host_file)
    real_unlink = os.unlink
    refused: list[str] = []

    def unlink_refusing_once(path: Any, *, dir_fd: int | None = None) -> None:
        if path == "link" and not refused:
            refused.append(path)
            raise PermissionError(13, "Permission denied", path)
        real_unlink(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "unlink", unlink_refusing_once)
    _remove_tree(home)
    monkeypatch.undo()
    assert refused == ["link"]
    assert not home.exists()
    assert host_file.read_text() == "host\n"
    assert host_file.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("field", ["branch", "commit_id"])
def test_clone_refs_that_look_like_options_are_refused(
    api: Api,
    attacker: dict[str, Any],
    neighbour: dict[str, Any],
    host_marker: Path,
    small_repo: Path,
    field: str,
) -> None:
    body = {"url": str(small_repo), "path": "opt", field: "--upload-pack=touch /tmp/pwned"}
    response = api.toolbox("POST", attacker["id"], "/git/clone", json=body)
    assert response.status_code == 400
    assert "must not start with '-'" in response.json()["message"]
    _assert_unaffected(api, neighbour, host_marker)


def test_other_host_users_cannot_list_the_sandboxes(
    api: Api, server: LocalServer, neighbour: dict[str, Any]
) -> None:
    mode = (server.state_dir / "sandboxes").stat().st_mode
    assert mode & 0o007 == 0o001  # traversable, not readable: a home is found only by its id
    assert (server.state_dir / "preview-secret").stat().st_mode & 0o077 == 0


# ---- resource abuse -----------------------------------------------------------------------------------


def test_huge_upload_is_refused_with_413(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    def body() -> Iterator[bytes]:
        boundary = b"--xyz\r\n"
        yield boundary + b'Content-Disposition: form-data; name="file"; filename="big"\r\n\r\n'
        chunk = b"\0" * MIB
        for _ in range(TEST_LIMITS.upload_bytes // MIB + 8):
            yield chunk
        yield b"\r\n--xyz--\r\n"

    response = api.http.post(
        f"{api.server.toolbox_url}/{attacker['id']}/files/upload",
        params={"path": "big"},
        headers={"content-type": "multipart/form-data; boundary=xyz"},
        content=body(),
    )
    assert response.status_code == 413
    assert _sh(api, attacker, "ls big* .daytonaflow-upload* 2>/dev/null | wc -l")["result"] == "0\n"
    _assert_unaffected(api, neighbour, host_marker)


def test_fork_bomb_is_capped_by_the_process_limit(
    api: Api, server: LocalServer, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    assert server.state is not None and server.isolation is not None
    agent = _agent_pid(server.state.manager.running[attacker["id"]].proc.pid)
    counts = _ProcessCounter(os.readlink(f"/proc/{agent}/ns/pid"))
    try:
        response = api.toolbox(
            "POST",
            attacker["id"],
            "/process/execute",
            json={"command": "bomb() { bomb | bomb & }; bomb; sleep 3", "timeout": 3},
        )
    finally:
        counts.stop()
    # 408 when the timeout killed the bomb; 503 when it filled the process table before the agent
    # could start its output reader (the bomb is killed then too); 200 when the shell itself failed
    # to fork `sleep` in the full table and ended first.
    assert response.status_code in (200, 408, 503)
    # Seen from the host, whatever enforces the limit: never more processes at once than allowed.
    assert 0 < counts.peak <= TEST_LIMITS.pids
    if "pids" in server.isolation.cgroup_controllers:
        # The kernel's own counters are exact, where sampling may miss a burst the agent ends within
        # milliseconds on a busy host: the bomb reached the group's limit and had forks refused.
        group = _pids_cgroup_of(agent)
        assert (group / "pids.max").read_text() == f"{TEST_LIMITS.pids}\n"
        assert _refused_forks(group) > 0
    else:
        assert counts.peak > TEST_LIMITS.pids // 2  # the bomb really ran
    assert subprocess.run(["true"], check=False).returncode == 0
    assert _eventually_served(api, attacker["id"])
    _assert_unaffected(api, neighbour, host_marker)


def test_memory_bomb_is_killed_without_hurting_the_host(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    limit_mib = TEST_LIMITS.memory_bytes // MIB
    # Stops by itself at four times the limit, so a missing limit fails this test, not the host.
    code = (
        f"x = []\\nwhile len(x) * 16 < {4 * limit_mib}:\\n"
        "    x.append(bytearray(16 << 20))\\n    print(len(x) * 16, flush=True)\\nprint('ESCAPED')"
    )
    result = _sh(api, attacker, f'printf "{code}" > bomb.py; python3 bomb.py; echo rc=$?')
    assert "ESCAPED" not in result["result"]
    assert "rc=137" in result["result"] or "MemoryError" in result["result"]
    allocated = [int(line) for line in result["result"].splitlines() if line.isdigit()]
    assert allocated and max(allocated) <= limit_mib
    _assert_unaffected(api, neighbour, host_marker)


def test_disk_fill_of_one_file_stops_at_the_quota(
    api: Api, server: LocalServer, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    result = _sh(api, attacker, "dd if=/dev/zero of=fill bs=1M count=256 2>&1; stat -c %s fill")
    size = int(result["result"].split()[-1])
    assert size <= TEST_LIMITS.disk_bytes
    _assert_unaffected(api, neighbour, host_marker)


def test_disk_fill_with_many_files_is_stopped_by_the_watchdog(
    api: Api, watched: tuple[Api, dict[str, Any]], neighbour: dict[str, Any], host_marker: Path
) -> None:
    watched_api, attacker = watched
    response = watched_api.toolbox(
        "POST",
        attacker["id"],
        "/process/execute",
        json={
            # About 200 MiB/s: the watchdog checks every 0.2 s here, so the overshoot stays small
            # enough to assert on even when the machine is busy.
            "command": (
                "i=0; while :; do head -c 1048576 /dev/zero > f$i || exit 9; i=$((i+1)); sleep 0.005; done"
            ),
            "timeout": 60,
        },
    )
    assert response.status_code == 200
    assert response.json()["exitCode"] == 137
    home = host_home(watched_api.server, attacker["id"])
    used = sum(p.stat().st_size for p in home.iterdir())
    assert TEST_LIMITS.disk_bytes < used < TEST_LIMITS.disk_bytes + 512 * MIB
    _assert_unaffected(api, neighbour, host_marker)


def test_disk_filler_that_keeps_forking_is_stopped_at_once(
    api: Api, watched: tuple[Api, dict[str, Any]], neighbour: dict[str, Any], host_marker: Path
) -> None:
    """Each link writes a file, forks the next and exits: a kill walking /proc misses new links."""
    watched_api, attacker = watched
    server = watched_api.server
    chains = "c() { head -c 1048576 /dev/zero > f$BASHPID || exit 9; c & }; for i in 1 2 3 4 5 6; do c & done"
    response = watched_api.toolbox(
        "POST",
        attacker["id"],
        "/process/execute",
        json={"command": f"bash -c '{chains}; sleep 30'", "timeout": 60},
    )
    assert response.status_code == 200
    assert response.json()["exitCode"] == 137
    assert server.state is not None
    agent = _agent_pid(server.state.manager.running[attacker["id"]].proc.pid)
    namespace = os.readlink(f"/proc/{agent}/ns/pid")
    # The watchdog's one kill took every link: no survivor keeps writing until a later check.
    assert _live_processes_in(namespace, settle=0.05) == [agent]
    _assert_unaffected(api, neighbour, host_marker)


def test_tmp_fill_hits_the_tmpfs_size(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    result = _sh(api, attacker, "dd if=/dev/zero of=/tmp/fill bs=1M count=100 2>&1; stat -c %s /tmp/fill")
    assert "No space left on device" in result["result"]
    assert int(result["result"].split()[-1]) <= TEST_LIMITS.tmp_bytes
    _assert_unaffected(api, neighbour, host_marker)


def test_output_flood_is_truncated_not_buffered(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    result = _sh(api, attacker, "head -c 100000000 /dev/zero | tr '\\0' a; echo; echo end")
    assert len(result["result"]) < 3 * MIB
    assert "bytes of output omitted" in result["result"]
    assert result["result"].endswith("end\n")
    _assert_unaffected(api, neighbour, host_marker)


def test_cpu_spin_past_its_timeout_is_killed(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    response = api.toolbox(
        "POST",
        attacker["id"],
        "/process/execute",
        json={"command": "python3 -c 'while True: pass'", "timeout": 1},
    )
    assert response.status_code == 408
    assert "while True" not in api.run(attacker["id"], "ps -eo args")["result"]
    _assert_unaffected(api, neighbour, host_marker)


def test_process_ignoring_sigterm_dies_with_its_sandbox(
    api: Api, server: LocalServer, neighbour: dict[str, Any], host_marker: Path
) -> None:
    assert server.state is not None
    sandbox = api.create()
    agent = _agent_pid(server.state.manager.running[sandbox["id"]].proc.pid)
    api.run(sandbox["id"], "nohup sh -c \"trap '' TERM; exec sleep 4242\" >/dev/null 2>&1 &")
    sleeper = _wait_for_process(os.readlink(f"/proc/{agent}/ns/pid"), ["sleep", "4242"])
    assert _ignores_sigterm(sleeper)
    api.delete(sandbox["id"])
    assert not _runs(sleeper, ["sleep", "4242"])
    _assert_unaffected(api, neighbour, host_marker)


def test_open_file_limit_cannot_be_raised(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    result = _sh(api, attacker, f"ulimit -n; ulimit -n {TEST_LIMITS.open_files * 4}; echo rc=$?")
    assert result["result"].startswith(f"{TEST_LIMITS.open_files}\n")
    assert "rc=0" not in result["result"]
    _assert_unaffected(api, neighbour, host_marker)


def test_killing_init_and_every_process_leaves_the_toolbox_serving(
    api: Api, server: LocalServer, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    result = _sh(api, attacker, "kill -9 1; kill -9 -1; echo after", timeout=5)
    assert result["result"].endswith("after\n")
    assert server.state is not None
    assert server.state.manager.running[attacker["id"]].proc.poll() is None
    assert api.run(attacker["id"], "echo still-served")["result"] == "still-served\n"
    assert api.api("GET", f"/sandbox/{attacker['id']}").json()["state"] == "started"
    _assert_unaffected(api, neighbour, host_marker)


# ---- the agent (pid 1) cannot be tuned or starved by sandbox code ----------------------------------------

_FLOOD_SCRIPT = """
import os, signal, time
sleepers = 0
try:
    while True:
        if os.fork() == 0:
            signal.pause()
            os._exit(0)
        sleepers += 1
except BlockingIOError:
    pass
with open("table-full", "w") as marker:
    marker.write(str(sleepers))
time.sleep(2)
chunk = b"x" * (1 << 20)
for i in range({mib}):
    with open(f"f{{i // 16}}", "ab") as handle:
        handle.write(chunk)
    time.sleep(0.01)
print("ESCAPED", flush=True)
"""


def _agent_of(server: LocalServer, sandbox: dict[str, Any]) -> int:
    assert server.state is not None
    return _agent_pid(server.state.manager.running[sandbox["id"]].proc.pid)


def _limits_of(pid: int) -> list[str]:
    return [line for line in Path(f"/proc/{pid}/limits").read_text().splitlines() if line.startswith("Max ")]


@pytest.mark.parametrize("limit", ["--nproc=1:1", "--nofile=3:3"])
def test_prlimit_on_the_agent_or_its_threads_is_refused(
    api: Api,
    server: LocalServer,
    attacker: dict[str, Any],
    neighbour: dict[str, Any],
    host_marker: Path,
    limit: str,
) -> None:
    agent = _agent_of(server, attacker)
    api.run(attacker["id"], "true")  # the agent sets its own limits after its first answer
    before = _limits_of(agent)
    result = _sh(api, attacker, f"for t in $(ls /proc/1/task); do prlimit --pid $t {limit}; echo rc=$?; done")
    assert "rc=0" not in result["result"]
    assert "Operation not permitted" in result["result"]
    assert _limits_of(agent) == before
    # Setting one's own limits (glibc's setrlimit is prlimit64 on pid 0) still works.
    assert _sh(api, attacker, "ulimit -n 100 && ulimit -n")["result"] == "100\n"
    for _ in range(3):
        assert api.run(attacker["id"], "echo still-served")["result"] == "still-served\n"
    _assert_unaffected(api, neighbour, host_marker)


def test_the_agents_priorities_cannot_be_lowered(
    api: Api, server: LocalServer, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    agent = _agent_of(server, attacker)
    result = _sh(
        api,
        attacker,
        "renice -n 19 -p 1; echo rc=$?; renice -n 19 -u daytona; echo rc=$?; ionice -c 3 -p 1; echo rc=$?; "
        "ionice -c 3 -u 1000; echo rc=$?; chrt --idle -p 0 1; echo rc=$?; nice -n 5 nice",
    )
    assert "rc=0" not in result["result"]
    assert result["result"].endswith("5\n")  # a process may still lower its own priority
    fields = Path(f"/proc/{agent}/stat").read_bytes().rsplit(b")", 1)[1].split()
    nice, policy = int(fields[16]), int(fields[38])
    assert (nice, policy) == (0, 0)  # SCHED_OTHER at nice 0
    _assert_unaffected(api, neighbour, host_marker)


def _allowed_cpus(pid: int) -> set[str]:
    """The CPU masks of every thread of a process (``Cpus_allowed_list``)."""
    masks = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        status = (task / "status").read_text()
        masks.add(
            next(line.split()[1] for line in status.splitlines() if line.startswith("Cpus_allowed_list"))
        )
    return masks


def test_the_agent_cannot_be_pinned_to_one_cpu(
    api: Api, server: LocalServer, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    """A mask set on the agent would be inherited by every command it starts later."""
    agent = _agent_of(server, attacker)
    before = _allowed_cpus(agent)
    result = _sh(
        api, attacker, "for t in $(ls /proc/1/task); do taskset -p 1 $t; echo rc=$?; done; taskset 1 nproc"
    )
    lines = result["result"].splitlines()
    assert "rc=0" not in lines
    assert "Operation not permitted" in result["result"]
    assert lines[-1] == "1"  # a new command may still be pinned (taskset sets its own mask)
    assert _allowed_cpus(agent) == before
    assert api.run(attacker["id"], "taskset -p $$")["exitCode"] == 0  # reading a mask stays allowed
    _assert_unaffected(api, neighbour, host_marker)


def test_signals_the_agent_handles_are_ignored_when_sandbox_code_sends_them(
    api: Api, server: LocalServer, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    signals = "INT CHLD HUP TERM USR1 QUIT"
    by_pidfd = (
        "import os, signal; fd = os.pidfd_open(1); "
        "[signal.pidfd_send_signal(fd, s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)]"
    )
    result = _sh(
        api,
        attacker,
        f'for s in {signals}; do kill -$s 1; done; python3 -c "{by_pidfd}"; sleep 0.5; echo sent',
    )
    assert result["result"] == "sent\n"
    assert server.state is not None
    assert server.state.manager.running[attacker["id"]].proc.poll() is None
    assert api.run(attacker["id"], "echo still-served")["result"] == "still-served\n"
    _assert_unaffected(api, neighbour, host_marker)


def test_the_agents_memory_and_oom_score_cannot_be_touched(
    api: Api, server: LocalServer, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    agent = _agent_of(server, attacker)
    code = (
        "import ctypes; libc = ctypes.CDLL(None, use_errno=True); buf = ctypes.create_string_buffer(8); "
        "iov = (ctypes.c_void_p * 2)(ctypes.addressof(buf), 8); "
        "print(libc.process_vm_readv(1, iov, 1, iov, 1, 0), ctypes.get_errno())"
    )
    result = _sh(
        api,
        attacker,
        f'cat /proc/1/mem; echo rc=$?; echo 1000 > /proc/1/oom_score_adj; echo rc=$?; python3 -c "{code}"',
    )
    assert "rc=0" not in result["result"]
    assert result["result"].splitlines()[-1].split() == ["-1", "1"]  # EPERM
    assert Path(f"/proc/{agent}/oom_score_adj").read_text() == "0\n"
    _assert_unaffected(api, neighbour, host_marker)


def test_disk_flood_is_stopped_while_the_agent_cannot_serve(
    api: Api, watched: tuple[Api, dict[str, Any]], neighbour: dict[str, Any], host_marker: Path
) -> None:
    """The flood first fills the process table, so the agent cannot start a thread to serve anything:
    the watchdog's kill must come from the host."""
    api_of_attacker, attacker = watched
    home = host_home(api_of_attacker.server, attacker["id"])
    quota_mib = TEST_LIMITS.disk_bytes // MIB
    (home / "flood.py").write_text(_FLOOD_SCRIPT.format(mib=4 * quota_mib))
    answers: list[httpx.Response] = []
    request = {"command": "python3 flood.py", "timeout": 90}
    flood = threading.Thread(
        target=lambda: answers.append(
            api_of_attacker.toolbox("POST", attacker["id"], "/process/execute", json=request)
        )
    )
    flood.start()
    try:
        deadline = time.monotonic() + 60
        while not (home / "table-full").exists():
            assert time.monotonic() < deadline, "the flood never filled the process table"
            time.sleep(0.05)
        probe = api_of_attacker.toolbox(
            "POST", attacker["id"], "/process/execute", json={"command": "echo probe"}
        )
        assert probe.status_code == 503, probe.text  # the agent is really unable to help
    finally:
        flood.join()
    [answer] = answers
    assert answer.status_code == 200, answer.text
    assert "ESCAPED" not in answer.json()["result"]
    assert answer.json()["exitCode"] == 137
    used = sum(p.stat().st_size for p in home.iterdir())
    assert used < 2 * TEST_LIMITS.disk_bytes
    assert _eventually_served(api_of_attacker, attacker["id"])
    _assert_unaffected(api, neighbour, host_marker)


def test_the_host_side_kill_refuses_a_process_outside_a_sandbox(
    victim: subprocess.Popen[bytes],
) -> None:
    # kill(-1) in the host's own pid namespace would end every process of the host.
    for pid in (victim.pid, os.getpid(), 1):
        with pytest.raises(SandboxKillError):
            kill_sandbox_processes(pid)
    assert victim.poll() is None


def test_the_host_side_kill_refuses_an_agent_that_is_not_its_sandboxs_child(
    api: Api, server: LocalServer, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    """The monitor names the agent by pid and its bwrap: an agent pid reused by another sandbox's
    init (whose parent is another bwrap) must not have that sandbox's processes killed."""
    assert server.state is not None
    neighbours_bwrap = server.state.manager.running[neighbour["id"]].proc.pid
    api.run(attacker["id"], "nohup sleep 4343 >/dev/null 2>&1 &")
    agent = _agent_of(server, attacker)
    namespace = os.readlink(f"/proc/{agent}/ns/pid")
    sleeper = _wait_for_process(namespace, ["sleep", "4343"])
    with pytest.raises(SandboxKillError):
        kill_sandbox_processes(agent, parent_pid=neighbours_bwrap)
    assert sleeper in _live_processes_once(namespace)
    own_bwrap = server.state.manager.running[attacker["id"]].proc.pid
    kill_sandbox_processes(agent, parent_pid=own_bwrap)
    assert _live_processes_in(namespace, settle=2.0) == [agent]
    _assert_unaffected(api, neighbour, host_marker)


def test_the_host_side_kill_sweeps_when_it_cannot_join_the_namespace(
    api: Api,
    server: LocalServer,
    attacker: dict[str, Any],
    neighbour: dict[str, Any],
    host_marker: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_processes, "_KILL_NAMESPACE_SCRIPT", "raise SystemExit('cannot join')")
    agent = _agent_of(server, attacker)
    api.run(attacker["id"], "for i in 1 2 3; do nohup sleep 4242 >/dev/null 2>&1 & done")
    namespace = os.readlink(f"/proc/{agent}/ns/pid")
    deadline = time.monotonic() + 10
    while len([pid for pid in _live_processes_once(namespace) if _runs(pid, ["sleep", "4242"])]) < 3:
        assert time.monotonic() < deadline, "the sleepers never started"
        time.sleep(0.01)
    kill_sandbox_processes(agent)
    assert _live_processes_in(namespace, settle=2.0) == [agent]
    assert api.run(attacker["id"], "echo still-served")["result"] == "still-served\n"
    _assert_unaffected(api, neighbour, host_marker)


# ---- API and preview authentication -------------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", "Basic Zm9vOmJhcg=="])
def test_api_and_toolbox_require_the_api_key(
    api: Api, neighbour: dict[str, Any], host_marker: Path, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for url in (f"{api.server.api_url}/sandbox", f"{api.server.toolbox_url}/{neighbour['id']}/files"):
        response = httpx.get(url, headers=headers)
        assert response.status_code == 401
        assert response.json()["statusCode"] == 401
    response = httpx.post(
        f"{api.server.toolbox_url}/{neighbour['id']}/process/execute",
        headers=headers,
        json={"command": "rm -rf ~"},
    )
    assert response.status_code == 401
    _assert_unaffected(api, neighbour, host_marker)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/config"),
        ("GET", "/api/local/isolation"),
        ("GET", "/api/sandbox/{id}"),
        ("DELETE", "/api/sandbox/{id}"),
        ("POST", "/api/sandbox/{id}/stop"),
        ("GET", "/api/sandbox/{id}/ports/8000/preview-url"),
        ("GET", "/api/sandbox/{id}/ports/8000/signed-preview-url"),
        ("GET", "/api/toolbox/{id}/toolbox/files"),
        ("POST", "/toolbox/{id}/git/clone"),
        ("GET", "/toolbox/{id}/files/download?path=marker.txt"),
        ("GET", "/no/such/route"),
    ],
)
def test_every_route_refuses_near_miss_keys(
    api: Api, neighbour: dict[str, Any], host_marker: Path, method: str, path: str
) -> None:
    key = api.server.api_key
    base = api.server.api_url.removesuffix("/api")
    for authorization in (f"bearer {key}", f"Bearer {key}x", f"Bearer {key[:-1]}", key, "Bearer"):
        response = httpx.request(
            method, base + path.format(id=neighbour["id"]), headers={"Authorization": authorization}
        )
        assert response.status_code == 401, (path, authorization)
        assert response.json()["code"] == "UNAUTHORIZED"
        assert "neighbour" not in response.text
    assert api.api("GET", f"/sandbox/{neighbour['id']}").json()["state"] == "started"
    _assert_unaffected(api, neighbour, host_marker)


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_malformed_json_bodies_are_400_json(
    api: Api, neighbour: dict[str, Any], host_marker: Path, body: bytes
) -> None:
    for url in (
        f"{api.server.api_url}/sandbox",
        f"{api.server.toolbox_url}/{neighbour['id']}/process/execute",
    ):
        response = api.http.post(url, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400
        assert response.json()["statusCode"] == 400
    _assert_unaffected(api, neighbour, host_marker)


@pytest.mark.parametrize("path", ["/api/sandbox", "/toolbox/{id}/process/execute"])
def test_a_huge_json_body_is_refused_before_it_is_read(
    api: Api, neighbour: dict[str, Any], host_marker: Path, path: str
) -> None:
    """Declaring 64 GiB is enough for a 413: the server never waits for (nor buffers) the bytes."""
    request = (
        f"POST {path.format(id=neighbour['id'])} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {api.server.api_key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {64 << 30}\r\n\r\n{{"
    )
    with socket.create_connection(("127.0.0.1", api.server.port), timeout=10) as client:
        client.sendall(request.encode())
        status_line = client.recv(4096).split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
    _assert_unaffected(api, neighbour, host_marker)


def _signed(api: Api, sandbox_id: str, port: int, expires: int = 120) -> dict[str, Any]:
    result: dict[str, Any] = api.api(
        "GET", f"/sandbox/{sandbox_id}/ports/{port}/signed-preview-url", params={"expiresInSeconds": expires}
    ).json()
    return result


def test_forged_preview_token_is_401_token_invalid(
    api: Api, neighbour: dict[str, Any], host_marker: Path
) -> None:
    token = _signed(api, neighbour["id"], 8000)["token"]
    forged = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
    for candidate in (forged, "a" * 61, "0" * 56, "not-a-token"):
        response = api.preview(f"8000-{candidate}.localhost")
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["code"] == "TOKEN_INVALID"
    _assert_unaffected(api, neighbour, host_marker)


def test_expired_preview_token_is_401_token_expired(
    api: Api, neighbour: dict[str, Any], host_marker: Path
) -> None:
    signed = _signed(api, neighbour["id"], 8000, expires=1)
    time.sleep(2.1)
    response = api.preview(f"8000-{signed['token']}.localhost")
    assert response.status_code == 401
    assert response.json() == {
        "statusCode": 401,
        "message": "preview token has expired",
        "error": "Unauthorized",
        "code": "TOKEN_EXPIRED",
    }
    _assert_unaffected(api, neighbour, host_marker)


def test_preview_token_for_another_port_is_refused(
    api: Api, neighbour: dict[str, Any], host_marker: Path
) -> None:
    signed = _signed(api, neighbour["id"], 8000)
    response = api.preview(f"9000-{signed['token']}.localhost")
    assert response.status_code == 401
    # The port is not in the token but under its MAC: another port fails like a forgery.
    assert response.json()["code"] == "TOKEN_INVALID"
    _assert_unaffected(api, neighbour, host_marker)


def test_preview_token_of_another_sandbox_is_refused(
    api: Api, attacker: dict[str, Any], neighbour: dict[str, Any], host_marker: Path
) -> None:
    attacker_token = api.api("GET", f"/sandbox/{attacker['id']}/ports/8000/preview-url").json()["token"]
    response = api.preview(
        f"8000-{neighbour['id']}.localhost", headers={"x-daytona-preview-token": attacker_token}
    )
    assert response.status_code == 401
    assert response.json()["code"] == "TOKEN_INVALID"
    missing = api.preview(f"8000-{neighbour['id']}.localhost")
    assert missing.status_code == 401
    assert missing.json()["code"] == "TOKEN_MISSING"
    _assert_unaffected(api, neighbour, host_marker)


class _ProcessCounter:
    """Samples, from the host, how many processes one sandbox's pid namespace holds at once.

    One walk over /proc is no snapshot: processes exit and others fork while it runs, so it can
    count more processes than ever lived at the same time. Each sample therefore looks twice and
    keeps the processes the second look finds again (same pid, same start time): all of them were
    alive at the moment between the two looks, so a sample never overstates.
    """

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _count(self) -> int:
        seen: dict[str, bytes] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.readlink(f"/proc/{entry}/ns/pid") == self.namespace:
                        seen[entry] = _start_time(entry)
                except OSError:
                    continue
        return sum(1 for pid, start in seen.items() if _start_time_or_none(pid) == start)

    def _run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, self._count())

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def _start_time(pid: str) -> bytes:
    """When the process started, in clock ticks since boot: with the pid, it names one process."""
    return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[19]


def _start_time_or_none(pid: str) -> bytes | None:
    try:
        return _start_time(pid)
    except OSError:
        return None


def _pids_cgroup_of(pid: int) -> Path:
    """The host directory of the cgroup v1 pids group a process belongs to."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, group = line.split(":", 2)
        if "pids" in controllers.split(","):
            return Path("/sys/fs/cgroup/pids") / group.lstrip("/")
    raise AssertionError(f"process {pid} is in no pids cgroup")


def _refused_forks(group: Path) -> int:
    """How many forks the group refused because it was at its ``pids.max``."""
    events = dict(line.split() for line in (group / "pids.events").read_text().splitlines())
    return int(events["max"])


def _live_processes_in(namespace: str, settle: float = 0.0) -> list[int]:
    """Host pids of a pid namespace's live processes; SIGKILLed ones get ``settle`` seconds to end."""
    deadline = time.monotonic() + settle
    while (live := _live_processes_once(namespace)) and len(live) > 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    return live


def _live_processes_once(namespace: str) -> list[int]:
    live = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") != namespace:
                    continue
                status = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
            except OSError:
                continue
            if status not in (b"Z", b"X"):
                live.append(int(entry))
    return live


def _runs(pid: int, argv: list[str]) -> bool:
    """Whether a live process ``pid`` has exactly ``argv`` as its command line.

    Exactly, not a substring: the ``nohup`` and ``sh -c`` stages that exec into a command share
    its pid and contain its words, but are not it yet. A zombie has no command line left.
    """
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes() == b"".join(arg.encode() + b"\0" for arg in argv)
    except OSError:
        return False


def _wait_for_process(namespace: str, argv: list[str], within: float = 10.0) -> int:
    """The host pid of the one process of a pid namespace that runs ``argv``, once it does."""
    deadline = time.monotonic() + within
    while not (found := [pid for pid in _live_processes_once(namespace) if _runs(pid, argv)]):
        assert time.monotonic() < deadline, f"no process {argv} appeared in the sandbox"
        time.sleep(0.01)
    [pid] = found
    return pid


def _ignores_sigterm(pid: int) -> bool:
    ignored = next(
        line.split()[1]
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("SigIgn:")
    )
    return bool(int(ignored, 16) & (1 << (signal.SIGTERM - 1)))


def _eventually_served(api: Api, sandbox_id: str, within: float = 30.0) -> bool:
    """The sandbox recovers once the killed bomb's processes are reaped (a 503 until then)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        response = api.toolbox("POST", sandbox_id, "/process/execute", json={"command": "echo still-served"})
        if response.status_code == 200:
            return bool(response.json()["result"] == "still-served\n")
        assert response.status_code == 503, response.text
        time.sleep(0.1)
    return False
