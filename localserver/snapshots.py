"""Snapshots: saved sandbox homes that new sandboxes start from.

What is writable in a local sandbox is its home (the rest is the host's userland, read-only), so a
local snapshot is a copy of a home: ``snapshots/<id>/home`` under the state directory, with its
record beside it. It is made from a running sandbox (its processes frozen while the copy is taken,
so the copy is of one instant) or built: a build sandbox runs the ``RUN`` lines of a Dockerfile
that the official SDK's ``Image.debian_slim(...).pip_install(...).run_commands(...)`` writes, and
its home is then saved. A new sandbox naming the snapshot gets a copy of it as its home.

Bounds: a snapshot is at most the home quota of the sandbox it came from (a larger home is
refused), and a server keeps at most :data:`DEFAULT_MAX_SNAPSHOTS` of them.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import re
import shlex
import stat
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from daytonaflow.localserver.disk import TreeRemovalError, disk_usage, remove_tree
from daytonaflow.localserver.errors import ApiError

DEFAULT_MAX_SNAPSHOTS = 32
_RECORD = "snapshot.json"
_HOME = "home"
_GIB = float(1 << 30)

#: The lines ``Image.debian_slim()`` starts every Dockerfile with, after its FROM: the base image's
#: own set-up, which the host's userland stands in for here (see :func:`build_steps`).
_DEBIAN_SLIM_PREAMBLE = (
    "apt-get update",
    "apt-get install -y gcc gfortran build-essential",
    "pip install --upgrade pip",
    "echo 'debconf debconf/frontend select Noninteractive' | debconf-set-selections",
)
_DEBIAN_SLIM_FROM = re.compile(r"^python:3\.\d+(\.\d+)?-slim(-[a-z]+)?$")
_INDEX_OPTIONS = ("--index-url", "-i", "--extra-index-url", "--find-links", "-f")
_APT = re.compile(r"(^|[\s;&|(])(apt|apt-get|dpkg|aptitude)(\s|$)")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class SnapshotRecord:
    """What the API reports about a snapshot; persisted as ``snapshot.json`` in its directory."""

    id: str
    name: str
    state: str = "pending"
    size_bytes: int | None = None
    error_reason: str | None = None
    source: str = ""
    """``sandbox <id>`` or ``build``: where it came from."""
    dockerfile: str | None = None
    cpu: float = 1
    mem: float = 1
    disk: float = 1
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)
    last_used_at: str | None = None

    def to_api(self) -> dict[str, Any]:
        snapshot: dict[str, Any] = {
            "id": self.id,
            "organizationId": "local",
            "general": False,
            "name": self.name,
            "imageName": f"local:{self.name}",
            "state": self.state,
            "size": None if self.size_bytes is None else round(self.size_bytes / _GIB, 6),
            "entrypoint": None,
            "cpu": self.cpu,
            "gpu": 0,
            "mem": self.mem,
            "disk": self.disk,
            "errorReason": self.error_reason,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "lastUsedAt": self.last_used_at,
            "regionIds": ["local"],
            "sandboxClass": "container",
        }
        if self.dockerfile is not None:
            snapshot["buildInfo"] = {
                "dockerfileContent": self.dockerfile,
                "createdAt": self.created_at,
                "updatedAt": self.updated_at,
                "snapshotRef": f"local:{self.name}",
            }
        return snapshot


@dataclass(frozen=True)
class BuildPlan:
    """What a Dockerfile asks this server to do: shell lines to run, and the package indexes
    they name (which the build sandbox's network must reach)."""

    steps: list[str]
    index_hosts: list[str]


def build_steps(dockerfile: str) -> BuildPlan:
    """The ``RUN`` lines to run of a Dockerfile from ``Image.debian_slim(...)``; 400 naming the line
    for anything this server cannot do (another base image, system packages, other instructions)."""
    lines = [line.strip() for line in dockerfile.replace("\\\n", " ").splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if not lines or not lines[0].upper().startswith("FROM "):
        raise _refused("it must start with FROM")
    image = lines[0].split(None, 1)[1].strip()
    if not _DEBIAN_SLIM_FROM.match(image):
        raise _refused(
            f"FROM {image}: local sandboxes run the host's own userland, so only the SDK's "
            "Image.debian_slim() base (FROM python:3.X-slim-...) can be built, from its pip and run lines"
        )
    steps: list[str] = []
    hosts: list[str] = []
    preamble = list(_DEBIAN_SLIM_PREAMBLE)
    for line in lines[1:]:
        instruction, _, argument = line.partition(" ")
        if instruction.upper() != "RUN":
            raise _refused(f"{instruction.upper()} is not supported (only RUN lines are)")
        command = argument.strip()
        if preamble and command == preamble[0]:
            preamble.pop(0)  # the base image's set-up: the host's userland is the base here
            continue
        if _APT.search(command):
            raise _refused(
                f"RUN {command}: system packages cannot be installed, local sandboxes share the host's "
                "read-only /usr (install them on the host, or use pip)"
            )
        steps.append(command)
        hosts += _index_hosts(command)
    return BuildPlan(steps, sorted(set(hosts)))


def _index_hosts(command: str) -> list[str]:
    try:
        words = shlex.split(command)
    except ValueError:
        return []
    hosts = []
    for option, value in itertools.pairwise(words):
        if option in _INDEX_OPTIONS and (host := urlsplit(value).hostname):
            hosts.append(host)
    for word in words:
        name, _, value = word.partition("=")
        if name in _INDEX_OPTIONS and (host := urlsplit(value).hostname):
            hosts.append(host)
    return hosts


def _refused(reason: str) -> ApiError:
    message = f"buildInfo.dockerfileContent cannot be built locally: {reason}"
    return ApiError(400, message, code="BUILD_UNSUPPORTED")


class CopyLimitError(ApiError):
    """The tree grew past the bytes its copy may take (a sandbox writing into it meanwhile)."""


# Every name is opened relative to its directory's fd and never followed: a directory the tree's
# owner swaps for a symlink mid-copy is refused (O_NOFOLLOW), not read through as root. The walk
# holds two fds (source and target) whatever the depth, climbing back through ``..`` checked to
# be the directory it came down from, so no path is ever built (no PATH_MAX).
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIRECTORY_BYTES = 4096
_CHUNK_BYTES = 1 << 20
_MAX_LINKED = 1024
"""Hard-linked files whose first copy is kept open to link the others to; past it they are copied."""
_SAFE_MODE_BITS = 0o1777
"""setuid and setgid are never carried over: a copy must not make a program that runs as another."""


class _Moved(Exception):
    """A directory the walk was inside was moved meanwhile."""


@dataclass
class _CopyLevel:
    name: str
    source: os.stat_result
    target: os.stat_result
    pending: list[str]


@dataclass
class _Copy:
    device: int
    owner: int
    max_bytes: int
    written: int = 0
    buffered: bool = False
    """Copies go through a buffer: the kernel would not copy between these filesystems."""
    linked: dict[tuple[int, int], int] = field(default_factory=dict)

    def spend(self, count: int) -> None:
        self.written += count
        if self.written > self.max_bytes:
            raise CopyLimitError(400, f"the tree grew past {self.max_bytes} bytes while it was copied")


def copy_tree(source: Path, target: Path, *, owner: int, max_bytes: int) -> int:
    """``source``'s contents into the empty directory ``target``, every entry given to ``owner``,
    never following a symlink nor leaving the source's filesystem (mount points stay empty dirs),
    hard links, sparse files, modes (without setuid and setgid) and times kept; ``target``'s own
    mode is left as it is. The source may be changed meanwhile by its hostile owner: nothing
    outside it is ever read, and the copy stops with :class:`CopyLimitError` past ``max_bytes``.
    Returns the bytes written. Blocking."""
    source_fd = os.open(source, _DIR_FLAGS)
    try:
        target_fd = os.open(target, _DIR_FLAGS)
    except OSError:
        os.close(source_fd)
        raise
    state = _Copy(os.fstat(source_fd).st_dev, owner, max_bytes)
    try:
        _own(target_fd, None, owner)
        source_fd, target_fd = _copy_walk(state, source_fd, target_fd)
    except _Moved:
        raise ApiError(500, "the tree changed while it was copied", code="SNAPSHOT_COPY_FAILED") from None
    finally:
        os.close(source_fd)
        os.close(target_fd)
        for fd in state.linked.values():
            os.close(fd)
    return state.written


def _copy_walk(state: _Copy, source_fd: int, target_fd: int) -> tuple[int, int]:
    levels = [_CopyLevel("", os.fstat(source_fd), os.fstat(target_fd), _names(source_fd))]
    while True:
        top = levels[-1]
        if top.pending:
            name = top.pending.pop()
            entered = _copy_entry(state, source_fd, target_fd, name)
            if entered is not None:
                child_source, child_target = entered
                levels.append(
                    _CopyLevel(name, os.fstat(child_source), os.fstat(child_target), _names(child_source))
                )
                os.close(source_fd)
                os.close(target_fd)
                source_fd, target_fd = child_source, child_target
            continue
        if len(levels) == 1:
            return source_fd, target_fd
        done = levels.pop()
        _finish_directory(state, target_fd, done.source)
        parent_source = _parent(source_fd, levels[-1].source)
        try:
            parent_target = _parent(target_fd, levels[-1].target)
        except BaseException:
            os.close(parent_source)
            raise
        os.close(source_fd)
        os.close(target_fd)
        source_fd, target_fd = parent_source, parent_target


def _names(fd: int) -> list[str]:
    return os.listdir(fd)


def _parent(fd: int, expected: os.stat_result) -> int:
    parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
    info = os.fstat(parent)
    if (info.st_dev, info.st_ino) != (expected.st_dev, expected.st_ino):
        os.close(parent)
        raise _Moved
    return parent


def _copy_entry(state: _Copy, source_fd: int, target_fd: int, name: str) -> tuple[int, int] | None:
    """Copy one entry; for a directory, make it and return both fds to descend into."""
    try:
        info = os.stat(name, dir_fd=source_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None  # gone since it was listed
    if stat.S_ISDIR(info.st_mode):
        return _copy_directory(state, source_fd, target_fd, name, info)
    if stat.S_ISREG(info.st_mode):
        _copy_file(state, source_fd, target_fd, name)
    elif stat.S_ISLNK(info.st_mode):
        try:
            link = os.readlink(name, dir_fd=source_fd)
        except OSError:
            return None  # swapped since it was looked at: the copy is of the moment before
        os.symlink(link, name, dir_fd=target_fd)
        _own(target_fd, name, state.owner, info)
    elif stat.S_ISFIFO(info.st_mode):
        os.mkfifo(name, 0o600, dir_fd=target_fd)
        _own(target_fd, name, state.owner, info)
    # Sockets and device nodes are not copied: a socket means nothing without its server, and a
    # sandbox cannot make device nodes.
    return None


def _copy_directory(
    state: _Copy, source_fd: int, target_fd: int, name: str, info: os.stat_result
) -> tuple[int, int] | None:
    state.spend(_DIRECTORY_BYTES)
    os.mkdir(name, 0o700, dir_fd=target_fd)
    if info.st_dev != state.device:
        _own(target_fd, name, state.owner, info)
        return None  # a mount point: its mount is not part of the tree
    try:
        child = os.open(name, _DIR_FLAGS, dir_fd=source_fd)
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None  # replaced since it was looked at (by a symlink: never followed)
        raise
    if os.fstat(child).st_dev != state.device:
        os.close(child)
        return None
    try:
        return child, os.open(name, _DIR_FLAGS, dir_fd=target_fd)
    except BaseException:
        os.close(child)
        raise


def _finish_directory(state: _Copy, target_fd: int, info: os.stat_result) -> None:
    """A directory's owner, mode and times once its entries are in (a read-only one is filled first)."""
    _own(target_fd, None, state.owner)
    os.chmod(target_fd, stat.S_IMODE(info.st_mode) & _SAFE_MODE_BITS)
    os.utime(target_fd, ns=(info.st_atime_ns, info.st_mtime_ns))


def _copy_file(state: _Copy, source_fd: int, target_fd: int, name: str) -> None:
    try:
        source = os.open(name, _FILE_FLAGS, dir_fd=source_fd)
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ELOOP, errno.ENXIO):
            return  # replaced since it was looked at
        raise
    try:
        info = os.fstat(source)
        if not stat.S_ISREG(info.st_mode):
            return
        key = (info.st_dev, info.st_ino)
        if info.st_nlink > 1 and key in state.linked:
            os.link(f"/proc/self/fd/{state.linked[key]}", name, dst_dir_fd=target_fd, follow_symlinks=True)
            return
        target = os.open(name, _NEW_FILE_FLAGS, 0o600, dir_fd=target_fd)
        try:
            _copy_data(state, source, target, info.st_size)
            _own(target, None, state.owner)
            os.chmod(target, stat.S_IMODE(info.st_mode) & _SAFE_MODE_BITS & 0o777)
            os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
            if info.st_nlink > 1 and len(state.linked) < _MAX_LINKED:
                state.linked[key] = os.dup(target)
        finally:
            os.close(target)
    finally:
        os.close(source)


def _copy_data(state: _Copy, source: int, target: int, size: int) -> None:
    """The parts holding data, at their offsets: a sparse file stays sparse (and costs its data)."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(source, offset, os.SEEK_DATA)
        except OSError as error:
            if error.errno == errno.ENXIO:
                break  # only a hole left
            raise
        end = min(os.lseek(source, start, os.SEEK_HOLE), size)
        while start < end:
            count = min(end - start, _CHUNK_BYTES)
            state.spend(count)
            copied = _copy_range(state, source, target, count, start)
            if copied == 0:
                break  # truncated meanwhile
            start += copied
        offset = max(end, offset + 1)
    os.ftruncate(target, size)


def _copy_range(state: _Copy, source: int, target: int, count: int, offset: int) -> int:
    """In the kernel where it can (same filesystem type), else through a buffer."""
    if not state.buffered:
        try:
            return os.copy_file_range(source, target, count, offset, offset)
        except OSError as error:
            if error.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
            state.buffered = True
    data = os.pread(source, count, offset)
    written = 0
    while written < len(data):
        written += os.pwrite(target, data[written:], offset + written)
    return len(data)


def _own(dir_fd: int, name: str | None, owner: int, info: os.stat_result | None = None) -> None:
    """Give an entry to ``owner`` (a symlink itself, never what it points at), times kept."""
    if name is None:
        if os.geteuid() == 0:
            os.fchown(dir_fd, owner, owner)
        return
    if os.geteuid() == 0:
        os.chown(name, owner, owner, dir_fd=dir_fd, follow_symlinks=False)
    if info is not None:
        os.utime(name, ns=(info.st_atime_ns, info.st_mtime_ns), dir_fd=dir_fd, follow_symlinks=False)


class SnapshotStore:
    """Every snapshot of one server: records and saved homes."""

    def __init__(self, root: Path, *, max_count: int = DEFAULT_MAX_SNAPSHOTS) -> None:
        self.root = root
        self.max_count = max_count
        self.records: dict[str, SnapshotRecord] = {}

    def open(self) -> None:
        """Load what an earlier server saved; a snapshot it left unfinished failed."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for directory in sorted(self.root.iterdir()):
            try:
                record = SnapshotRecord(**json.loads((directory / _RECORD).read_text()))
            except (OSError, ValueError, TypeError):
                continue
            if record.state in ("pending", "building"):
                record.state = "build_failed"
                record.error_reason = "the server stopped before the snapshot was complete"
                self.persist(record)
            self.records[record.id] = record

    def persist(self, record: SnapshotRecord) -> None:
        record.updated_at = _now()
        temp = self.root / record.id / f"{_RECORD}.tmp"
        temp.write_text(json.dumps(record.__dict__))
        temp.replace(self.root / record.id / _RECORD)

    def list(self) -> list[SnapshotRecord]:
        return sorted(self.records.values(), key=lambda r: r.created_at)

    def get(self, id_or_name: str) -> SnapshotRecord:
        record = self.records.get(id_or_name) or self._named(id_or_name)
        if record is None:
            raise ApiError(404, f"Snapshot {id_or_name} not found", code="SNAPSHOT_NOT_FOUND")
        return record

    def for_create(self, id_or_name: str) -> SnapshotRecord:
        """The active snapshot a sandbox create names: Daytona's 400s when there is none."""
        record = self.records.get(id_or_name) or self._named(id_or_name)
        if record is None:
            raise ApiError(
                400, f"Snapshot {id_or_name} not found. Did you add it through the Daytona Dashboard?"
            )
        if record.state != "active":
            raise ApiError(400, f"Snapshot {id_or_name} is {record.state}")
        return record

    def _named(self, name: str) -> SnapshotRecord | None:
        return next((r for r in self.records.values() if r.name == name), None)

    def new(self, name: str, *, source: str, dockerfile: str | None = None) -> SnapshotRecord:
        if not name or len(name) > 255 or "/" in name or name.strip() != name:
            raise ApiError(400, "name must be 1-255 characters without '/' or surrounding spaces")
        if self._named(name) is not None:
            raise ApiError(409, f"Snapshot with name {name} already exists", code="SNAPSHOT_NAME_TAKEN")
        if len(self.records) >= self.max_count:
            raise ApiError(
                400,
                f"this server keeps at most {self.max_count} snapshots: delete one first",
                code="SNAPSHOT_LIMIT",
            )
        record = SnapshotRecord(id=str(uuid.uuid4()), name=name, source=source, dockerfile=dockerfile)
        (self.root / record.id).mkdir(mode=0o700)
        self.persist(record)
        self.records[record.id] = record
        return record

    def home(self, record: SnapshotRecord) -> Path:
        return self.root / record.id / _HOME

    def save_home(self, record: SnapshotRecord, home: Path, quota_bytes: int) -> None:
        """Copy ``home`` in as the snapshot's (the sandbox's processes are frozen by the caller);
        400 when the home holds more than ``quota_bytes``. Blocking."""
        used = disk_usage(home)
        if used > quota_bytes:
            raise ApiError(
                400, f"the sandbox's home holds {used} bytes, more than its disk quota of {quota_bytes}"
            )
        partial = self.root / record.id / f"{_HOME}.partial"
        if partial.exists():
            remove_tree(partial)
        partial.mkdir(mode=0o700)
        try:
            # Owned by the server: nothing in the store runs, nor is reachable by anyone else.
            copy_tree(home, partial, owner=os.geteuid(), max_bytes=quota_bytes)
        except BaseException:
            with contextlib.suppress(TreeRemovalError):
                remove_tree(partial)
            raise
        partial.replace(self.home(record))
        record.size_bytes = disk_usage(self.home(record))
        record.state = "active"
        record.error_reason = None
        self.persist(record)

    def fail(self, record: SnapshotRecord, reason: str) -> None:
        record.state = "build_failed" if record.dockerfile is not None else "error"
        record.error_reason = reason
        self.persist(record)

    def delete(self, record: SnapshotRecord) -> None:
        try:
            remove_tree(self.root / record.id)
        except TreeRemovalError as error:
            raise ApiError(500, f"snapshot {record.id}'s files could not all be removed: {error}") from None
        self.records.pop(record.id, None)
