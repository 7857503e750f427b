"""Volumes: host directories the server owns, mounted read-write into the sandboxes that name them.

A volume is ``volumes/<id>/`` under the state directory: its record (``volume.json``) and its
data, which is, as a sandbox's home is (see :mod:`disk`), either its own loop-mounted ext4
filesystem of a fixed size (``loop`` mode: the kernel refuses every byte past it) or a plain
directory the monitor adds up, killing the processes of the sandboxes that mount it past the
size (``accounting`` mode).

Ownership. As root, every sandbox runs as a host uid of its own, so a file one sandbox writes
belongs to a uid the next one does not have. Each volume therefore gets a host gid of its own,
taken from the same pool (and claimed host-wide the same way) so that no sandbox ever runs as
it; a sandbox that mounts the volume runs with that gid as a supplementary group. The data
directory belongs to the group (mode 2770) and carries a default POSIX ACL granting the group
rwx: every file and directory made under it inherits a group entry for the volume's gid, whichever
sandbox made it, its umask and the owning group notwithstanding. Inside the user namespace the
gid is unmapped (it shows as ``nogroup``) but the kernel still checks access with it. A sandbox
that strips its own files' ACL or mode keeps them to itself, as on any shared directory. Where
all sandboxes share one uid (not root, or no uid pool) the directory simply belongs to that uid.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import stat
import struct
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from daytonaflow.localserver._uids import SandboxUids
from daytonaflow.localserver.disk import (
    DiskQuotaUnavailableError,
    LoopVolumes,
    TreeRemovalError,
    VolumeError,
    measure_disk,
    remove_tree,
)
from daytonaflow.localserver.errors import (
    ApiError,
    RequestFieldError,
    SandboxUidRefusedError,
    SandboxUidsExhaustedError,
)

logger = logging.getLogger("daytonaflow.localserver")

#: Volumes one server keeps at most (each may hold up to its size on the host's disk).
DEFAULT_MAX_VOLUMES = 100
#: Bytes a volume may hold unless the server is told otherwise.
DEFAULT_VOLUME_BYTES = 10 << 30
#: Volumes one sandbox may mount.
MAX_MOUNTS_PER_SANDBOX = 16
_MAX_SUBPATH_DEPTH = 32
_MAX_NAME = 255
_RECORD = "volume.json"
_DATA = "data"
_SCAN_MAX_ENTRIES = 200_000

# Where a volume may not be mounted: what every sandbox needs as the host made it, and the
# server's own directories inside it. A mount path is either strictly under the home or under
# a top-level directory not named here (``/data``, ``/mnt/cache``, ``/workspace``...).
_SYSTEM_TOP_LEVEL = frozenset(
    {
        *("bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "opt", "proc"),
        *("root", "run", "sbin", "sys", "tmp", "usr", "var"),
    }
)
_HOME = PurePosixPath("/home/daytona")

# POSIX ACL xattr layout (linux/posix_acl_xattr.h): a version, then (tag, perm, id) entries.
_ACL_VERSION = 2
_ACL_USER_OBJ, _ACL_GROUP_OBJ, _ACL_GROUP, _ACL_MASK, _ACL_OTHER = 0x01, 0x04, 0x08, 0x10, 0x20
_ACL_UNDEFINED_ID = 0xFFFFFFFF
_RWX = 7
_WALK_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class VolumeRecord:
    """What the API reports about a volume; persisted as ``volume.json`` in its directory."""

    id: str
    name: str
    state: str = "ready"
    gid: int | None = None
    """The host gid the sandboxes mounting it share it through (``None``: all share one uid)."""
    error_reason: str | None = None
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)
    last_used_at: str | None = None

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "organizationId": "local",
            "state": self.state,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "lastUsedAt": self.last_used_at,
            "errorReason": self.error_reason,
        }


@dataclass(frozen=True)
class VolumeMount:
    """One entry of a create's ``volumes``, checked: the volume's ID, where, and which part."""

    volume_id: str
    mount_path: str
    subpath: str | None = None

    def to_api(self) -> dict[str, str]:
        mount = {"volumeId": self.volume_id, "mountPath": self.mount_path}
        if self.subpath is not None:
            mount["subpath"] = self.subpath
        return mount


def check_mount_path(raw: object, index: int) -> str:
    """An absolute, normalised path strictly under the home or under a non-system top level."""
    name = f"volumes[{index}].mountPath"
    if not isinstance(raw, str) or not raw:
        raise RequestFieldError(name, "must be an absolute path")
    path = PurePosixPath(raw)
    parts = raw.split("/")
    if not raw.startswith("/") or any(part in ("", ".", "..") for part in parts[1:]) or "\0" in raw:
        raise RequestFieldError(name, f"must be an absolute path without '.', '..' or '//': {raw!r}")
    if len(raw) > 4096:
        raise RequestFieldError(name, "is longer than 4096 characters")
    under_home = path.is_relative_to(_HOME) and path != _HOME
    if not under_home and (len(path.parts) < 2 or path.parts[1] in _SYSTEM_TOP_LEVEL):
        raise RequestFieldError(
            name,
            f"{raw!r} would cover a system directory: mount under /home/daytona/ or a new top-level "
            "directory (e.g. /data)",
        )
    return str(path)


def check_subpath(raw: object, index: int) -> str | None:
    """A relative path of plain names (no ``..``, no absolute path): what a mount may expose."""
    if raw is None or raw == "":
        return None
    name = f"volumes[{index}].subpath"
    if not isinstance(raw, str):
        raise RequestFieldError(name, "must be a string")
    parts = raw.strip("/").split("/") if not raw.startswith("/") else []
    if not parts or any(part in ("", ".", "..") or "\0" in part for part in parts):
        raise RequestFieldError(name, f"must be a relative path of names inside the volume: {raw!r}")
    if len(parts) > _MAX_SUBPATH_DEPTH or any(len(part) > _MAX_NAME for part in parts):
        raise RequestFieldError(name, f"must be at most {_MAX_SUBPATH_DEPTH} names of {_MAX_NAME} bytes")
    return "/".join(parts)


def _acl(gid: int) -> bytes:
    entries = [
        (_ACL_USER_OBJ, _RWX, _ACL_UNDEFINED_ID),
        (_ACL_GROUP_OBJ, _RWX, _ACL_UNDEFINED_ID),
        (_ACL_GROUP, _RWX, gid),
        (_ACL_MASK, _RWX, _ACL_UNDEFINED_ID),
        (_ACL_OTHER, 0, _ACL_UNDEFINED_ID),
    ]
    return struct.pack("<I", _ACL_VERSION) + b"".join(struct.pack("<HHI", *entry) for entry in entries)


class VolumeStore:
    """Every volume of one server: records, data directories, their mounts and sizes."""

    def __init__(
        self,
        root: Path,
        uids: SandboxUids,
        loop: LoopVolumes | None,
        *,
        size_bytes: int = DEFAULT_VOLUME_BYTES,
        max_count: int = DEFAULT_MAX_VOLUMES,
    ) -> None:
        """``loop``: make each new volume its own filesystem of ``size_bytes`` (else accounted)."""
        self.root = root
        self.uids = uids
        self.loop = loop
        self.size_bytes = size_bytes
        self.max_count = max_count
        self.records: dict[str, VolumeRecord] = {}

    # ---- records ------------------------------------------------------------------------------------

    def open(self) -> None:
        """Load the volumes an earlier server made (their filesystems mounted again at first use)."""
        # Traversable, not listable: bwrap, as the sandbox's uid, resolves the path of what it binds.
        self.root.mkdir(mode=0o711, parents=True, exist_ok=True)
        self.root.chmod(0o711)
        for directory in sorted(self.root.iterdir()):
            try:
                record = VolumeRecord(**json.loads((directory / _RECORD).read_text()))
            except FileNotFoundError:
                continue  # a create that never finished: no volume anyone was given
            except (OSError, ValueError, TypeError) as error:
                # Its files may be someone's: kept where they are, for the operator to look at.
                logger.warning("volume in %s has an unreadable record, not served: %s", directory, error)
                continue
            if record.gid is not None:
                try:
                    self.uids.adopt(self._key(record.id), record.gid)
                except SandboxUidRefusedError as error:
                    record.state, record.error_reason = "error", f"cannot keep its host gid: {error}"
            self.records[record.id] = record

    def _key(self, volume_id: str) -> str:
        return f"volume-{volume_id}"

    def _dir(self, record: VolumeRecord) -> Path:
        return self.root / record.id

    def _persist(self, record: VolumeRecord) -> None:
        record.updated_at = _now()
        temp = self._dir(record) / f"{_RECORD}.tmp"
        temp.write_text(json.dumps(record.__dict__))
        temp.replace(self._dir(record) / _RECORD)

    def list(self) -> list[VolumeRecord]:
        return sorted(self.records.values(), key=lambda r: r.created_at)

    def get(self, id_or_name: str) -> VolumeRecord:
        record = self.records.get(id_or_name) or self._named(id_or_name)
        if record is None:
            raise ApiError(404, f"Volume with ID or name {id_or_name} not found", code="VOLUME_NOT_FOUND")
        return record

    def for_create(self, id_or_name: str) -> VolumeRecord:
        """The volume a sandbox create names: Daytona's 400 when there is none."""
        record = self.records.get(id_or_name) or self._named(id_or_name)
        if record is None:
            raise ApiError(400, f"Volume '{id_or_name}' could not be resolved to a valid volume ID")
        return record

    def by_name(self, name: str) -> VolumeRecord:
        record = self._named(name)
        if record is None:
            raise ApiError(404, f"Volume with name {name} not found", code="VOLUME_NOT_FOUND")
        return record

    def _named(self, name: str) -> VolumeRecord | None:
        return next((r for r in self.records.values() if r.name == name), None)

    def create(self, name: str) -> VolumeRecord:
        """A ready volume (its filesystem made and mounted in loop mode). Blocking: off the loop."""
        if self._named(name) is not None:
            raise ApiError(409, f"Volume with name {name} already exists", code="VOLUME_NAME_TAKEN")
        if len(self.records) >= self.max_count:
            raise ApiError(
                400,
                f"this server keeps at most {self.max_count} volumes: delete one first",
                code="VOLUME_LIMIT",
            )
        record = VolumeRecord(id=str(uuid.uuid4()), name=name)
        directory = self._dir(record)
        directory.mkdir(mode=0o711)
        try:
            if self.uids.per_sandbox:
                try:
                    record.gid = self.uids.assign(self._key(record.id))
                except SandboxUidsExhaustedError as error:
                    raise ApiError(503, f"no host gid left for a volume: {error}") from None
            if self.loop is not None:
                LoopVolumes.home(directory).parent.mkdir(mode=0o711)
            self._prepare(record)
            self._persist(record)
        except BaseException:
            self._forget(record)
            raise
        self.records[record.id] = record
        return record

    def delete(self, record: VolumeRecord) -> None:
        """Unmount and remove; the caller checked that no sandbox mounts it."""
        record.state = "deleting"
        self.detach(record)
        self._forget(record)
        self.records.pop(record.id, None)

    def _forget(self, record: VolumeRecord) -> None:
        try:
            remove_tree(self._dir(record))
        except TreeRemovalError as error:
            raise ApiError(500, f"volume {record.id}'s files could not all be removed: {error}") from None
        self.uids.release(self._key(record.id))

    # ---- data ---------------------------------------------------------------------------------------

    def _on_loop(self, record: VolumeRecord) -> bool:
        return LoopVolumes.home(self._dir(record)).parent.is_dir()

    def data_dir(self, record: VolumeRecord) -> Path:
        """The data directory, its filesystem mounted first in loop mode. Blocking."""
        return self._prepare(record)

    def _prepare(self, record: VolumeRecord) -> Path:
        directory = self._dir(record)
        if self._on_loop(record):
            try:
                # Made under a server in loop mode: mounted again whatever this one's mode.
                mounter = self.loop or LoopVolumes.locate()
                data = mounter.attach(directory, self.size_bytes)
            except (VolumeError, OSError, DiskQuotaUnavailableError) as error:
                raise ApiError(500, f"volume {record.id} cannot be mounted: {error}") from None
        else:
            data = directory / _DATA
            data.mkdir(mode=0o700, exist_ok=True)
        self._give(data, record)
        return data

    def _give(self, data: Path, record: VolumeRecord) -> None:
        """The data directory's owner, mode and inherited ACL (see the module's docstring)."""
        if record.gid is None:
            if os.geteuid() != self.uids.shared:
                os.chown(data, self.uids.shared, self.uids.shared)
            data.chmod(0o700)
            return
        os.chown(data, 0, record.gid)
        data.chmod(0o2770)
        acl = _acl(record.gid)
        try:
            os.setxattr(data, "system.posix_acl_access", acl)
            os.setxattr(data, "system.posix_acl_default", acl)
        except OSError as error:
            raise ApiError(
                500, f"the filesystem of {data} has no POSIX ACLs, which shared volumes need: {error}"
            ) from None

    def open_mount(self, mount: VolumeMount) -> int:
        """An ``O_PATH`` fd of what the mount exposes: the data directory, or the subpath in it,
        walked one name at a time without following a symlink (a link planted in the volume by a
        sandbox must not lead a later mount out of it); missing directories are made. Blocking."""
        record = self.get(mount.volume_id)
        fd = os.open(self.data_dir(record), _WALK_FLAGS)
        try:
            for name in mount.subpath.split("/") if mount.subpath else []:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o2770 if record.gid is not None else 0o700, dir_fd=fd)
                try:
                    child = os.open(name, _WALK_FLAGS, dir_fd=fd)
                except OSError as error:
                    if error.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise ApiError(
                            400,
                            f"subpath {mount.subpath!r} of volume {record.name} is not a directory "
                            "inside it (a symlink or a file is on the way)",
                            code="INVALID_FIELD",
                        ) from None
                    raise
                os.close(fd)
                fd = child
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                raise ApiError(400, f"subpath {mount.subpath!r} of volume {record.name} is not a directory")
        except BaseException:
            os.close(fd)
            raise
        record.last_used_at = _now()
        with contextlib.suppress(OSError):
            self._persist(record)
        return fd

    def used_bytes(self, record: VolumeRecord) -> int:
        """What an accounted volume holds (loop volumes are bounded by their filesystem)."""
        return measure_disk(self._dir(record) / _DATA, _SCAN_MAX_ENTRIES).bytes

    def accounted(self, record: VolumeRecord) -> bool:
        return not self._on_loop(record)

    def detach(self, record: VolumeRecord) -> None:
        if LoopVolumes.is_mounted(self._dir(record)):
            LoopVolumes.detach(self._dir(record))

    def close(self) -> None:
        """Unmount every volume filesystem (the sandboxes using them are gone)."""
        for record in self.records.values():
            with contextlib.suppress(VolumeError):
                self.detach(record)
