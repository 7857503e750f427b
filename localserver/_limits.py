"""What one sandbox may use: its limits, and its share of the host's file table."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

MIB = 1 << 20
GIB = 1 << 30

FILE_TABLE_SHARE = 0.25
"""The fraction of the host's file table (``fs.file-max``) one sandbox may fill at most."""

FILE_TABLE_PRESSURE = 0.5
"""Past this fraction of ``fs.file-max`` in use on the host, the monitor kills the sandboxes holding
the most files until the table is below it again, whatever each one's share."""

_MIN_OPEN_FILES = 64


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
