"""A sandbox's disk: tree removal and usage scans that any tree survives, and the home's quota.

Sandbox code shapes its home at will: trees thousands of levels deep, paths far beyond
PATH_MAX, directories it made unreadable, symlinks to host files. Removal and scans therefore
work relative to directory fds, one directory open at a time, never follow a symlink and never
build a path; what they remember per level is a name and an inode, so their memory grows with
the tree they meet, not with a recursion limit or a path length.

The quota itself is enforced in one of two modes (:data:`DiskMode`):

- ``loop``: the home is its own ext4 filesystem, a sparse image in the sandbox's directory
  loop-mounted on the host, so the kernel refuses every write past the size, files unlinked
  but still open included. Needs root, loop devices and ``mkfs.ext4``.
- ``accounting``: the monitor adds up every path of the home plus files its processes hold
  open after unlinking them, and kills the sandbox's processes past the quota.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import json
import logging
import os
import secrets
import shutil
import stat
import struct
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from daytonaflow.localserver.errors import LocalServerError

logger = logging.getLogger("daytonaflow.localserver")

DiskMode = Literal["auto", "loop", "accounting"]
"""``auto`` picks ``loop`` where the host allows it, else ``accounting``."""

OVER_ANY_QUOTA = 1 << 62
"""What a scan reports for a tree too large to count: more than any quota."""

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Reopening an O_PATH fd through /proc/self/fd: that magic link names the very inode, and
# O_NOFOLLOW would refuse it for being a link.
_REOPEN_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_REMOVAL_BATCH = 512
_SCAN_RESTARTS = 3
_IMAGE_NAME = "home.img"
_VOLUME_NAME = "volume"
# noinit_itable: the inode tables mkfs left uninitialised (the group descriptors say so) are
# not zeroed by a kernel thread after mount, which would write ~1.5 % of the size per home.
_MOUNT_OPTIONS = "loop,nosuid,nodev,noatime,noinit_itable"
# Lazy inode tables and no discard keep mkfs at ~10 ms whatever the size; without the resize
# inode (a home never grows) it writes 164 KiB instead of 1.7 MiB for 3 GiB, which also makes
# the image quicker to delete. -m 0 reserves no blocks for root, who never writes there. The
# default journal keeps a home intact across a host crash and costs no more time than none.
_MKFS_OPTIONS = ("-q", "-F", "-t", "ext4", "-m", "0", "-O", "^resize_inode")
_MKFS_EXTENDED = "nodiscard,lazy_itable_init=1,lazy_journal_init=1"
_PROBE_IMAGE_BYTES = 8 << 20
_TEMPLATES_NAME = "home-templates"
_COMMAND_TIMEOUT_SECONDS = 60.0
_UNMOUNT_ATTEMPTS = 50
_DETACH_WAIT_SECONDS = 5.0
_LOOP_MAJOR = 7
PROBE_RECORDS = Path("/run/daytonaflow")
"""Where successful loop probes are recorded: a tmpfs, so emptied at each boot."""
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_LOOP_CTL_GET_FREE = 0x4C82
_LOOP_CONFIGURE = 0x4C0A
_LOOP_CLR_FD = 0x4C01
_LO_FLAGS_AUTOCLEAR = 4
# struct loop_config: fd, block_size, struct loop_info64 (232 bytes), 8 reserved u64.
_LOOP_CONFIG_SIZE = 4 + 4 + 232 + 64
_LOOP_CONFIG_FLAGS_OFFSET = 8 + 8 * 5 + 4 * 3  # info.lo_flags, after 5 u64 and 3 u32
_LOOP_CONFIG_NAME_OFFSET = _LOOP_CONFIG_FLAGS_OFFSET + 4  # info.lo_file_name[64]
_LOOP_BIND_ATTEMPTS = 20
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_NOATIME = 1024
LIBC = ctypes.CDLL(None, use_errno=True)
"""The C library, one handle for the package, for the calls ``os`` lacks (``umount2``, ``mount``)."""


class TreeRemovalError(LocalServerError):
    """A sandbox's files could not all be removed; the message says which and why."""


class DiskQuotaUnavailableError(LocalServerError):
    """This host cannot give sandboxes a size-capped filesystem; the message says why."""


class VolumeError(LocalServerError):
    """Creating, mounting or unmounting a sandbox's home filesystem failed."""


# ---- walking a hostile tree --------------------------------------------------------------------------


