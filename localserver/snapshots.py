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

import itertools
import json
import os
import re
import shlex
import subprocess
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
_COPY_TIMEOUT_SECONDS = 600.0
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


def copy_tree(source: Path, target: Path) -> None:
    """``source``'s contents into the empty directory ``target``, never following a symlink nor
    leaving the source's filesystem (mount points inside a home, volumes among them, stay empty),
    hard links and sparse files kept, ownership not (the caller hands the copy over). GNU cp
    walks trees of any depth without building their paths. Blocking."""
    argv = [
        "cp",
        "--no-dereference",
        "--recursive",
        "--preserve=mode,timestamps,links",
        "--sparse=always",
        "--one-file-system",
        "--",
        f"{source}/.",
        str(target),
    ]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=_COPY_TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ApiError(500, f"copying {source} failed: {error}") from None
    if result.returncode != 0:
        raise ApiError(500, f"copying {source} failed: {result.stderr.strip()[-500:]}")


def give_tree(root: Path, uid: int) -> None:
    """Every entry of ``root`` to ``uid`` (symlinks themselves, never what they point at)."""
    if uid == os.geteuid():
        return
    result = subprocess.run(
        ["chown", "-R", "--no-dereference", f"{uid}:{uid}", "--", str(root)],
        capture_output=True,
        text=True,
        timeout=_COPY_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        raise ApiError(500, f"handing {root} over failed: {result.stderr.strip()[-500:]}")


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
        copy_tree(home, partial)
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
