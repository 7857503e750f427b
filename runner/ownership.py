"""Which process owns a run: a dead owner's unfinished runs may be resumed by another process."""

from __future__ import annotations

import os
import socket


def current_owner() -> str:
    """``host:pid:start`` of this process; the start time tells a live owner from a reused pid."""
    return _owner_of(os.getpid()) or f"{socket.gethostname()}:{os.getpid()}:0"


def owner_alive(owner: str | None) -> bool:
    """Whether the process named by ``owner`` still runs (an owner on another host counts as alive)."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text, _, _ = rest.partition(":")
    if host != socket.gethostname():
        return True
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    return _owner_of(pid) == owner


def _owner_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        if pid == os.getpid():
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return f"{socket.gethostname()}:{pid}:0"
    # Field 22 of /proc/PID/stat (index 19 after the command name) is the start time in clock ticks.
    if fields[0] == "Z":
        return None
    return f"{socket.gethostname()}:{pid}:{fields[19]}"
