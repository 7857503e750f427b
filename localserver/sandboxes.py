"""Sandbox records and their lifecycle: creating → started ⇄ stopped, destroyed, error."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import ipaddress
import json
import logging
import math
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from daytonaflow.localserver._bwrap import compile_agent, kill_spawned, plan_spawn, spawn
from daytonaflow.localserver._cgroups import Cgroups
from daytonaflow.localserver._etc import write_synthetic_etc
from daytonaflow.localserver._limits import SandboxLimits, host_files_in_use
from daytonaflow.localserver._processes import files_held_by, frozen_sandbox, kill_sandbox_processes
from daytonaflow.localserver._ptys import PrivatePtys
from daytonaflow.localserver._uids import SandboxUids
from daytonaflow.localserver.agent_client import AgentClient
from daytonaflow.localserver.disk import (
    LIBC,
    OVER_ANY_QUOTA,
    LoopVolumes,
    TreeRemovalError,
    VolumeError,
    default_free_floor,
    filesystem_space,
    measure_disk,
    open_unlinked_bytes,
    pids_by_pid_namespace,
)
from daytonaflow.localserver.disk import remove_tree as _remove_tree
from daytonaflow.localserver.egress import (
    EGRESS_PORT,
    SANDBOX_NET_DIR,
    SOCKET_NAME,
    EgressPolicy,
    EgressProxy,
)
from daytonaflow.localserver.errors import (
    AgentCallError,
    ApiError,
    RequestFieldError,
    SandboxKillError,
    SandboxUidRefusedError,
    SandboxUidsExhaustedError,
)
from daytonaflow.localserver.snapshots import (
    BuildPlan,
    SnapshotRecord,
    SnapshotStore,
    build_steps,
    copy_tree,
)
from daytonaflow.localserver.volumes import (
    DEFAULT_VOLUME_BYTES,
    MAX_MOUNTS_PER_SANDBOX,
    VolumeMount,
    VolumeRecord,
    VolumeStore,
    check_mount_path,
    check_subpath,
)

logger = logging.getLogger("daytonaflow.localserver")
_T = TypeVar("_T")
# A started bwrap, its devpts instance still mounted on the host, the cgroup.procs files to join.
_Started = tuple[subprocess.Popen[bytes], Path | None, list[str]]
_Paths = list[Path]
_Mounts = list[VolumeMount]
_Binds = list[tuple[int, str]]
_Names = list[str]

_AGENT_SOURCE = Path(__file__).with_name("_agent.py")
_SOCKETS_PREFIX = "daytonaflow-sockets-"
_READY_TIMEOUT_SECONDS = 15.0
_DISK_SCAN_MAX_ENTRIES = 200_000
# Monitor rounds in a row whose scan of a home never held still (each is four attempts) before
# the home counts as over its quota: a build renaming directories now and then does not lose a
# round in four, let alone several in a row; sandbox code swapping them to hide data does.
_UNSETTLED_SCANS_LIMIT = 3
_REMOVAL_RETRY_SECONDS = 10.0
# Threads of the monitor's own executor: that many sandboxes are scanned at once, and the scans
# never queue ahead of the starts, stops and kills, which have executors of their own.
_MONITOR_WORKERS = 4
# Threads that start and kill sandbox processes and make, join and remove their cgroups. Their
# work mostly waits (for a forked child's exec, an RCU grace period, a killed process to leave its
# group), so many run at once; none of it waits behind home filesystems or tree removals.
_PROCESS_WORKERS = 16
# Threads that make, mount, unmount and remove sandboxes' files: mostly waiting for the disk (mkfs is
# CPU-bound, but a few at once suffice for it).
_FILES_WORKERS = 8
# Under host-wide file table pressure, a sandbox holding fewer files than this is never killed:
# an idle sandbox (agent, shell, libraries) holds about a hundred, and killing it frees nothing.
_PRESSURE_KILL_FLOOR = 1000
_BASE_ENV = {
    "PATH": "/opt/daytonaflow/node/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/home/daytona",
    "USER": "daytona",
    "LOGNAME": "daytona",
    "SHELL": "/bin/bash",
    "LANG": "C.UTF-8",
    "TERM": "xterm-256color",
}


# What a record read back from disk must hold, so one damaged file cannot break listing them all.
_RECORD_TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "str | None": (str, type(None)),
    "int | None": (int, type(None)),
    "int": int,
    "bool": bool,
    "float": (int, float),
    "dict[str, str]": dict,
    "list[dict[str, str]]": list,
}


# A snapshot build runs the Dockerfile's lines as the image's root would, with what a sandbox has:
# pip installs for the user (into the home, what the snapshot saves), every request through the
# egress proxy (the index may be the host's loopback), and `python` (the SDK writes `python -m pip`)
# resolving to the host's python3 for the build only.
_BUILD_BIN = "/home/daytona/.daytonaflow-build"
_BUILD_ENV = {
    "PATH": f"{_BUILD_BIN}:/home/daytona/.local/bin:/usr/local/bin:/usr/bin:/bin",
    "PIP_USER": "1",
    "PIP_BREAK_SYSTEM_PACKAGES": "1",
    "PIP_NO_CACHE_DIR": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "NO_PROXY": "",
    "no_proxy": "",
}
_BUILD_SHIM = f"mkdir -p {_BUILD_BIN} && ln -sf /usr/bin/python3 {_BUILD_BIN}/python"
_BUILD_SHIM_REMOVAL = f"rm -rf {_BUILD_BIN}"
_BUILD_STEP_SECONDS = 900.0
_BUILD_LABEL = "daytonaflow.snapshot-build"
_BUILD_OUTPUT_CHARS = 2000

_STAGING = "staging"
_MS_BIND = 4096
_MNT_DETACH = 2
_UNSTAGE_ATTEMPTS = 8

#: The snapshot a create names to get the default (an empty home): what ``/config`` reports.
DEFAULT_SNAPSHOT = "local"

#: Daytona's default: a sandbox stopped for seven days is archived.
DEFAULT_AUTO_ARCHIVE_MINUTES = 7 * 24 * 60


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _whole_units(amount: float) -> int:
    return max(1, math.ceil(amount))


def _minutes(interval: float) -> int | float:
    """An interval as a client wrote it: ``15`` stays an integer (the SDKs type it one), and only a
    fractional one (a local extension for short test timeouts) stays a float."""
    return int(interval) if float(interval).is_integer() else interval


@dataclass
class SandboxRecord:
    """What the API reports about a sandbox; persisted as ``sandbox.json`` in its directory."""

    id: str
    name: str
    labels: dict[str, str]
    env: dict[str, str]
    target: str
    public: bool
    auto_stop_interval: float
    cpu: float
    memory: float
    disk: float
    preview_token: str
    state: str = "creating"
    error_reason: str | None = None
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)
    last_activity_at: str = field(default_factory=_now)
    host_uid: int | None = None
    """The host uid the sandbox runs as and its files belong to (``None`` in records written
    before uids were per sandbox: its home's owner then)."""
    destroy_pending: bool = False
    """Deleted, but its files could not all be removed yet: the server keeps retrying."""
    network_block_all: bool = True
    """As the create asked (no egress unless it asked otherwise); records before the field had none."""
    network_allow_list: str | None = None
    """The create's comma-separated CIDR list, as given (``None`` when it gave none)."""
    auto_archive_interval: int = DEFAULT_AUTO_ARCHIVE_MINUTES
    """Kept and reported only: this server has no archive tier, a stopped sandbox stays stopped."""
    auto_delete_interval: int = -1
    """Minutes a stopped sandbox waits before the monitor deletes it; negative never."""
    stopped_at: str | None = None
    """When it last stopped (``None`` while it runs): where its auto-delete interval counts from."""
    volumes: list[dict[str, str]] = field(default_factory=list)
    """The create's volumes, checked, as Daytona's ``SandboxVolume`` (``volumeId`` the ID)."""
    snapshot: str | None = None
    """The name of the snapshot its home was copied from (``None``: the default, an empty home)."""

    @property
    def mounts(self) -> list[VolumeMount]:
        return [VolumeMount(m["volumeId"], m["mountPath"], m.get("subpath")) for m in self.volumes]

    @property
    def egress_policy(self) -> EgressPolicy | None:
        """What the network fields ask for (see :class:`EgressPolicy`), ``None``: no egress."""
        return EgressPolicy.of(self.network_block_all, self.network_allow_list)

    def to_api(self, toolbox_proxy_url: str) -> dict[str, Any]:
        """The record as Daytona's ``Sandbox`` model has it: whole numbers where it has integers,
        an optional field left out rather than null (the spec types none of them nullable)."""
        sandbox: dict[str, Any] = {
            "id": self.id,
            "organizationId": "local",
            "name": self.name,
            "snapshot": self.snapshot or "local",
            "user": "daytona",
            "env": dict(self.env),
            "labels": dict(self.labels),
            "public": self.public,
            "networkBlockAll": self.network_block_all,
            "kvm": False,
            "target": self.target,
            # Daytona counts whole cores and GiB; a server default below one (a test's 256 MiB) is
            # reported rounded up, the exact limit being in the isolation report.
            "cpu": _whole_units(self.cpu),
            "gpu": 0,
            "memory": _whole_units(self.memory),
            "disk": _whole_units(self.disk),
            "state": self.state,
            "desiredState": self._desired_state(),
            "recoverable": False,
            "autoStopInterval": _minutes(self.auto_stop_interval),
            "autoArchiveInterval": self.auto_archive_interval,
            "autoDeleteInterval": self.auto_delete_interval,
            "volumes": [dict(mount) for mount in self.volumes],
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "lastActivityAt": self.last_activity_at,
            "sandboxClass": "container",
            "daemonVersion": "daytonaflow-local",
            "runnerId": "local",
            "toolboxProxyUrl": toolbox_proxy_url,
        }
        if self.error_reason is not None:
            sandbox["errorReason"] = self.error_reason
        if self.network_allow_list is not None:
            sandbox["networkAllowList"] = self.network_allow_list
        return sandbox

    def _desired_state(self) -> str:
        """Where the sandbox is headed, in Daytona's ``SandboxDesiredState`` terms."""
        if self.destroy_pending or self.state in ("destroying", "destroyed"):
            return "destroyed"
        if self.state in ("stopping", "stopped"):
            return "stopped"
        return "started"  # creating, starting, started, and an error (it was meant to run)

    def persist(self, directory: Path) -> None:
        data = {k: v for k, v in self.__dict__.items()}
        temp = directory / "sandbox.json.tmp"
        temp.write_text(json.dumps(data))
        temp.chmod(0o600)
        temp.replace(directory / "sandbox.json")

    @classmethod
    def load(cls, directory: Path) -> SandboxRecord:
        """The record in ``directory``; ``ValueError`` naming the field when it is not one."""
        data = json.loads((directory / "sandbox.json").read_text())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        for item in fields(cls):
            expected = _RECORD_TYPES.get(str(item.type))
            if item.name not in data or not expected:
                continue
            value = data[item.name]
            # JSON's true is a Python int too: a number field holding it is damaged all the same.
            if not isinstance(value, expected) or (isinstance(value, bool) and item.type != "bool"):
                raise ValueError(f"field {item.name!r} is not {item.type}")
        return cls(**data)

    def touch(self) -> None:
        self.updated_at = _now()


_RawMounts = list[dict[str, Any]]
_Records = list[SandboxRecord]


@dataclass
class _Running:
    proc: subprocess.Popen[bytes]
    client: AgentClient
    limits: SandboxLimits
    inflight: int = 0
    last_activity: float = field(default_factory=time.monotonic)
    limits_applied: asyncio.Future[None] | None = None
    unsettled_scans: int = 0
    """Monitor rounds in a row whose disk scan the sandbox's moves defeated."""


class SandboxManager:
    """Owns every sandbox of one server: state on disk, processes, cgroups and the monitor."""

    def __init__(
        self,
        *,
        state_dir: Path,
        limits: SandboxLimits,
        bwrap: str,
        python: str,
        node_dir: Path | None,
        uids: SandboxUids,
        cgroups: Cgroups,
        ptys: PrivatePtys | None = None,
        monitor_interval: float = 1.0,
        keep_spare: bool = True,
        stop_grace_seconds: float = 2.0,
        file_budget: int | None = None,
        volumes: LoopVolumes | None = None,
        disk_free_floor: int | None = None,
        existing_volumes: LoopVolumes | None = None,
        file_pressure: int | None = None,
        volume_bytes: int = DEFAULT_VOLUME_BYTES,
    ) -> None:
        """``file_budget``: entries of the host's file table one sandbox may hold (``None``: not
        watched). ``file_pressure``: entries in use on the whole host past which the sandboxes
        holding the most are killed until it is below again, whatever each one's share.
        ``disk_free_floor``: free bytes of the state directory's filesystem below which
        accounting-mode sandboxes have their processes killed (``None``: 1 GiB or 5 % of it).
        ``existing_volumes``: without ``volumes``, what mounts the homes sandboxes made in loop
        mode under an earlier server (new sandboxes are accounted). ``volume_bytes``: what one
        volume may hold."""
        self.state_dir = state_dir
        self.limits = limits
        self.bwrap = bwrap
        self.python = python
        self.node_dir = node_dir
        self.uids = uids
        self.ptys = ptys
        self.cgroups = cgroups
        self.monitor_interval = monitor_interval
        self.file_budget = file_budget
        self.file_pressure = file_pressure
        self._checks: dict[str, asyncio.Task[None]] = {}
        self._file_table_check: asyncio.Task[None] | None = None
        self._volume_check: asyncio.Task[None] | None = None
        self._builds: set[asyncio.Task[None]] = set()
        self._monitor_executor = ThreadPoolExecutor(
            _MONITOR_WORKERS, thread_name_prefix="daytonaflow-monitor"
        )
        self._process_executor = ThreadPoolExecutor(
            _PROCESS_WORKERS, thread_name_prefix="daytonaflow-processes"
        )
        self._files_executor = ThreadPoolExecutor(_FILES_WORKERS, thread_name_prefix="daytonaflow-files")
        self._background: set[asyncio.Future[object]] = set()
        self.records: dict[str, SandboxRecord] = {}
        self.running: dict[str, _Running] = {}
        self.adopted: list[str] = []
        self._locks: dict[str, asyncio.Lock] = {}
        self._monitor: asyncio.Task[None] | None = None
        self._spare: tuple[str, asyncio.Task[_Running]] | None = None
        self._closing = False
        self.keep_spare = keep_spare
        self.stop_grace_seconds = stop_grace_seconds
        self._sockets: Path | None = None
        self._nets: Path | None = None
        self._egress: dict[str, EgressProxy] = {}
        self.protected_ports: set[int] = set()
        """The server's own ports, which no egress proxy connects to on this host (set by the server)."""
        # Every agent holds the read end and exits when it reads EOF: the write end lives only in
        # this process, so the sandboxes end with the server even when it dies before bwrap's
        # --die-with-parent is armed (a SIGKILL between fork and bwrap's prctl).
        self._lifeline_read, self._lifeline_write = os.pipe2(os.O_CLOEXEC)
        self._etc = state_dir / "etc"
        self._root = state_dir / "sandboxes"
        self.volumes = volumes
        """Loop-mounted home filesystems when the host allows them; else the monitor accounts."""
        self.existing_volumes = volumes or existing_volumes
        """What mounts the homes that are images: ``volumes``, else the earlier servers' kind."""
        self._removals_pending: dict[Path, float] = {}
        self._namespaces: dict[str, list[int]] | None = None
        self.disk_free_floor = disk_free_floor
        self._free_at_last_backstop: int | None = None
        self.volume_store = VolumeStore(state_dir / "volumes", uids, volumes, size_bytes=volume_bytes)
        self.snapshot_store = SnapshotStore(state_dir / "snapshots")

    # ---- startup and shutdown -----------------------------------------------------------------------

    async def open(self) -> None:
        # Sockets live in a short private temp directory: a Unix socket path holds 108 bytes at most.
        self._sockets = Path(tempfile.mkdtemp(prefix=f"{_SOCKETS_PREFIX}{os.getpid()}-"))
        # The egress sockets' directories, bound into the sandboxes: bwrap (the sandbox's uid)
        # must traverse to them, which the agents' 0700 directory does not let it.
        self._nets = Path(tempfile.mkdtemp(prefix=f"{_SOCKETS_PREFIX}{os.getpid()}-"))
        self._nets.chmod(0o711)
        self._root.mkdir(parents=True, exist_ok=True)
        # Traversable but not listable: other host users must not find the sandboxes' homes.
        self._root.chmod(0o711)
        write_synthetic_etc(self._etc)
        runtime = self.state_dir / "runtime"
        runtime.mkdir(mode=0o711, exist_ok=True)
        self._agent = runtime / "agent.pyc"
        compile_agent(self.python, _AGENT_SOURCE, self._agent)
        self.volume_store.open()
        self.snapshot_store.open()
        self._adopt_leftovers()
        await self._remove_abandoned_builds()
        _remove_stale_socket_dirs()
        self._monitor = asyncio.create_task(self._monitor_loop())
        if self.keep_spare:
            self._refill_spare()

    def _adopt_leftovers(self) -> None:
        """Sandboxes an earlier server left: their processes died with it; keep them as stopped.

        One sandbox's trouble (unreadable record, undeletable files, a mount that will not go)
        is logged and leaves that sandbox in ``error`` or queued for removal: the server starts.
        """
        for directory in sorted(self._root.iterdir()):
            if not directory.is_dir():
                continue
            try:
                self._adopt(directory)
            except Exception as error:  # any one sandbox's failure must not stop the server
                logger.exception("cannot adopt the sandbox in %s", directory)
                self._adopt_as_error(directory, f"could not be adopted after a restart: {error}")

    async def _remove_abandoned_builds(self) -> None:
        """The build sandboxes of snapshots an earlier server was building (now build_failed)."""
        for record in [r for r in self.records.values() if _BUILD_LABEL in r.labels]:
            try:
                await self.delete(record)
            except ApiError as error:  # retried by the monitor like any removal
                logger.warning("cannot remove abandoned build sandbox %s: %s", record.id, error.message)

    def _adopt(self, directory: Path) -> None:
        if not (directory / "sandbox.json").exists():
            # A spare, or a create or delete that never finished: no user's sandbox.
            self._remove_or_retry(directory)
            return
        try:
            record = SandboxRecord.load(directory)
        except (OSError, ValueError, TypeError) as error:
            # Its files may be someone's work: keep them, show the sandbox as error, let DELETE go.
            self._detach_volume(directory)
            self._adopt_unreadable(directory, f"{directory / 'sandbox.json'} is unreadable: {error}")
            return
        # A server killed with -9 leaves the home mounted: its processes died with it.
        self._detach_volume(directory)
        if record.destroy_pending or record.state in ("destroying", "destroyed", "creating"):
            if self._remove_or_retry(directory):
                return
            record.destroy_pending = True
            record.state = "error"
            record.error_reason = record.error_reason or "its files could not be removed yet"
        elif record.state != "error":
            record.state = "stopped"
        self._adopt_uid(record, directory)
        record.touch()
        record.persist(directory)
        self.records[record.id] = record
        self.adopted.append(record.id)

    def _adopt_uid(self, record: SandboxRecord, directory: Path) -> None:
        """Keep the uid the sandbox's files belong to (records written before uids were per
        sandbox: its home's owner)."""
        if record.host_uid is None:
            try:
                record.host_uid = (directory / "home").stat().st_uid
            except OSError:  # no home left, so no files to own
                record.host_uid = self.uids.shared
        try:
            self.uids.adopt(record.id, record.host_uid)
        except SandboxUidRefusedError as error:
            # Root, or a uid that is not this server's to give: it never runs as that; its files
            # stay for the user to fetch or delete.
            reason = f"cannot run as its recorded host uid: {error}"
            record.state = "error"
            record.error_reason = f"{record.error_reason}; {reason}" if record.error_reason else reason

    def _adopt_as_error(self, directory: Path, reason: str) -> None:
        """Keep a sandbox whose adoption failed visible, as ``error``."""
        try:
            record = SandboxRecord.load(directory)
        except (OSError, ValueError, TypeError):
            self._adopt_unreadable(directory, reason)
            return
        record.state = "error"
        record.error_reason = reason
        self._adopt_uid(record, directory)
        self.records[record.id] = record
        self.adopted.append(record.id)
        with contextlib.suppress(OSError):
            record.persist(directory)

    def _adopt_unreadable(self, directory: Path, reason: str) -> None:
        """A stand-in record, named after the directory; the damaged file is left as it is."""
        if directory.name in self.records:
            return
        record = SandboxRecord(
            id=directory.name,
            name=directory.name,
            labels={},
            env={},
            target="local",
            public=False,
            auto_stop_interval=15,
            cpu=self.limits.cpu_cores,
            memory=self.limits.memory_bytes / (1 << 30),
            disk=self.limits.disk_bytes / (1 << 30),
            preview_token=secrets.token_urlsafe(24),
            state="error",
            error_reason=reason,
        )
        self._adopt_uid(record, directory)
        self.records[record.id] = record
        self.adopted.append(record.id)

    def _remove_or_retry(self, directory: Path) -> bool:
        """Remove a sandbox's directory; on failure, log it and retry from the monitor later."""
        return self._note_removal(directory, self._unmount_and_remove(directory))

    async def _remove_off_loop(self, directory: Path) -> bool:
        loop = asyncio.get_running_loop()
        error = await loop.run_in_executor(self._files_executor, self._unmount_and_remove, directory)
        return self._note_removal(directory, error)

    def _unmount_and_remove(self, directory: Path) -> TreeRemovalError | None:
        """Still mounted, the home's filesystem stops the removal at its mount point."""
        self._detach_volume(directory)
        # A staged volume subpath is a bind mount on the same filesystem: a removal walking into
        # it would delete the volume's files. Nothing is removed while one stays mounted.
        staged = self._unstage(directory.name)
        if staged:
            return TreeRemovalError(f"{directory}: volume subpaths still mounted at {', '.join(staged)}")
        try:
            _remove_tree(directory)
        except TreeRemovalError as error:
            return error
        return None

    def _note_removal(self, directory: Path, error: TreeRemovalError | None) -> bool:
        if error is not None:
            logger.warning("%s; retrying every %gs", error, _REMOVAL_RETRY_SECONDS)
            self._removals_pending[directory] = time.monotonic() + _REMOVAL_RETRY_SECONDS
            return False
        self._removals_pending.pop(directory, None)
        return True

    async def close(self) -> None:
        self._closing = True
        for build in list(self._builds):
            build.cancel()
        await asyncio.gather(*self._builds, return_exceptions=True)
        await self._close_spare()
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        checks = [
            *self._checks.values(),
            *([self._file_table_check] if self._file_table_check else []),
            *([self._volume_check] if self._volume_check else []),
        ]
        for check in checks:
            check.cancel()
        await asyncio.gather(*checks, return_exceptions=True)
        # A scan already running in a thread finishes on its own; nothing waits for it.
        self._monitor_executor.shutdown(wait=False, cancel_futures=True)
        stopping = [self.records[sandbox_id] for sandbox_id in list(self.running)]
        killed = await asyncio.gather(*(self._kill(record) for record in stopping), return_exceptions=True)
        for record, outcome in zip(stopping, killed, strict=True):
            if isinstance(outcome, BaseException):
                logger.warning("killing sandbox %s failed: %s", record.id, outcome)
            sandbox_id = record.id
            record.state = "stopped"
            record.touch()
            try:
                record.persist(self._dir(record))
            except OSError as error:  # one sandbox's trouble must not keep the others running
                logger.warning("cannot record sandbox %s as stopped: %s", sandbox_id, error)
        # Of stopped sandboxes too: one in error may hold it.
        directories = [self._dir(record) for record in self.records.values()]
        await self._off_loop(self._files_executor, self._detach_volumes, directories)
        await self._off_loop(self._files_executor, self.volume_store.close)
        await asyncio.gather(*self._background, return_exceptions=True)
        await self._off_loop(self._process_executor, self.cgroups.remove_instance_tree)
        # Every start, kill and removal was awaited above: nothing is left running in them.
        self._process_executor.shutdown(wait=True)
        self._files_executor.shutdown(wait=True)
        if self._sockets is not None:
            shutil.rmtree(self._sockets, ignore_errors=True)
            self._sockets = None
        if self._nets is not None:
            shutil.rmtree(self._nets, ignore_errors=True)
            self._nets = None
        for fd in (self._lifeline_read, self._lifeline_write):
            with contextlib.suppress(OSError):
                os.close(fd)

    # ---- lookups --------------------------------------------------------------------------------------

    def _dir(self, record: SandboxRecord) -> Path:
        return self._root / record.id

    def home(self, record: SandboxRecord) -> Path:
        return self._home_of(record.id)

    def _home_of(self, sandbox_id: str) -> Path:
        directory = self._root / sandbox_id
        return LoopVolumes.home(directory) if self._on_volume(sandbox_id) else directory / "home"

    def _on_volume(self, sandbox_id: str) -> bool:
        """Whether the sandbox's home is its own filesystem (decided at create, kept for good)."""
        return LoopVolumes.home(self._root / sandbox_id).parent.is_dir()

    def scratch_dir(self, record: SandboxRecord) -> Path:
        """A host directory of the sandbox, invisible inside it, on the same filesystem as home."""
        directory = self._dir(record)
        path = LoopVolumes.scratch(directory) if self._on_volume(record.id) else directory / "scratch"
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    def uid_of(self, record: SandboxRecord) -> int:
        """The host uid the sandbox's processes run as and its files must belong to."""
        return self.uids.of(record.id)

    def save(self, record: SandboxRecord) -> None:
        """Persist a change made through the API (labels, public, auto-stop)."""
        record.touch()
        record.persist(self._dir(record))

    def get(self, id_or_name: str) -> SandboxRecord:
        record = self.records.get(id_or_name)
        if record is None:
            record = next((r for r in self.records.values() if r.name == id_or_name), None)
        if record is None:
            raise ApiError(404, f"Sandbox with ID or name {id_or_name} not found", code="SANDBOX_NOT_FOUND")
        return record

    def list(self, labels: Mapping[str, str] | None = None) -> list[SandboxRecord]:
        records = sorted(self.records.values(), key=lambda r: r.created_at)
        if labels:
            records = [r for r in records if all(r.labels.get(k) == v for k, v in labels.items())]
        return records

    def client(self, record: SandboxRecord) -> AgentClient:
        running = self.running.get(record.id)
        # While a snapshot is taken the sandbox is frozen: a call waits for it rather than failing.
        if record.state not in ("started", "snapshotting") or running is None:
            raise ApiError(
                409, f"Sandbox {record.id} is not started (state: {record.state})", code="NOT_STARTED"
            )
        return running.client

    def limits_of(self, record: SandboxRecord) -> SandboxLimits:
        running = self.running.get(record.id)
        return running.limits if running else self._limits_for(record)

    def keep_alive(self, record: SandboxRecord) -> None:
        """Count the sandbox as just used: its auto-stop interval starts again from now."""
        running = self.running.get(record.id)
        if running is not None:
            running.last_activity = time.monotonic()
        record.last_activity_at = _now()

    @contextlib.asynccontextmanager
    async def activity(self, record: SandboxRecord) -> AsyncIterator[AgentClient]:
        """Mark the sandbox busy (no auto-stop) while a toolbox or preview request runs."""
        client = self.client(record)
        running = self.running[record.id]
        running.inflight += 1
        try:
            if running.limits_applied is not None:
                await running.limits_applied
            yield client
        finally:
            running.inflight -= 1
            running.last_activity = time.monotonic()
            record.last_activity_at = _now()

    # ---- lifecycle ----------------------------------------------------------------------------------

    async def create(self, body: Mapping[str, Any]) -> SandboxRecord:
        limits = self.limits.with_request(body.get("cpu"), body.get("memory"), body.get("disk"))
        # Before anything is made: an unknown volume or snapshot must leave nothing behind.
        mounts = await self._checked_mounts(body.get("volumes") or [])
        snapshot = self._checked_snapshot(body.get("snapshot"), limits)
        if body.get("name"):
            # Before the spare is claimed: a taken name must not cost it.
            self._check_name_free(str(body["name"]))
        # The spare started with an empty home and no volumes: only a plain create may take it.
        claimed = None if mounts or snapshot else await self._claim_spare(limits)
        sandbox_id = claimed[0] if claimed else str(uuid.uuid4())
        name = str(body.get("name") or sandbox_id)
        try:
            self._check_name_free(name)  # another create may have taken it while the spare was awaited
        except ApiError:
            if claimed:
                await self._discard(sandbox_id, claimed[1])
            raise
        host_uid = self.uids.of(sandbox_id) if claimed else self.uids.assign(sandbox_id)
        record = SandboxRecord(
            id=sandbox_id,
            name=name,
            labels={str(k): str(v) for k, v in (body.get("labels") or {}).items()},
            env={str(k): str(v) for k, v in (body.get("env") or {}).items()},
            target=str(body.get("target") or "local"),
            public=bool(body.get("public", False)),
            auto_stop_interval=float(body.get("autoStopInterval", 15)),
            cpu=limits.cpu_cores,
            memory=limits.memory_bytes / (1 << 30),
            disk=limits.disk_bytes / (1 << 30),
            preview_token=secrets.token_urlsafe(24),
            host_uid=host_uid,
            network_block_all=bool(body.get("networkBlockAll", True)),
            network_allow_list=body.get("networkAllowList"),
            auto_archive_interval=int(body.get("autoArchiveInterval", DEFAULT_AUTO_ARCHIVE_MINUTES)),
            auto_delete_interval=int(body.get("autoDeleteInterval", -1)),
            volumes=[mount.to_api() for mount in mounts],
            snapshot=snapshot.name if snapshot else None,
        )
        self.records[record.id] = record
        if claimed:
            running = claimed[1]
            running.last_activity = time.monotonic()
            self.running[record.id] = running
            await self._open_egress_or_fail(record)
            self._mark_started(record)
            return record
        # Directories and a first record on disk: a few milliseconds of file system work each,
        # which a hundred creates arriving at once must not spend one after another on the loop.
        await self._off_loop(self._files_executor, self._lay_out, record, host_uid)
        if snapshot is not None:
            await self._seed_home(record, snapshot, limits)
        await self._launch(record)
        return record

    async def _checked_mounts(self, raw: _RawMounts) -> _Mounts:
        """The create's volumes, each an existing ready volume at a mount path of its own, its
        subpath a directory inside it (made if missing)."""
        if len(raw) > MAX_MOUNTS_PER_SANDBOX:
            raise ApiError(400, f"volumes: a sandbox mounts at most {MAX_MOUNTS_PER_SANDBOX} volumes")
        mounts: _Mounts = []
        for index, item in enumerate(raw):
            volume = self.volume_store.for_create(str(item.get("volumeId")))
            if volume.state != "ready":
                raise ApiError(400, f"Volume {volume.name} is not in a ready state (state: {volume.state})")
            mount_path = check_mount_path(item.get("mountPath"), index)
            for other in mounts:
                if _nested(mount_path, other.mount_path):
                    raise ApiError(
                        400,
                        f"volumes[{index}].mountPath {mount_path} overlaps the mount at {other.mount_path}",
                    )
            subpath = check_subpath(item.get("subpath"), index)
            if subpath is not None and os.geteuid() != 0:
                # Staging it needs a bind mount (see _open_binds), which only root makes.
                raise RequestFieldError(f"volumes[{index}].subpath", "needs a local server running as root")
            mounts.append(VolumeMount(volume.id, mount_path, subpath))
        await self._off_loop(self._files_executor, self._probe_mounts, mounts)
        return mounts

    def _probe_mounts(self, mounts: _Mounts) -> None:
        for mount in mounts:
            os.close(self.volume_store.open_mount(mount))

    def _checked_snapshot(self, name: object, limits: SandboxLimits) -> SnapshotRecord | None:
        """The active snapshot named (``None`` or the default's name: the default, an empty home)."""
        if not name or name == DEFAULT_SNAPSHOT:
            return None
        snapshot = self.snapshot_store.for_create(str(name))
        if snapshot.size_bytes is not None and snapshot.size_bytes > limits.disk_bytes:
            raise ApiError(
                400,
                f"Snapshot {snapshot.name} holds {snapshot.size_bytes} bytes, more than the sandbox's disk "
                f"of {limits.disk_bytes}: ask for more disk",
            )
        return snapshot

    async def _seed_home(
        self, record: SandboxRecord, snapshot: SnapshotRecord, limits: SandboxLimits
    ) -> None:
        try:
            await self._off_loop(self._files_executor, self._copy_snapshot_in, record, snapshot, limits)
        except (ApiError, OSError, VolumeError) as error:
            record.state = "error"
            record.error_reason = f"its home could not be copied from snapshot {snapshot.name}: {error}"
            record.touch()
            record.persist(self._dir(record))
            raise ApiError(
                500, f"sandbox failed to start: {record.error_reason}", code="SANDBOX_START_FAILED"
            ) from None

    def _copy_snapshot_in(
        self, record: SandboxRecord, snapshot: SnapshotRecord, limits: SandboxLimits
    ) -> None:
        directory = self._dir(record)
        if self._on_volume(record.id) and self.existing_volumes is not None:
            # Mounted here, kept mounted: the start finds it so and uses it as it is.
            home = self.existing_volumes.attach(directory, limits.disk_bytes)
        else:
            home = directory / "home"
        # Straight to the sandbox's uid, setuid bits dropped and the home's own mode kept as made:
        # at no moment is there a root-owned program or an open home for a host user to reach.
        copy_tree(
            self.snapshot_store.home(snapshot),
            home,
            owner=self.uids.of(record.id),
            max_bytes=limits.disk_bytes,
        )
        snapshot.last_used_at = _now()
        with contextlib.suppress(OSError):
            self.snapshot_store.persist(snapshot)

    def volume_users(self, volume_id: str) -> _Records:
        """The sandboxes (in any state but destroyed) whose create listed the volume."""
        return [r for r in self.records.values() if any(m["volumeId"] == volume_id for m in r.volumes)]

    async def create_volume(self, name: str) -> VolumeRecord:
        return await self._off_loop(self._files_executor, self.volume_store.create, name)

    async def delete_volume(self, volume: VolumeRecord) -> None:
        users = self.volume_users(volume.id)
        if users:
            raise ApiError(
                409,
                "Volume cannot be deleted because it is in use by one or more sandboxes "
                f"(e.g. {users[0].name})",
                code="VOLUME_IN_USE",
            )
        await self._off_loop(self._files_executor, self.volume_store.delete, volume)

    def _lay_out(self, record: SandboxRecord, host_uid: int) -> None:
        self._make_dirs(record.id, host_uid)
        record.persist(self._dir(record))

    def _check_name_free(self, name: str) -> None:
        if any(r.name == name for r in self.records.values()):
            raise ApiError(409, f"Sandbox with name {name} already exists", code="SANDBOX_NAME_TAKEN")

    def _make_dirs(self, sandbox_id: str, host_uid: int) -> None:
        """The sandbox's directory and its home, which belongs to the sandbox's own host uid."""
        directory = self._root / sandbox_id
        directory.mkdir(mode=0o711)
        if self.volumes is not None:
            # The mount point only: the filesystem is made and mounted when the sandbox starts,
            # off the event loop.
            LoopVolumes.home(directory).parent.mkdir(mode=0o711)
            return
        home = directory / "home"
        home.mkdir(mode=0o755)
        _give_home_to(home, host_uid)

    def _attach_volume(self, sandbox_id: str, limits: SandboxLimits) -> None:
        """Mount the sandbox's home filesystem (made at first start) and hand its root over."""
        if self.existing_volumes is None:
            raise ApiError(
                500,
                f"sandbox {sandbox_id}'s home is a filesystem image and this server has no loop mounts",
                code="SANDBOX_START_FAILED",
            )
        try:
            home = self.existing_volumes.attach(self._root / sandbox_id, limits.disk_bytes)
        except (VolumeError, OSError) as error:
            raise ApiError(500, f"sandbox failed to start: {error}", code="SANDBOX_START_FAILED") from None
        _give_home_to(home, self.uids.of(sandbox_id))

    def _detach_volumes(self, directories: _Paths) -> None:
        for directory in directories:
            self._detach_volume(directory)

    def _detach_volume(self, directory: Path) -> None:
        """Unmount the home filesystem of a sandbox whose processes are gone."""
        if not LoopVolumes.is_mounted(directory):
            return
        try:
            LoopVolumes.detach(directory)
        except VolumeError as error:
            # Still mounted: a later start uses it as it is; a removal reports the mount point.
            logger.warning("%s", error)

    # ---- the spare: one sandbox started ahead, handed to the next create with default limits -----

    def _refill_spare(self) -> None:
        if self._spare is not None or self._closing:
            return
        sandbox_id = str(uuid.uuid4())
        try:
            host_uid = self.uids.assign(sandbox_id)
        except SandboxUidsExhaustedError:
            return  # every uid is in use: creates will say so themselves
        self._make_dirs(sandbox_id, host_uid)
        self._spare = (sandbox_id, asyncio.create_task(self._spawn_agent(sandbox_id, self.limits)))

    async def _claim_spare(self, limits: SandboxLimits) -> tuple[str, _Running] | None:
        if self._spare is None or limits != self.limits:
            return None
        sandbox_id, task = self._spare
        self._spare = None
        try:
            running = await task
        except (ApiError, OSError):
            await self._drop_files(sandbox_id)
            running = None
        self._refill_spare()
        if running is None:
            return None
        if running.proc.poll() is not None:
            await self._discard(sandbox_id, running)
            return None
        return sandbox_id, running

    async def _discard(self, sandbox_id: str, running: _Running) -> None:
        """Kill and remove a spare, off the event loop (waiting for bwrap, unmounting, removing)."""
        await self._off_loop(self._process_executor, self._kill_process, sandbox_id, running)
        await self._drop_files(sandbox_id)

    async def _drop_files(self, sandbox_id: str) -> None:
        """Remove the files of a sandbox no record points at (a spare). Its uid is free again only
        once they are gone: files left behind still belong to it (the monitor retries the
        removal and frees the uid then)."""
        if await self._remove_off_loop(self._root / sandbox_id):
            self.uids.release(sandbox_id)

    async def _close_spare(self) -> None:
        if self._spare is None:
            return
        sandbox_id, task = self._spare
        self._spare = None
        task.cancel()
        try:
            running = await task
        except (asyncio.CancelledError, ApiError, OSError):
            await self._drop_files(sandbox_id)
            return
        await self._discard(sandbox_id, running)

    # ---- starting and killing one sandbox's processes ---------------------------------------------

    def _limits_for(self, record: SandboxRecord) -> SandboxLimits:
        return self.limits.with_request(record.cpu, record.memory, record.disk)

    def _lock(self, record: SandboxRecord) -> asyncio.Lock:
        return self._locks.setdefault(record.id, asyncio.Lock())

    async def _spawn_agent(self, sandbox_id: str, limits: SandboxLimits) -> _Running:
        """Start bwrap and the agent; return once the agent answers. Raises ``ApiError`` 500."""
        directory = self._root / sandbox_id
        if self._sockets is None:
            raise ApiError(503, "the server is not open", code="SERVER_NOT_READY")
        if self._on_volume(sandbox_id):
            await self._off_loop(self._files_executor, self._attach_volume, sandbox_id, limits)
        socket_path = self._sockets / f"{sandbox_id}.sock"
        with contextlib.suppress(FileNotFoundError):
            socket_path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(socket_path))
            listener.listen(128)
            # A fork waits for its child's exec, a devpts mount and a cgroup's creation for the
            # kernel: on a busy host, milliseconds each, that must not stall every other request.
            started = await self._off_loop(
                self._process_executor,
                self._start_process,
                sandbox_id,
                limits,
                listener.fileno(),
                undo=functools.partial(self._undo_start, sandbox_id),
            )
        finally:
            listener.close()
        proc, ptys, cgroup_procs = started
        running = _Running(proc=proc, client=AgentClient(socket_path, sandbox_id), limits=limits)
        try:
            await asyncio.wait_for(running.client.call("ping"), _READY_TIMEOUT_SECONDS)
        except (AgentCallError, TimeoutError, OSError, ValueError) as error:
            await self._off_loop(self._process_executor, self._unmount_ptys, ptys)
            await self._off_loop(self._process_executor, self._kill_process, sandbox_id, running)
            log = (directory / "bwrap.log").read_text(errors="replace").strip()[-2000:]
            raise ApiError(
                500, f"sandbox failed to start: {log or error}", code="SANDBOX_START_FAILED"
            ) from None
        except BaseException:
            await self._off_loop(self._process_executor, self._unmount_ptys, ptys)
            await self._off_loop(self._process_executor, self._kill_process, sandbox_id, running)
            raise
        # Once the agent answers, bwrap has bound the instance in; the sandbox's mount namespace
        # keeps it alive and the host needs no mount of its own any more. The create does not
        # wait for it: an unmount waits for an RCU grace period, long on a busy host.
        self._in_background(self._process_executor, self._unmount_ptys, ptys)
        self._in_background(self._files_executor, self._unstage, sandbox_id)
        running.limits_applied = asyncio.get_running_loop().run_in_executor(
            self._process_executor, self.cgroups.attach, cgroup_procs, _agent_pid(proc.pid)
        )
        return running

    def _start_process(self, sandbox_id: str, limits: SandboxLimits, listen_fd: int) -> _Started:
        """Mount the devpts instance, make the cgroups and start bwrap (a thread's work)."""
        ptys: Path | None = None
        record = self.records.get(sandbox_id)
        mounts = record.mounts if record is not None else []
        binds = self._open_binds(sandbox_id, mounts)
        gids = {self.volume_store.get(mount.volume_id).gid for mount in mounts}
        planned = False  # from plan_spawn on, spawn closes the binds' fds
        try:
            if self.ptys is not None:
                ptys = self.ptys.mount(sandbox_id, limits.ptys)
            cgroup_procs = self.cgroups.create(sandbox_id, limits)
            net_dir = self._net_dir(sandbox_id)
            net_dir.mkdir(mode=0o755, exist_ok=True)
            fallbacks: dict[str, int] = {}
            if "pids" not in self.cgroups.controllers:
                fallbacks["nproc"] = limits.pids
            if "memory" not in self.cgroups.controllers:
                fallbacks["as"] = limits.memory_bytes
            plan = plan_spawn(
                bwrap=self.bwrap,
                python=self.python,
                agent_script=self._agent,
                synthetic_etc=self._etc,
                home=self._home_of(sandbox_id),
                node_dir=self.node_dir,
                hostname=f"sandbox-{sandbox_id[:8]}",
                listen_fd=listen_fd,
                lifeline_fd=self._lifeline_read,
                limits=limits,
                env=_BASE_ENV,
                rlimit_fallbacks=fallbacks,
                ptys=ptys,
                net_dir=net_dir,
                mounts=binds,
            )
            planned = True
            groups = sorted(gid for gid in gids if gid is not None)
            proc = spawn(plan, self.uids.of(sandbox_id), self._root / sandbox_id / "bwrap.log", groups)
        except OSError as error:
            # A devpts mount, a cgroup or bwrap itself refused: the sandbox did not start.
            self._unmount_ptys(ptys)
            self._drop_binds(sandbox_id, binds, planned)
            self.cgroups.kill_and_remove(sandbox_id)  # groups made before the refusal
            raise ApiError(500, f"sandbox failed to start: {error}", code="SANDBOX_START_FAILED") from None
        except BaseException:
            self._unmount_ptys(ptys)
            self._drop_binds(sandbox_id, binds, planned)
            raise
        return proc, ptys, cgroup_procs

    def _drop_binds(self, sandbox_id: str, binds: _Binds, planned: bool) -> None:
        if not planned:
            for fd, _ in binds:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._unstage(sandbox_id)

    def _open_binds(self, sandbox_id: str, mounts: _Mounts) -> _Binds:
        """An fd per volume mount for bwrap, which binds the *path* it resolves the fd to.

        A volume's own root has a path of the server's directories only; a subpath's path runs
        through directories sandboxes may rename, so a sandbox racing the start could have bwrap
        bind whatever a swapped-in symlink names. A subpath is therefore first bound (by the
        kernel, through the fd: the very directory walked to) onto a staging directory of the
        server's own, which is what bwrap is given; the start unmounts it once bwrap is done.
        """
        binds: _Binds = []
        try:
            for index, mount in enumerate(mounts):
                fd = self.volume_store.open_mount(mount)
                if mount.subpath is not None:
                    fd = self._staged(sandbox_id, index, fd)
                binds.append((fd, mount.mount_path))
        except BaseException:
            for fd, _ in binds:
                os.close(fd)
            self._unstage(sandbox_id)
            raise
        return binds

    def _staged(self, sandbox_id: str, index: int, fd: int) -> int:
        staging = self._root / sandbox_id / _STAGING / str(index)
        try:
            staging.parent.mkdir(mode=0o711, exist_ok=True)
            staging.mkdir(mode=0o711, exist_ok=True)
            source = f"/proc/self/fd/{fd}".encode()
            if LIBC.mount(source, os.fsencode(staging), None, _MS_BIND, None) != 0:
                error = ctypes.get_errno()
                raise OSError(error, f"cannot stage a volume's subpath: {os.strerror(error)}")
        finally:
            os.close(fd)
        return os.open(staging, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)

    def _unstage(self, sandbox_id: str) -> _Names:
        """Unmount the staged subpaths (a started sandbox keeps its own binds of them); the ones
        still mounted afterwards."""
        staging = self._root / sandbox_id / _STAGING
        left: _Names = []
        try:
            entries = list(staging.iterdir())
        except OSError:
            return left
        for entry in entries:
            # A bind of the same filesystem looks like no mount point to stat (os.path.ismount):
            # unmounted until the kernel says there is none (EINVAL), the directory must then be
            # the empty one made for it, which rmdir proves.
            for _attempt in range(_UNSTAGE_ATTEMPTS):
                if LIBC.umount2(os.fsencode(entry), _MNT_DETACH) != 0:
                    break
            try:
                entry.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                left.append(str(entry))
        return left

    async def _off_loop(
        self,
        executor: ThreadPoolExecutor,
        work: Callable[..., _T],
        *args: Any,
        undo: Callable[[_T], object] | None = None,
    ) -> _T:
        """``work`` in one of the manager's executors. Cancelled meanwhile, it still waits for the
        work to end, then runs ``undo`` on its result off the loop too (a start completed for a
        caller gone must not leave a process nobody kills), and the cancellation goes on."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(executor, work, *args)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                done = await future
                if undo is not None:
                    await asyncio.shield(loop.run_in_executor(executor, undo, done))
            raise

    def _in_background(self, executor: ThreadPoolExecutor, work: Callable[..., object], *args: Any) -> None:
        """``work`` off the loop, awaited by nobody but :meth:`close`; its failure is logged."""
        future = asyncio.get_running_loop().run_in_executor(executor, work, *args)
        self._background.add(future)
        future.add_done_callback(self._background_done)

    def _background_done(self, future: asyncio.Future[object]) -> None:
        self._background.discard(future)
        if not future.cancelled() and future.exception() is not None:
            logger.warning("background sandbox work failed: %s", future.exception())

    def _undo_start(self, sandbox_id: str, started: _Started) -> None:
        proc, ptys, _ = started
        self._unmount_ptys(ptys)
        kill_spawned(proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        self.cgroups.kill_and_remove(sandbox_id)

    def _unmount_ptys(self, ptys: Path | None) -> None:
        if self.ptys is not None and ptys is not None:
            self.ptys.unmount(ptys)

    async def _launch(self, record: SandboxRecord) -> None:
        try:
            running = await self._spawn_agent(record.id, self._limits_for(record))
        except (ApiError, OSError) as error:
            # A launch that failed leaves an `error` record (deletable), never one stuck `creating`.
            record.state = "error"
            record.error_reason = error.message if isinstance(error, ApiError) else f"cannot start: {error}"
            record.touch()
            record.persist(self._dir(record))
            raise
        self.running[record.id] = running
        await self._open_egress_or_fail(record)
        self._mark_started(record)

    async def _open_egress_or_fail(self, record: SandboxRecord) -> None:
        """Start the sandbox's egress proxy and relay when its policy allows egress; a sandbox
        that asked for network and cannot have it is an error, not one started without it."""
        try:
            await self._open_egress(record)
        except (ApiError, AgentCallError, OSError, TimeoutError, ValueError) as error:
            await self._kill(record)
            record.state = "error"
            record.error_reason = f"cannot open its network egress: {error}"
            record.touch()
            record.persist(self._dir(record))
            raise ApiError(
                500, f"sandbox failed to start: {record.error_reason}", code="SANDBOX_START_FAILED"
            ) from None

    async def _open_egress(self, record: SandboxRecord) -> None:
        policy = record.egress_policy
        if policy is None or self._nets is None:
            return
        proxy = EgressProxy(
            sandbox_id=record.id,
            policy=policy,
            socket_path=self._net_dir(record.id) / SOCKET_NAME,
            protected_ports=frozenset(self.protected_ports),
        )
        self._egress[record.id] = proxy
        await proxy.open(self.uids.of(record.id))
        client = self.running[record.id].client
        await asyncio.wait_for(
            client.call("egress_start", port=EGRESS_PORT, socket=f"{SANDBOX_NET_DIR}/{SOCKET_NAME}"),
            _READY_TIMEOUT_SECONDS,
        )

    async def _close_egress(self, sandbox_id: str) -> None:
        proxy = self._egress.pop(sandbox_id, None)
        if proxy is not None:
            await proxy.close()

    def _net_dir(self, sandbox_id: str) -> Path:
        """The host directory bound into the sandbox for its egress socket: in a short path, as
        the agents' sockets are (a Unix socket's path holds 108 bytes at most)."""
        if self._nets is None:
            raise ApiError(503, "the server is not open", code="SERVER_NOT_READY")
        return self._nets / f"{sandbox_id}.net"

    def _mark_started(self, record: SandboxRecord) -> None:
        record.state = "started"
        record.error_reason = None
        record.last_activity_at = _now()
        record.touch()
        record.persist(self._dir(record))

    async def _settle(self, record: SandboxRecord) -> None:
        """Let a pending cgroup join finish before the groups are torn down."""
        running = self.running.get(record.id)
        if running is not None and running.limits_applied is not None:
            with contextlib.suppress(OSError):
                await running.limits_applied

    async def _kill(self, record: SandboxRecord) -> None:
        """Kill the sandbox's processes off the loop (waiting for bwrap and for its cgroups to
        empty takes milliseconds, seconds on a busy host)."""
        await self._close_egress(record.id)
        running = self.running.pop(record.id, None)
        await self._off_loop(self._process_executor, self._kill_process, record.id, running)

    def _kill_process(self, sandbox_id: str, running: _Running | None) -> None:
        """SIGKILL the sandbox: bwrap's --die-with-parent takes its pid namespace down with it."""
        if running is not None:
            kill_spawned(running.proc)
            with contextlib.suppress(subprocess.TimeoutExpired):
                running.proc.wait(timeout=5)
            with contextlib.suppress(FileNotFoundError):
                running.client.socket_path.unlink()
        if self._nets is not None:
            shutil.rmtree(self._net_dir(sandbox_id), ignore_errors=True)
        self._unstage(sandbox_id)  # a start that failed after staging a volume subpath
        self.cgroups.kill_and_remove(sandbox_id)

    async def start(self, record: SandboxRecord) -> SandboxRecord:
        async with self._lock(record):
            if record.state == "started":
                return record
            if record.destroy_pending:
                raise ApiError(409, f"Sandbox {record.id} is being deleted", code="SANDBOX_DESTROYING")
            if record.state not in ("stopped", "error"):
                raise ApiError(409, f"Sandbox {record.id} cannot start from state {record.state}")
            try:
                self.uids.claim(record.id)
            except SandboxUidRefusedError as error:
                raise ApiError(
                    409, f"Sandbox {record.id} cannot start: {error}", code="SANDBOX_UID_REFUSED"
                ) from None
            record.state = "starting"
            record.stopped_at = None
            record.touch()
            await self._launch(record)
            return record

    async def stop(self, record: SandboxRecord, *, force: bool = False) -> SandboxRecord:
        """Stop: SIGTERM every process, SIGKILL what is left after the grace period (at once if forced)."""
        async with self._lock(record):
            if record.state == "stopped":
                return record
            if record.state not in ("started", "error"):
                raise ApiError(409, f"Sandbox {record.id} cannot stop from state {record.state}")
            record.state = "stopping"
            record.touch()
            await self._settle(record)
            running = self.running.get(record.id)
            if not force and running is not None:
                with contextlib.suppress(AgentCallError, OSError, TimeoutError):
                    await asyncio.wait_for(
                        running.client.call("terminate_all", grace=self.stop_grace_seconds),
                        self.stop_grace_seconds + 5,
                    )
            await self._kill(record)
            await self._off_loop(self._files_executor, self._detach_volume, self._dir(record))
            record.state = "stopped"
            record.stopped_at = _now()
            record.touch()
            record.persist(self._dir(record))
            return record

    async def snapshot(self, record: SandboxRecord, name: str) -> SnapshotRecord:
        """Save the running sandbox's home as snapshot ``name``, its processes frozen meanwhile."""
        if record.state != "started" or record.id not in self.running:
            raise ApiError(
                409,
                f"Sandbox {record.id} must be started to take a snapshot of it (state: {record.state})",
                code="NOT_STARTED",
            )
        snapshot = self.snapshot_store.new(name, source=f"sandbox {record.id}")
        try:
            await self._take(record, snapshot)
        except ApiError:
            with contextlib.suppress(ApiError):
                self.snapshot_store.delete(snapshot)
            raise
        return snapshot

    async def _take(self, record: SandboxRecord, snapshot: SnapshotRecord) -> None:
        async with self._lock(record):
            running = self.running.get(record.id)
            if record.state != "started" or running is None:
                raise ApiError(409, f"Sandbox {record.id} stopped before its snapshot", code="NOT_STARTED")
            snapshot.cpu, snapshot.mem, snapshot.disk = (
                _whole_units(record.cpu),
                _whole_units(record.memory),
                _whole_units(record.disk),
            )
            await self._settle(record)
            record.state = "snapshotting"
            try:
                await self._off_loop(self._files_executor, self._save_home, record, running, snapshot)
            except (OSError, SandboxKillError, TreeRemovalError) as error:
                raise ApiError(500, f"the snapshot of sandbox {record.id} failed: {error}") from None
            finally:
                if record.state == "snapshotting":
                    record.state = "started"

    def _save_home(self, record: SandboxRecord, running: _Running, snapshot: SnapshotRecord) -> None:
        with frozen_sandbox(_agent_pid(running.proc.pid), parent_pid=running.proc.pid):
            self.snapshot_store.save_home(snapshot, self.home(record), running.limits.disk_bytes)

    async def build_snapshot(self, name: str, dockerfile: str) -> SnapshotRecord:
        """A snapshot ``building`` from the Dockerfile's RUN lines in a build sandbox (400 at once
        for what this server cannot build); ``active``, or ``build_failed`` with the reason, later."""
        plan = build_steps(dockerfile)
        snapshot = self.snapshot_store.new(name, source="build", dockerfile=dockerfile)
        snapshot.state = "building"
        self.snapshot_store.persist(snapshot)
        task = asyncio.create_task(self._build(snapshot, plan))
        self._builds.add(task)
        task.add_done_callback(self._builds.discard)
        return snapshot

    async def _build(self, snapshot: SnapshotRecord, plan: BuildPlan) -> None:
        body: dict[str, Any] = {
            "name": f"snapshot-build-{snapshot.id}",
            "labels": {_BUILD_LABEL: snapshot.id},
            "autoStopInterval": 0,
            "networkBlockAll": False,
        }
        # The indexes the Dockerfile names by address (a local mirror) are opened for the build;
        # else the build reaches public addresses only, as egress without an allow list does.
        if plan.index_hosts and all(_is_ipv4(host) for host in plan.index_hosts):
            body["networkAllowList"] = ",".join(f"{host}/32" for host in plan.index_hosts)
        record: SandboxRecord | None = None
        try:
            record = await self.create(body)
            for step in [_BUILD_SHIM, *plan.steps]:
                answer = await self.client(record).call(
                    "execute", command=step, cwd=None, env=_BUILD_ENV, timeout=_BUILD_STEP_SECONDS
                )
                if answer.get("timedOut") or answer.get("exitCode") != 0:
                    output = str(answer.get("result", "")).strip()[-_BUILD_OUTPUT_CHARS:]
                    code = answer.get("exitCode")
                    status = "timed out" if answer.get("timedOut") else f"exited with {code}"
                    raise ApiError(400, f"RUN {step} {status}: {output}")
            await self.client(record).call("execute", command=_BUILD_SHIM_REMOVAL, cwd=None, env={})
            await self._take(record, snapshot)
        except (ApiError, OSError, TimeoutError) as error:
            reason = error.message if isinstance(error, ApiError) else str(error)
            logger.info("building snapshot %s failed: %s", snapshot.name, reason)
            with contextlib.suppress(OSError):
                self.snapshot_store.fail(snapshot, reason)
        finally:
            if record is not None:
                with contextlib.suppress(ApiError):
                    await self.delete(record)

    async def delete(self, record: SandboxRecord) -> SandboxRecord:
        """Kill and remove; files that cannot be removed leave the sandbox in ``error``, retried."""
        async with self._lock(record):
            record.state = "destroying"
            record.destroy_pending = True
            record.touch()
            with contextlib.suppress(OSError):
                record.persist(self._dir(record))
            await self._settle(record)
            await self._kill(record)
            directory = self._dir(record)
            if not await self._remove_off_loop(directory):
                record.state = "error"
                record.error_reason = "its files could not all be removed; the server retries"
                record.touch()
                with contextlib.suppress(OSError):
                    record.persist(directory)
                raise ApiError(
                    500,
                    f"Sandbox {record.id} was stopped but its files could not all be removed: the "
                    "server retries on its own, and DELETE again retries at once",
                    code="SANDBOX_REMOVAL_FAILED",
                )
            self._forget(record)
            return record

    def _forget(self, record: SandboxRecord) -> None:
        record.state = "destroyed"
        record.touch()
        self.records.pop(record.id, None)
        self._locks.pop(record.id, None)
        self.uids.release(record.id)

    async def _retry_removals(self) -> None:
        """Deleted sandboxes (or unknown leftovers) whose files resisted removal: try again."""
        now = time.monotonic()
        for directory, due in list(self._removals_pending.items()):
            if due > now:
                continue
            record = self.records.get(directory.name)
            if record is not None and not record.destroy_pending:
                self._removals_pending.pop(directory, None)
                continue
            if not await self._remove_off_loop(directory):
                continue
            if record is not None:
                logger.info("removed the files of deleted sandbox %s", record.id)
                self._forget(record)
            else:
                self.uids.release(directory.name)  # a spare's: its uid owns no files any more

    # ---- monitor: crashes, auto-stop, disk quota --------------------------------------------------

    async def _monitor_loop(self) -> None:
        while True:
            await asyncio.sleep(self.monitor_interval)
            self._namespaces = None  # processes are listed again, once per round
            try:
                await self._guard_host_disk()
            except Exception:  # the backstop's trouble must not stop the monitor
                logger.exception("checking the host's free disk space failed")
            if self._removals_pending:
                try:
                    await self._retry_removals()
                except Exception:  # a removal's trouble must not stop the monitor
                    logger.exception("retrying sandbox removals failed")
            try:
                await self._auto_delete()
            except Exception:  # a deletion's trouble must not stop the monitor
                logger.exception("deleting sandboxes past their auto-delete interval failed")
            if self._volume_check is None or self._volume_check.done():
                self._volume_check = asyncio.create_task(self._check_volumes_logged())
            for sandbox_id, running in list(self.running.items()):
                record = self.records.get(sandbox_id)
                if record is None or record.state != "started":
                    continue
                # Every round, whatever the sandbox's scan is doing: a poll costs nothing.
                try:
                    if await self._crashed(record, running):
                        continue
                except Exception:  # one sandbox's trouble must not stop the monitor
                    logger.exception("recording the crash of sandbox %s failed", sandbox_id)
                    continue
                if sandbox_id in self._checks:
                    continue  # its last check still runs (a slow scan): skipped, not queued
                self._checks[sandbox_id] = task = asyncio.create_task(self._check_logged(record, running))
                task.add_done_callback(functools.partial(self._forget_check, sandbox_id))
            if self.file_budget is not None and (
                self._file_table_check is None or self._file_table_check.done()
            ):
                self._file_table_check = asyncio.create_task(self._check_file_table_logged())

    async def _auto_delete(self) -> None:
        """Stopped sandboxes whose auto-delete interval has passed (0: at once) are deleted."""
        now = datetime.now(UTC)
        for record in list(self.records.values()):
            if record.state != "stopped" or record.auto_delete_interval < 0 or record.destroy_pending:
                continue
            stopped = datetime.fromisoformat(record.stopped_at or record.updated_at)
            if (now - stopped).total_seconds() >= record.auto_delete_interval * 60:
                logger.info("sandbox %s was stopped past its auto-delete interval: deleting it", record.id)
                with contextlib.suppress(ApiError):
                    await self.delete(record)

    async def _check_volumes_logged(self) -> None:
        try:
            await self._check_volumes()
        except Exception:  # a volume's trouble must not stop the monitor
            logger.exception("checking the volumes' sizes failed")

    async def _check_volumes(self) -> None:
        """An accounted volume over its size has the processes of every sandbox mounting it killed
        (a loop volume needs no scan: its filesystem refuses the rest)."""
        store = self.volume_store
        loop = asyncio.get_running_loop()
        for volume in list(store.records.values()):
            users = [
                (record, running)
                for record in self.volume_users(volume.id)
                if (running := self.running.get(record.id)) is not None and record.state == "started"
            ]
            if not users or not store.accounted(volume):
                continue
            used = await loop.run_in_executor(self._monitor_executor, store.used_bytes, volume)
            if used <= store.size_bytes:
                continue
            logger.warning(
                "volume %s holds %d bytes, over its size of %d: killing the processes of the %d sandbox(es) "
                "mounting it",
                volume.id,
                used,
                store.size_bytes,
                len(users),
            )
            for _record, running in users:
                await self._kill_processes_from_host(running)

    def _forget_check(self, sandbox_id: str, check: asyncio.Task[None]) -> None:
        if self._checks.get(sandbox_id) is check:
            del self._checks[sandbox_id]

    async def _check_logged(self, record: SandboxRecord, running: _Running) -> None:
        """Each sandbox's check is a task of its own: one slow scan delays no other sandbox."""
        try:
            await self._check(record, running)
        except Exception:  # one sandbox's trouble must not stop the monitor
            logger.exception("monitoring sandbox %s failed", record.id)

    async def _crashed(self, record: SandboxRecord, running: _Running) -> bool:
        """Crashed processes make the sandbox ``error``."""
        code = running.proc.poll()
        if code is None:
            return False
        await self._kill(record)
        record.state = "error"
        record.error_reason = f"sandbox processes exited unexpectedly (status {code})"
        record.touch()
        record.persist(self._dir(record))
        return True

    async def _guard_host_disk(self) -> None:
        """The backstop for what accounting cannot see: files unlinked and parked in SCM_RIGHTS
        messages have no path and no holder in /proc, so no sandbox can be charged for them.
        When the state directory's filesystem runs below the floor, every accounting-mode
        sandbox has its processes killed (which closes the sockets holding such files): charging
        the one with the most visible usage would spare exactly the sandbox that hides its own.
        Once done, it waits for free space to fall a quarter of the floor further (or to recover)
        before doing it again, so a host short of disk for other reasons is not a kill loop."""
        free, size = filesystem_space(self.state_dir)
        floor = self.disk_free_floor if self.disk_free_floor is not None else default_free_floor(size)
        if free >= floor:
            self._free_at_last_backstop = None
            return
        last = self._free_at_last_backstop
        if last is not None and free > last - floor // 4:
            return
        self._free_at_last_backstop = free
        victims = [
            (sandbox_id, running)
            for sandbox_id, running in self.running.items()
            if not self._on_volume(sandbox_id) and running.proc.poll() is None
        ]
        if not victims:
            return
        logger.warning(
            "%d bytes free on the filesystem of %s, below the floor of %d: killing the processes of %d "
            "accounting-mode sandbox(es), whose hidden files it cannot attribute",
            free,
            self.state_dir,
            floor,
            len(victims),
        )
        for _sandbox_id, running in victims:
            await self._kill_processes_from_host(running)

    async def _check(self, record: SandboxRecord, running: _Running) -> None:
        """Idle sandboxes auto-stop; a sandbox over its disk quota has its processes killed."""
        if self.running.get(record.id) is not running or record.state != "started":
            return  # crashed, stopped or restarted since the round began
        idle = time.monotonic() - running.last_activity
        interval = record.auto_stop_interval * 60
        if interval > 0 and running.inflight == 0 and idle >= interval:
            with contextlib.suppress(ApiError):
                await self.stop(record)
            return
        # A home on its own filesystem of the quota's size needs no scan: the kernel refuses the rest.
        if self._on_volume(record.id):
            return
        loop = asyncio.get_running_loop()
        used = await loop.run_in_executor(self._monitor_executor, self._disk_used, record, running)
        if used > running.limits.disk_bytes and self.running.get(record.id) is running:
            logger.warning(
                "sandbox %s uses %d bytes of disk, over its quota: killing its processes", record.id, used
            )
            # From the host, not through the agent: sandbox code may have left it unable to
            # serve (its process table full), and the kill must work exactly then.
            await self._kill_processes_from_host(running)

    async def _kill_processes_from_host(self, running: _Running) -> None:
        """Every process of the sandbox but its agent, SIGKILLed from the host (in the process
        executor: a kill must not wait behind the monitor's scans)."""
        agent = _agent_pid(running.proc.pid)
        with contextlib.suppress(SandboxKillError):
            await self._off_loop(
                self._process_executor,
                functools.partial(kill_sandbox_processes, agent, parent_pid=running.proc.pid),
            )

    async def _check_file_table_logged(self) -> None:
        try:
            await self._check_file_table()
        except Exception:  # the file table's trouble must not stop the monitor
            logger.exception("checking the host's file table failed")

    async def _check_file_table(self) -> None:
        """Kill the processes of sandboxes holding more than their share of the host's file
        table, and, while the host's table is past ``file_pressure``, of those holding the most
        until it would be below (four sandboxes each just under their share fill it too)."""
        budget = self.file_budget
        if budget is None:
            return
        in_use = host_files_in_use()
        # While fewer files than one sandbox's budget are open on the whole host, no sandbox can
        # be over it: one read of fs.file-nr spares counting each sandbox's files.
        if in_use <= budget:
            return
        pressed = self.file_pressure is not None and in_use > self.file_pressure
        watched = [
            (record, running)
            for sandbox_id, running in list(self.running.items())
            if (record := self.records.get(sandbox_id)) is not None and record.state == "started"
        ]
        loop = asyncio.get_running_loop()
        # Under pressure every file counts, to rank the holders; else only whether one is over.
        stop_after = in_use if pressed else budget
        # The host's processes are listed once for every sandbox, not once per sandbox.
        processes = await loop.run_in_executor(self._monitor_executor, pids_by_pid_namespace)
        counts = await asyncio.gather(
            *(
                loop.run_in_executor(
                    self._monitor_executor,
                    files_held_by,
                    _agent_pid(running.proc.pid),
                    stop_after,
                    processes,
                )
                for _, running in watched
            )
        )
        held = sorted(zip(counts, range(len(watched)), strict=True), reverse=True)
        excess = in_use - self.file_pressure if pressed and self.file_pressure is not None else 0
        for count, index in held:
            over_share = count > budget
            relieves = excess > 0 and count >= _PRESSURE_KILL_FLOOR
            if not (over_share or relieves):
                continue
            record, running = watched[index]
            if self.running.get(record.id) is not running:
                continue  # stopped or restarted meanwhile
            logger.warning(
                "sandbox %s holds %d files of the host's file table (%d in use, share %d, pressure %s): "
                "killing its processes",
                record.id,
                count,
                in_use,
                budget,
                self.file_pressure,
            )
            excess -= count
            await self._kill_processes_from_host(running)

    def _disk_used(self, record: SandboxRecord, running: _Running) -> int:
        """Every path of the home, plus files its processes unlinked but keep open; a home that
        kept moving under the scan for several rounds in a row counts as over any quota."""
        home = self.home(record)
        usage = measure_disk(home, _DISK_SCAN_MAX_ENTRIES)
        running.unsettled_scans = 0 if usage.settled else running.unsettled_scans + 1
        if running.unsettled_scans >= _UNSETTLED_SCANS_LIMIT:
            logger.warning(
                "sandbox %s keeps moving directories while its home is scanned (%d rounds in a row)",
                record.id,
                running.unsettled_scans,
            )
            running.unsettled_scans = 0
            return OVER_ANY_QUOTA
        try:
            device = os.stat(home).st_dev
            namespace = os.readlink(f"/proc/{_agent_pid(running.proc.pid)}/ns/pid")
        except OSError:
            return usage.bytes
        if self._namespaces is None:
            self._namespaces = pids_by_pid_namespace()
        pids = self._namespaces.get(namespace, [])
        return usage.bytes + open_unlinked_bytes(pids, device, self.uids.of(record.id))


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def _nested(first: str, second: str) -> bool:
    """Whether one mount path is the other or lies under it."""
    a, b = PurePosixPath(first), PurePosixPath(second)
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def _give_home_to(home: Path, uid: int) -> None:
    """The home's root belongs to the sandbox's host uid: its user ``daytona`` inside."""
    if uid != os.geteuid():
        os.chown(home, uid, uid, follow_symlinks=False)


def _remove_stale_socket_dirs() -> None:
    """Socket directories of servers that died without cleaning up (named after their pid)."""
    for directory in Path(tempfile.gettempdir()).glob(f"{_SOCKETS_PREFIX}*-*"):
        pid = directory.name[len(_SOCKETS_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or not directory.is_dir() or directory.stat().st_uid != os.geteuid():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # that server is still running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        if all(entry.suffix in (".sock", ".net") for entry in directory.iterdir()):
            shutil.rmtree(directory, ignore_errors=True)


def _agent_pid(bwrap_pid: int) -> int:
    """The host pid of bwrap's only child, the agent (init of the sandbox's pid namespace)."""
    try:
        with open(f"/proc/{bwrap_pid}/task/{bwrap_pid}/children") as children:
            return int(children.read().split()[0])
    except (OSError, IndexError, ValueError):
        return bwrap_pid