@dataclass
class _Level:
    """One directory on the way from the root down to the one open now."""

    name: str
    device: int
    inode: int
    pending: list[str] = field(default_factory=list)
    restore_mode: int | None = None


def _open_dir(name: str, dir_fd: int | None, needed: int) -> tuple[int, int | None]:
    """Open a directory without following symlinks; return its fd and the mode to restore.

    A server that is not root owns the sandbox's files (the sandbox's uid maps to its own) but
    cannot read a directory the sandbox made 000: it grants itself ``needed`` permission bits
    first, through an ``O_PATH`` fd, so no name is resolved twice. Root needs no such help.
    """
    path_fd = os.open(name, _PATH_FLAGS, dir_fd=dir_fd)
    try:
        info = os.fstat(path_fd)
        restore: int | None = None
        mode = stat.S_IMODE(info.st_mode)
        if mode & needed != needed and info.st_uid == os.geteuid() and os.geteuid() != 0:
            os.chmod(f"/proc/self/fd/{path_fd}", mode | needed)
            restore = mode
        return os.open(f"/proc/self/fd/{path_fd}", _REOPEN_FLAGS), restore
    finally:
        os.close(path_fd)


def _open_parent(fd: int, expected: _Level) -> int:
    """``..`` of the open directory, which must still be the directory we came down from."""
    parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
    info = os.fstat(parent)
    if (info.st_dev, info.st_ino) != (expected.device, expected.inode):
        os.close(parent)
        raise _TreeMovedError
    return parent


class _TreeMovedError(Exception):
    """A directory was moved while we were inside it (only running sandboxes do that)."""

    def __init__(self, seen: int = 0) -> None:
        super().__init__(seen)
        self.seen = seen
        """Bytes a scan had counted when it met the move."""


# ---- removal -----------------------------------------------------------------------------------------


def remove_tree(path: Path) -> None:
    """Remove ``path`` and everything under it, however deep; raise :class:`TreeRemovalError`.

    Never follows a symlink and never crosses into another filesystem: a mount point inside the
    tree (a home filesystem still mounted) stops the removal instead of emptying that mount.
    """
    try:
        fd, _restore = _open_dir(str(path), None, 0o700)
    except FileNotFoundError:
        return
    except OSError as error:
        if error.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise TreeRemovalError(f"cannot open {path}: {error.strerror}") from None
        _unlink_top(path)
        return
    try:
        _empty_tree(fd, path)
    except OSError as error:
        raise TreeRemovalError(f"cannot remove {path}: {error.strerror}") from None
    finally:
        os.close(fd)
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError as error:
        raise TreeRemovalError(f"cannot remove {path}: {error.strerror}") from None


