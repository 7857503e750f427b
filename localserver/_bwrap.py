"""The bubblewrap command line of a sandbox, and starting it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from daytonaflow.localserver import seccomp
from daytonaflow.localserver._limits import MIB, SandboxLimits
from daytonaflow.localserver._uids import SANDBOX_UID
from daytonaflow.localserver.egress import SANDBOX_NET_DIR

_TOP_LEVEL_SYSTEM = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_SECCOMP_PROGRAM = seccomp.filter_program()

SETPRIV = next((path for path in ("/usr/bin/setpriv", "/bin/setpriv") if os.access(path, os.X_OK)), None)
"""util-linux's setpriv, which drops a root server's child to the sandbox's uid (see :func:`spawn`);
``None``: Python's own setuid in a forked child."""


@dataclass
class SpawnPlan:
    """Everything needed to start one sandbox: argv, inherited fds and the environment."""

    argv: list[str]
    pass_fds: list[int]
    close_after_spawn: list[int]


def compile_agent(python: str, source: Path, target: Path) -> bool:
    """Byte-compile the agent with the sandbox's own python, unless ``target`` already holds it.

    Compiling spawns that python (50-150 ms at a server's start), so the result is kept beside
    ``target`` with what it was made from: the source's hash and the interpreter's identity
    (its path, the file it resolves to and that file's inode, size and mtime, which an upgrade
    changes). The compiled file's own hash is kept too, so a damaged one is made again. Returns
    whether it compiled.
    """
    key = _agent_key(python, source)
    if _compiled_agent_matches(target, key):
        return False
    record = _agent_record(target)
    record.unlink(missing_ok=True)  # no record may vouch for a file being replaced
    # Under a name of its own, renamed into place whole: a server starting at the same moment
    # never runs a half-written file.
    partial = target.with_name(f"{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    compile_script = (
        "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)"
    )
    try:
        subprocess.run([python, "-I", "-c", compile_script, str(source), str(partial)], check=True)
        partial.chmod(0o644)
        compiled = hashlib.sha256(partial.read_bytes()).hexdigest()
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    _write_atomically(record, json.dumps({"key": key, "compiled": compiled}))
    return True


def _agent_record(target: Path) -> Path:
    return target.with_name(target.name + ".key")


def _agent_key(python: str, source: Path) -> str:
    interpreter = os.path.realpath(python)
    status = os.stat(interpreter)
    identity = [python, interpreter, status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns]
    digest = hashlib.sha256(source.read_bytes())
    digest.update(json.dumps(identity).encode())
    return digest.hexdigest()


def _compiled_agent_matches(target: Path, key: str) -> bool:
    try:
        record = json.loads(_agent_record(target).read_text())
        compiled = hashlib.sha256(target.read_bytes()).hexdigest()
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("key") == key and record.get("compiled") == compiled


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        partial.write_text(text)
        partial.chmod(0o644)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def plan_spawn(
    *,
    bwrap: str,
    python: str,
    agent_script: Path,
    synthetic_etc: Path,
    home: Path,
    node_dir: Path | None,
    hostname: str,
    listen_fd: int,
    lifeline_fd: int,
    limits: SandboxLimits,
    env: Mapping[str, str],
    rlimit_fallbacks: Mapping[str, int],
    ptys: Path | None = None,
    net_dir: Path | None = None,
    mounts: Sequence[tuple[int, str]] = (),
) -> SpawnPlan:
    """The bwrap command line for a sandbox; non-system paths are passed as open fds.

    Fds rather than paths, because bwrap runs as the sandbox's host uid, which may not be allowed
    to traverse the state directory (e.g. a 0700 directory of root). ``ptys``, a devpts instance
    of the sandbox's own (see :class:`PrivatePtys`), is the exception: bwrap binds devices by path
    only, and the server made its directory traversable.
    """
    opened: list[int] = []

    def path_fd(path: Path) -> str:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        opened.append(fd)
        return str(fd)

    argv = [
        bwrap,
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        # The agent is the namespace's init: the kernel then drops every signal sandbox code sends
        # it (even SIGKILL), so `kill -9 -1` inside cannot take the toolbox down.
        "--as-pid-1",
        "--new-session",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_UID),
        "--hostname",
        hostname,
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    argv += system_dir_args()
    argv += ["--ro-bind-fd", path_fd(synthetic_etc), "/etc"]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    if ptys is not None:
        argv += ["--dev-bind", str(ptys), "/dev/pts"]
    # Unsized, a tmpfs may take half the host's memory where no memory cgroup charges it.
    argv += ["--perms", "1777", "--size", str(limits.shm_bytes), "--tmpfs", "/dev/shm"]
    argv += [
        "--size",
        str(limits.tmp_bytes),
        "--tmpfs",
        "/tmp",
        "--size",
        str(64 * MIB),
        "--tmpfs",
        "/run",
        "--dir",
        "/home",
        "--bind-fd",
        path_fd(home),
        "/home/daytona",
        "--dir",
        "/opt/daytonaflow",
        "--ro-bind-fd",
        path_fd(agent_script),
        "/opt/daytonaflow/agent.pyc",
    ]
    for fd, mount_path in mounts:
        opened.append(fd)
        argv += ["--bind-fd", str(fd), mount_path]
    if node_dir is not None:
        argv += ["--ro-bind-fd", path_fd(node_dir), "/opt/daytonaflow/node"]
    if net_dir is not None:
        # Bound into every sandbox, spares included (a spare's policy is not known yet): the
        # egress proxy's socket appears in it only for a sandbox whose policy allows egress.
        argv += ["--ro-bind-fd", path_fd(net_dir), SANDBOX_NET_DIR]
    if _SECCOMP_PROGRAM is not None:
        program_fd = seccomp.filter_fd(_SECCOMP_PROGRAM)
        opened.append(program_fd)
        argv += ["--seccomp", str(program_fd)]
    argv += ["--chdir", "/home/daytona", "--remount-ro", "/", "--clearenv"]
    argv += ["--setenv", "PATH", "/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8"]
    rlimits = {"nofile": limits.open_files, "fsize": limits.disk_bytes, **rlimit_fallbacks}
    config = {
        "env": dict(env),
        "cpu_seconds": limits.cpu_seconds,
        "rlimits": rlimits,
        "upload_limit": limits.upload_bytes,
    }
    argv += [python, "-S", "-I", "/opt/daytonaflow/agent.pyc", str(listen_fd), str(lifeline_fd)]
    argv.append(json.dumps(config))
    return SpawnPlan(argv=argv, pass_fds=[*opened, listen_fd, lifeline_fd], close_after_spawn=opened)