def _unlink_top(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as error:
        raise TreeRemovalError(f"cannot remove {path}: {error.strerror}") from None


def _empty_tree(root_fd: int, root: Path) -> None:
    info = os.fstat(root_fd)
    levels = [_Level("", info.st_dev, info.st_ino)]
    fd = os.dup(root_fd)
    try:
        while True:
            top = levels[-1]
            if not top.pending:
                top.pending = _unlink_files(fd, root, len(levels))
            if top.pending:
                name = top.pending.pop()
                child = _enter_for_removal(fd, name, info.st_dev, root, len(levels))
                if child is None:
                    continue
                child_info = os.fstat(child)
                levels.append(_Level(name, child_info.st_dev, child_info.st_ino))
                os.close(fd)
                fd = child
                continue
            if len(levels) == 1:
                return
            done = levels.pop()
            try:
                parent = _open_parent(fd, levels[-1])
            except (_TreeMovedError, OSError):
                raise TreeRemovalError(
                    f"{root} changed while it was being removed (at depth {len(levels)})"
                ) from None
            os.close(fd)
            fd = parent
            _remove_entry(fd, done.name, root, len(levels), directory=True)
    finally:
        os.close(fd)


def _unlink_files(fd: int, root: Path, depth: int) -> list[str]:
    """Unlink every non-directory of the open directory; return up to a batch of subdirectories."""
    lent_access = False
    while True:
        subdirectories: list[str] = []
        unlinked_any = False
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        if len(subdirectories) < _REMOVAL_BATCH:
                            subdirectories.append(entry.name)
                        continue
                    _remove_entry(fd, entry.name, root, depth, directory=False)
                    unlinked_any = True
        except PermissionError:
            # Listing needs read permission; the sandbox may have taken it away from us.
            if lent_access or not _make_writable(fd):
                raise TreeRemovalError(f"cannot list a directory at depth {depth} of {root}") from None
            lent_access = True
            continue
        if subdirectories or not unlinked_any:
            return subdirectories
        # Everything listed was a file and is gone: one more pass confirms the directory is empty.


def _enter_for_removal(fd: int, name: str, device: int, root: Path, depth: int) -> int | None:
    try:
        try:
            child, _restore = _open_dir(name, fd, 0o700)
        except PermissionError:
            # Looking a name up needs search permission on the directory it is in.
            if not _make_writable(fd):
                raise
            child, _restore = _open_dir(name, fd, 0o700)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno in (errno.ENOTDIR, errno.ELOOP):
            # Swapped for a file or a symlink since it was listed: remove that name instead.
            _remove_entry(fd, name, root, depth, directory=False)
            return None
        raise TreeRemovalError(
            f"cannot enter {name!r} at depth {depth} of {root}: {error.strerror}"
        ) from None
    if os.fstat(child).st_dev != device:
        os.close(child)
        raise TreeRemovalError(f"{name!r} at depth {depth} of {root} is a mount point; unmount it first")
    return child


def _make_writable(fd: int) -> bool:
    """Give ourselves full access to the open directory (we own it, or are root)."""
    try:
        os.fchmod(fd, 0o700)
    except OSError:
        return False
    return True


def _remove_entry(fd: int, name: str, root: Path, depth: int, *, directory: bool) -> None:
    """Unlink or rmdir ``name`` in the open directory, once more after making it writable."""
    for attempt in range(2):
        try:
            if directory:
                os.rmdir(name, dir_fd=fd)
            else:
                os.unlink(name, dir_fd=fd)
            return
        except FileNotFoundError:
            return
        except PermissionError as error:
            if attempt == 0 and _make_writable(fd):
                continue
            raise TreeRemovalError(
                f"cannot remove {name!r} at depth {depth} of {root}: {error.strerror}"
            ) from None
        except OSError as error:
            raise TreeRemovalError(
                f"cannot remove {name!r} at depth {depth} of {root}: {error.strerror}"
            ) from None


# ---- usage scan --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiskUsage:
    """What one scan of a home found."""

    bytes: int
    settled: bool
    """``False``: directories kept moving under every attempt, so ``bytes`` is what was seen
    before the last move, a lower bound only (sandbox code can swap directories to hide data)."""


def measure_disk(root: Path, max_entries: int = 200_000) -> DiskUsage:
    """Bytes allocated under ``root``, every path counted however long; symlinks not followed.

    Trees of more than ``max_entries`` entries count as :data:`OVER_ANY_QUOTA`. A sandbox that
    moves directories while the scan is inside them makes it start over, a few times at most;
    a tree that never holds still gives an unsettled lower bound, for the caller to judge.
    """
    for _attempt in range(_SCAN_RESTARTS):
        try:
            return DiskUsage(_scan(root, max_entries), settled=True)
        except _TreeMovedError:
            continue
    try:
        return DiskUsage(_scan(root, max_entries), settled=True)
    except _TreeMovedError as moved:
        return DiskUsage(moved.seen, settled=False)


def disk_usage(root: Path, max_entries: int = 200_000) -> int:
    """:func:`measure_disk`'s bytes, :data:`OVER_ANY_QUOTA` for a tree that never held still."""
    usage = measure_disk(root, max_entries)
    return usage.bytes if usage.settled else OVER_ANY_QUOTA


def _scan(root: Path, max_entries: int) -> int:
    try:
        fd, restore = _open_dir(str(root), None, 0o500)
    except OSError:
        return 0
    info = os.fstat(fd)
    levels = [_Level("", info.st_dev, info.st_ino, restore_mode=restore)]
    counter = _Counter(max_entries, info.st_dev)
    try:
        counter.add(info)
        levels[0].pending = counter.list(fd)
        while True:
            top = levels[-1]
            if top.pending and not counter.over_limit:
                name = top.pending.pop()
                try:
                    child, child_restore = _open_dir(name, fd, 0o500)
                except OSError:
                    continue  # gone since it was listed
                child_info = os.fstat(child)
                if child_info.st_dev != info.st_dev:
                    os.close(child)
                    continue
                level = _Level(name, child_info.st_dev, child_info.st_ino, restore_mode=child_restore)
                levels.append(level)
                os.close(fd)
                fd = child
                level.pending = counter.list(fd)
                continue
            if len(levels) == 1:
                _restore_mode(fd, top)
                return OVER_ANY_QUOTA if counter.over_limit else counter.total
            # Up through "..", checked against the inode we came down from: a path would have to
            # be resolved again from the root, and the sandbox may have moved it meanwhile. A
            # move leaves permissions we lent ourselves above this level as they are.
            try:
                parent = _open_parent(fd, levels[-2])
            except (_TreeMovedError, OSError):
                _restore_mode(fd, top)
                raise _TreeMovedError(counter.total) from None
            _restore_mode(fd, levels.pop())
            os.close(fd)
            fd = parent
    finally:
        os.close(fd)


def _restore_mode(fd: int, level: _Level) -> None:
    if level.restore_mode is not None:
        with contextlib.suppress(OSError):
            os.fchmod(fd, level.restore_mode)


class _Counter:
    """Adds up allocated blocks; a file with several links counts once."""

    def __init__(self, max_entries: int, device: int) -> None:
        self.total = 0
        self.entries = 0
        self.max_entries = max_entries
        self.over_limit = False
        self.device = device
        self._linked: set[int] = set()

    def add(self, info: os.stat_result) -> None:
        if info.st_nlink > 1 and not stat.S_ISDIR(info.st_mode):
            if info.st_ino in self._linked:
                return
            self._linked.add(info.st_ino)
        self.total += info.st_blocks * 512

    def list(self, fd: int) -> list[str]:
        """Count the open directory's entries; return its subdirectories on the same filesystem."""
        subdirectories: list[str] = []
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    self.entries += 1
                    if self.entries > self.max_entries:
                        # Counting stops; the walk still climbs back to give lent permissions back.
                        self.over_limit = True
                        return []
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    self.add(info)
                    if stat.S_ISDIR(info.st_mode) and info.st_dev == self.device:
                        subdirectories.append(entry.name)
        except OSError:
            pass
        return subdirectories


# ---- files unlinked but kept open ------------------------------------------------------------------


def pids_by_pid_namespace() -> dict[str, list[int]]:
    """Every host process, grouped by its pid namespace (``pid:[inode]``)."""
    groups: dict[str, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            namespace = os.readlink(f"/proc/{name}/ns/pid")
        except OSError:
            continue
        groups.setdefault(namespace, []).append(int(name))
    return groups


def open_unlinked_bytes(pids: Iterable[int], device: int, owner: int) -> int:
    """Bytes of regular files on ``device`` owned by ``owner`` that are unlinked but still open.

    Such a file has no path for a scan to find, yet holds its blocks until the last fd (or
    mapping) closes. Each inode counts once, however many processes hold it.
    """
    seen: set[int] = set()
    total = 0
    for pid in pids:
        for holder in _held_files(pid):
            try:
                info = os.stat(holder)
            except OSError:
                continue
            if (
                info.st_nlink == 0
                and info.st_dev == device
                and info.st_uid == owner
                and stat.S_ISREG(info.st_mode)
                and info.st_ino not in seen
            ):
                seen.add(info.st_ino)
                total += info.st_blocks * 512
    return total


def _held_files(pid: int) -> list[str]:
    """``/proc`` links to the files a process holds: its fds and its mappings of deleted files."""
    held: list[str] = []
    fd_dir = f"/proc/{pid}/fd"
    with contextlib.suppress(OSError):
        held += [f"{fd_dir}/{fd}" for fd in os.listdir(fd_dir)]
    with contextlib.suppress(OSError), open(f"/proc/{pid}/maps", errors="replace") as maps:
        for line in maps:
            if line.endswith(" (deleted)\n"):
                # map_files needs CAP_SYS_ADMIN: a server that is not root sees the fds only.
                held.append(f"/proc/{pid}/map_files/{line.split(' ', 1)[0]}")
    return held


# ---- the host's own disk ---------------------------------------------------------------------------


def filesystem_space(path: Path) -> tuple[int, int]:
    """Bytes an unprivileged writer may still use on the filesystem holding ``path``, and its size."""
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize, info.f_blocks * info.f_frsize


def default_free_floor(size_bytes: int) -> int:
    """Free space below which accounting's blind spots put the host at risk: 1 GiB or 5 %."""
    return max(1 << 30, size_bytes // 20)


# ---- loop-mounted home filesystems -----------------------------------------------------------------


class LoopVolumes:
    """Each sandbox's home on its own ext4 filesystem: ``home.img`` loop-mounted on ``volume/``.

    The home is ``volume/home`` and the clone scratch directory ``volume/scratch``: both on the
    capped filesystem (a clone moves into the home by rename), the scratch invisible inside.
    """

    def __init__(self, mkfs: str, mount: str) -> None:
        self.mkfs = mkfs
        self.mount = mount
        self.templates: Path | None = None
        """Where formatted images are kept, one per size, to copy rather than format each home
        (``None``: every image formatted by mkfs)."""
        self._template_lock = threading.Lock()
        self.probe_record: Path | None = None
        """Where the host's ability to mount these volumes is recorded, if it is."""

    @classmethod
    def locate(cls) -> LoopVolumes:
        """Volumes made with this host's tools, untried; :class:`DiskQuotaUnavailableError` if
        it plainly has no way to mount them."""
        if os.geteuid() != 0:
            raise DiskQuotaUnavailableError("loop mounts need a server running as root")
        if not Path("/dev/loop-control").exists():
            raise DiskQuotaUnavailableError("no loop devices (/dev/loop-control is missing)")
        tools = {name: _find_tool(name) for name in ("mkfs.ext4", "mount")}
        missing = [name for name, found in tools.items() if found is None]
        if missing:
            raise DiskQuotaUnavailableError(f"{', '.join(missing)} not found")
        return cls(str(tools["mkfs.ext4"]), str(tools["mount"]))

    @classmethod
    def probe(cls, work_dir: Path, records: Path | None = PROBE_RECORDS) -> LoopVolumes:
        """Volumes if this host can make and mount them; else :class:`DiskQuotaUnavailableError`.

        A test filesystem mounted and unmounted costs 0.13-0.19 s, so its success is recorded in
        ``records`` (``None``: not recorded) for this boot of the host, this user, these tools
        and the filesystem of ``work_dir``; a failure is not, as one under load may pass later.
        A recorded success that a mount later belies is forgotten (see :meth:`attach`).
        """
        volumes = cls.locate()
        probe = work_dir / "loop-probe"
        record = _probe_record(records, volumes, work_dir)
        try:
            if cls.is_mounted(probe):  # a server killed while it probed
                cls.detach(probe)
            remove_tree(probe)
            if record is None or not _probe_recorded(record):
                probe.mkdir(mode=0o700)
                volumes.attach(probe, _PROBE_IMAGE_BYTES)
                volumes.detach(probe)
                if record is not None:
                    _record_probe(record)
        except (VolumeError, TreeRemovalError, OSError) as error:
            raise DiskQuotaUnavailableError(f"a test filesystem could not be mounted: {error}") from None
        finally:
            with contextlib.suppress(TreeRemovalError, VolumeError):
                if not _is_mount_point(probe / _VOLUME_NAME):
                    remove_tree(probe)
        volumes.probe_record = record
        # Made by this server's mkfs options only: an earlier version's may differ.
        templates = work_dir / _TEMPLATES_NAME
        with contextlib.suppress(TreeRemovalError):
            remove_tree(templates)
        with contextlib.suppress(OSError):
            templates.mkdir(mode=0o700)
            volumes.templates = templates
        return volumes

    @staticmethod
    def home(directory: Path) -> Path:
        return directory / _VOLUME_NAME / "home"

    @staticmethod
    def homes_under(root: Path) -> int:
        """How many sandbox directories under ``root`` keep their home on a volume."""
        try:
            return sum(1 for directory in root.iterdir() if (directory / _VOLUME_NAME).is_dir())
        except OSError:
            return 0

    @staticmethod
    def scratch(directory: Path) -> Path:
        return directory / _VOLUME_NAME / "scratch"

    @staticmethod
    def is_mounted(directory: Path) -> bool:
        return _is_mount_point(directory / _VOLUME_NAME)

    def attach(self, directory: Path, size_bytes: int) -> Path:
        """Make the filesystem at first use, mount it unless it is; return the home inside.

        A home still mounted by a server that was killed is used as it is. The home directory
        is created here, owned by root: the caller hands it to the sandbox's uid.
        """
        try:
            return self._attach(directory, size_bytes)
        except (VolumeError, OSError):
            # The next server probes again rather than trust a success this failure belies.
            if self.probe_record is not None:
                with contextlib.suppress(OSError):
                    self.probe_record.unlink(missing_ok=True)
            raise

    def _attach(self, directory: Path, size_bytes: int) -> Path:
        volume = directory / _VOLUME_NAME
        image = directory / _IMAGE_NAME
        if not _is_mount_point(volume):
            if not image.exists():
                self._make_image(image, size_bytes)
            else:
                # An image just made is backed by no loop device yet: only an older one may
                # still be held by the namespaces of its last run (a look at every device).
                _wait_detached(image)
            volume.mkdir(mode=0o711, exist_ok=True)
            try:
                _mount_on_loop_device(image, volume)
            except OSError as error:
                # An old kernel without LOOP_CONFIGURE, or a device race lost too often.
                logger.debug("mounting %s directly failed (%s): using mount(8)", image, error)
                argv = [self.mount, "-t", "ext4", "-o", _MOUNT_OPTIONS, str(image), str(volume)]
                self._run(argv, "mount")
            # Changed only where a copied template did not do it already (see _lay_out_template).
            if volume.stat().st_mode & 0o7777 != 0o711:
                volume.chmod(0o711)
            with contextlib.suppress(FileNotFoundError):
                (volume / "lost+found").rmdir()
        home = volume / "home"
        home.mkdir(mode=0o755, exist_ok=True)
        return home

    @staticmethod
    def detach(directory: Path) -> None:
        """Unmount the home filesystem and wait until its loop device is released.

        Needs no tool: a server that cannot make volumes any more still unmounts old ones.
        """
        volume = directory / _VOLUME_NAME
        # Its device, known while it is mounted: afterwards only that one device is watched,
        # not every loop device of the host.
        device = _loop_device_mounted_on(volume)
        for _attempt in range(_UNMOUNT_ATTEMPTS):
            if not _is_mount_point(volume):
                break
            # The system call, not umount(8): a fork and exec less on every stop and delete.
            if LIBC.umount2(os.fsencode(volume), 0) == 0:
                continue
            failure = ctypes.get_errno()
            if failure == errno.EINVAL:
                break  # not (or no longer) a mount point
            if failure != errno.EBUSY:
                raise VolumeError(f"cannot unmount {volume}: {os.strerror(failure)}")
            time.sleep(0.02)  # a process of the sandbox is still exiting
        if _is_mount_point(volume):
            raise VolumeError(f"cannot unmount {volume}: it stays busy")
        _wait_detached(directory / _IMAGE_NAME, None if device is None else [device])

    def _make_image(self, image: Path, size_bytes: int) -> None:
        """A sparse image made under a temporary name, so a half-made one is never mounted.

        Formatted once per size, then copied: a fresh filesystem is a few hundred KiB of
        metadata in a sparse file, and copying those costs a fraction of running mkfs (a fork,
        an exec and ~10 ms of CPU, far more on a busy host) for every home.
        """
        partial = image.with_name(image.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        template = self._template(size_bytes)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(fd, size_bytes)
            if template is not None:
                _copy_data_extents(template, fd)
        finally:
            os.close(fd)
        if template is None:
            self._format(partial)
        partial.replace(image)

    def _format(self, image: Path) -> None:
        self._run([self.mkfs, *_MKFS_OPTIONS, "-E", _MKFS_EXTENDED, str(image)], "mkfs.ext4")

    def _template(self, size_bytes: int) -> Path | None:
        """The formatted image of ``size_bytes`` to copy (made at its first use), if any."""
        if self.templates is None:
            return None
        template = self.templates / f"{size_bytes}.img"
        with self._template_lock:
            if not template.exists():
                partial = template.with_name(template.name + ".tmp")
                with open(partial, "wb") as handle:
                    handle.truncate(size_bytes)
                self._format(partial)
                self._lay_out_template(partial)
                partial.replace(template)
        return template

    def _lay_out_template(self, image: Path) -> None:
        """Give the template, unmounted, the root every home needs (mode 0711, a ``home``
        directory, no ``lost+found``), so that a home copied from it needs no metadata change
        after its mount, where each costs milliseconds (a template mounted once to do it would
        make every copy's mount slower). Without debugfs, each home is laid out at its mount."""
        debugfs = _find_tool("debugfs")
        if debugfs is None:
            return
        script = "rmdir lost+found\nmkdir home\nsif / mode 040711\nsif home mode 040755\n"
        try:
            subprocess.run(
                [debugfs, "-w", "-f", "-", str(image)],
                input=script,
                capture_output=True,
                text=True,
                timeout=_COMMAND_TIMEOUT_SECONDS,
                check=True,
            )
        except (OSError, subprocess.SubprocessError) as error:
            logger.debug("cannot lay out the home template %s with debugfs: %s", image, error)

    def _run(self, argv: list[str], what: str) -> None:
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=_COMMAND_TIMEOUT_SECONDS)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise VolumeError(f"{what} failed: {error}") from None
        if result.returncode != 0:
            raise VolumeError(f"{what} failed: {(result.stderr or result.stdout).strip()[-500:]}")


def _mount_on_loop_device(image: Path, volume: Path) -> None:
    """Bind ``image`` to a free loop device and mount it on ``volume``, by system calls.

    What ``mount -o loop`` does, without its fork and exec nor its look at every loop device of
    the host for one already backed by the image (hundreds of sysfs reads per mount on a busy
    host): the device is set to clear itself once unmounted, as mount(8) sets it.
    """
    control = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
    try:
        backing = os.open(image, os.O_RDWR | os.O_CLOEXEC)
        try:
            device, device_fd = _bind_free_loop_device(control, backing, image)
        finally:
            os.close(backing)
    finally:
        os.close(control)
    try:
        flags = _MS_NOSUID | _MS_NODEV | _MS_NOATIME
        if LIBC.mount(device.encode(), os.fsencode(volume), b"ext4", flags, b"noinit_itable") != 0:
            failure = ctypes.get_errno()
            raise OSError(failure, f"cannot mount {image} on {volume}: {os.strerror(failure)}")
    except BaseException:
        # Unmounted, the device keeps its image until told: release it for the next one.
        with contextlib.suppress(OSError):
            fcntl.ioctl(device_fd, _LOOP_CLR_FD)
        raise
    finally:
        os.close(device_fd)


def _bind_free_loop_device(control: int, backing: int, image: Path) -> tuple[str, int]:
    """The path and an open fd of a loop device now backed by ``backing`` (autoclear)."""
    config = bytearray(_LOOP_CONFIG_SIZE)
    struct.pack_into("=I", config, 0, backing)
    # loop_config.info.lo_flags, and lo_file_name (what losetup shows).
    struct.pack_into("=I", config, _LOOP_CONFIG_FLAGS_OFFSET, _LO_FLAGS_AUTOCLEAR)
    name = os.fsencode(image)[-63:]
    config[_LOOP_CONFIG_NAME_OFFSET : _LOOP_CONFIG_NAME_OFFSET + len(name)] = name
    for _attempt in range(_LOOP_BIND_ATTEMPTS):
        number = fcntl.ioctl(control, _LOOP_CTL_GET_FREE)
        device = f"/dev/loop{number}"
        try:
            device_fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # its node is not made yet (udev): ask again
        try:
            fcntl.ioctl(device_fd, _LOOP_CONFIGURE, bytes(config))
        except OSError as error:
            os.close(device_fd)
            if error.errno == errno.EBUSY:
                continue  # another mount took the same free device first
            raise
        return device, device_fd
    raise OSError(errno.EBUSY, f"no free loop device for {image} after {_LOOP_BIND_ATTEMPTS} attempts")


def _copy_data_extents(source: Path, target_fd: int) -> None:
    """Copy the parts of a sparse file that hold data into ``target_fd`` at the same offsets
    (the target is already of the source's size, a hole throughout)."""
    fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    try:
        offset = 0
        while True:
            try:
                start = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError as error:
                if error.errno == errno.ENXIO:
                    return  # only a hole left
                raise
            end = os.lseek(fd, start, os.SEEK_HOLE)
            while start < end:
                copied = os.copy_file_range(fd, target_fd, end - start, start, start)
                if copied == 0:
                    raise OSError(errno.EIO, f"{source} ended early while copied")
                start += copied
            offset = end
    finally:
        os.close(fd)


def _wait_detached(image: Path, devices: list[Path] | None = None) -> None:
    """The kernel releases a loop device once the last namespace holding the mount is gone.

    ``devices``: the sysfs directories of the devices that may hold ``image``; by default every
    loop device is looked at once, and only those holding it are watched after (a host may have
    hundreds). The wait backs off from 1 ms to 50 ms.
    """
    wanted = str(image.absolute())
    holding = [
        device
        for device in (devices if devices is not None else [p.parent.parent for p in _backing_files()])
        if _backs(device, wanted)
    ]
    deadline = time.monotonic() + _DETACH_WAIT_SECONDS
    delay = 0.001
    while holding:
        if time.monotonic() >= deadline:
            raise VolumeError(f"{image} is still attached to {', '.join(d.name for d in holding)}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
        holding = [device for device in holding if _backs(device, wanted)]


def _loop_device_mounted_on(volume: Path) -> Path | None:
    """The sysfs directory of the loop device mounted on ``volume`` (found by its number)."""
    try:
        device = os.stat(volume).st_dev
    except OSError:
        return None
    if os.major(device) != _LOOP_MAJOR:
        return None
    return Path(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}")


def _backs(device: Path, image: str) -> bool:
    """Whether the loop device's backing file is ``image`` (a released device has none)."""
    try:
        name = (device / "loop" / "backing_file").read_text().strip()
    except OSError:
        return False
    return name.removesuffix(" (deleted)") == image


def _backing_files() -> list[Path]:
    return list(Path("/sys/block").glob("loop*/loop/backing_file"))


def loop_devices_of(directory: Path) -> list[str]:
    """Loop devices whose backing file is the home image in ``directory`` (for leak checks)."""
    wanted = str((directory / _IMAGE_NAME).absolute())
    return [p.parent.parent.name for p in _backing_files() if _backs(p.parent.parent, wanted)]


def _is_mount_point(path: Path) -> bool:
    try:
        return os.path.ismount(path)
    except OSError:
        return False


def _probe_record(records: Path | None, volumes: LoopVolumes, work_dir: Path) -> Path | None:
    """The file recording a successful probe, named after everything its answer depends on."""
    if records is None:
        return None
    try:
        mkfs = os.stat(volumes.mkfs)
        facts = [
            BOOT_ID.read_text().strip(),
            os.geteuid(),
            volumes.mkfs,
            mkfs.st_size,
            mkfs.st_mtime_ns,
            volumes.mount,
            os.stat(work_dir).st_dev,
            _MKFS_OPTIONS,
            _MKFS_EXTENDED,
            _MOUNT_OPTIONS,
            _PROBE_IMAGE_BYTES,
        ]
    except OSError:
        return None  # no boot id to tie the answer to: probe every time
    key = hashlib.sha256(json.dumps(facts).encode()).hexdigest()[:32]
    return records / f"loop-probe-{key}"


def _probe_recorded(record: Path) -> bool:
    """Only a file of this user's counts: no other user may vouch for root's mounts."""
    try:
        status = record.lstat()
    except OSError:
        return False
    return stat.S_ISREG(status.st_mode) and status.st_uid == os.geteuid()


def _record_probe(record: Path) -> None:
    """Renamed into place whole, so servers starting at once never read a half-written one."""
    partial = record.with_name(f"{record.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        record.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        partial.write_text("a test filesystem was mounted and unmounted\n")
        partial.replace(record)
    except OSError as error:
        logger.debug("cannot record the loop probe in %s: %s", record, error)
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)


def _find_tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")


def volumes_for_existing_homes(root: Path) -> tuple[LoopVolumes | None, int, str | None]:
    """For a server whose new homes are accounted: volumes to mount the homes earlier sandboxes
    made in ``loop`` mode (a probe that failed once under load, or a changed configuration,
    must not strand them), how many there are, and why they cannot be mounted if so."""
    kept = LoopVolumes.homes_under(root)
    if kept == 0:
        return None, 0, None
    try:
        return LoopVolumes.locate(), kept, None
    except DiskQuotaUnavailableError as error:
        return None, kept, str(error)


def resolve_disk_mode(mode: DiskMode, work_dir: Path) -> tuple[LoopVolumes | None, str | None]:
    """Volumes for ``loop`` (or ``auto`` where possible), with why ``auto`` fell back to accounting.

    ``loop`` on a host that cannot mount raises :class:`DiskQuotaUnavailableError`.
    """
    if mode == "accounting":
        return None, "chosen by the server's configuration"
    try:
        return LoopVolumes.probe(work_dir), None
    except DiskQuotaUnavailableError as error:
        if mode == "loop":
            raise
        return None, str(error)