def spawn(
    plan: SpawnPlan, host_uid: int, log_path: Path, groups: Sequence[int] = ()
) -> subprocess.Popen[bytes]:
    """Start bwrap; as root, drop to ``host_uid`` first so the sandbox is unprivileged on the host.

    ``groups``: the only supplementary groups it keeps (the gids of the volumes it mounts: see
    :mod:`volumes`); an unprivileged user namespace cannot drop them, so the kernel checks the
    volumes' files against them inside too.

    The drop is setpriv's when there is one: Python forks (rather than vforks) a child it must
    setuid itself, and a fork copies the server's page tables while holding the GIL, tens of
    milliseconds for a server of a few hundred MiB during which nothing else of it runs.
    setpriv sets real, effective and saved ids and clears the groups as Popen would.
    """
    as_other = host_uid != os.geteuid()
    setpriv = SETPRIV
    argv = plan.argv
    by_setpriv = as_other and setpriv is not None
    if by_setpriv:
        kept = f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups"
        ids = [f"--reuid={host_uid}", f"--regid={host_uid}", kept]
        argv = [str(setpriv), *ids, "--", *plan.argv]
    by_popen = as_other and not by_setpriv
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        return subprocess.Popen(
            argv,
            pass_fds=plan.pass_fds,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log_fd,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            user=host_uid if by_popen else None,
            group=host_uid if by_popen else None,
            extra_groups=list(groups) if by_popen else None,
            cwd="/",
            # Out of the server's process group: a Ctrl-C (or `timeout -s INT`) meant for the
            # runner must not reach the sandboxes, which the runner then cleans up in order.
            start_new_session=True,
        )
    finally:
        os.close(log_fd)
        for fd in plan.close_after_spawn:
            os.close(fd)


def kill_spawned(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL what :func:`spawn` started: bwrap and its whole process group.

    Killing bwrap alone is not enough. Until its clone child has been given its uid map it waits
    on an eventfd for bwrap, with ``--die-with-parent`` not armed yet; a bwrap killed in that
    window leaves the child waiting forever, reparented to init, holding a copy of every mount
    the host had (each home of the other sandboxes, whose loop devices then never detach). The
    child is still in bwrap's process group then, so the group's kill reaches it. Only an
    unreaped bwrap's group is killed: its pid, the group's id, cannot have been reused.
    """
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def system_dir_args() -> list[str]:
    """/bin, /lib… as on the host: symlinks into /usr when merged, read-only binds otherwise."""
    args: list[str] = []
    for name in _TOP_LEVEL_SYSTEM:
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{name}"]
    return args
