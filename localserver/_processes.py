"""A sandbox's processes seen from the host: the files they hold, and killing them without the agent."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from daytonaflow.localserver.disk import pids_by_pid_namespace
from daytonaflow.localserver.errors import (
    SandboxKillError,
)

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
    """Host pids of the live processes of a pid namespace (see :func:`_is_live`)."""
    listed = processes if processes is not None else pids_by_pid_namespace()
    return [pid for pid in listed.get(namespace, []) if _is_live(pid)]


def _is_live(pid: int) -> bool:
    """A thread of the process can still run: not a zombie, and not already exiting (a killed
    process with many mappings takes a while to tear them down). The leader alone does not say:
    a leader that called SYS_exit shows as a zombie while its other threads run on."""
    if _task_live(f"/proc/{pid}/stat"):
        return True
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    return any(_task_live(f"/proc/{pid}/task/{tid}/stat") for tid in threads if tid != str(pid))


def _task_live(stat_path: str) -> bool:
    state, flags = _task_state(stat_path)
    return state not in (b"Z", b"X", b"") and not flags & _PF_EXITING


def _task_state(stat_path: str) -> tuple[bytes, int]:
    """The state letter and flags of a task (``b""`` when it is gone)."""
    try:
        fields = Path(stat_path).read_bytes().rsplit(b")", 1)[1].split()
        return fields[0], int(fields[6])
    except (OSError, IndexError, ValueError):
        return b"", 0


_PF_EXITING = 0x4


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


_FREEZE_SECONDS = 5.0


@contextlib.contextmanager
def frozen_sandbox(agent_pid: int, *, parent_pid: int | None = None) -> Iterator[None]:
    """Every process of the agent's pid namespace, the agent included, stopped (SIGSTOP) while
    the block runs, then continued: what a snapshot of the home copies is then of one instant.

    A process forked while the first ones are being stopped shows up in the next pass; once a pass
    finds nothing new and every thread of every one is stopped (a zombie leader's threads too),
    nothing in the namespace can run or fork. Each is signalled through a pidfd kept open until it
    is continued, so a pid reused meanwhile is never hit; one its user had stopped is left stopped.
    ``SandboxKillError`` when the namespace does not hold still in time: the snapshot is refused.
    """
    pidfd, namespace_fd, namespace = _open_sandbox_namespace(agent_pid, parent_pid)
    os.close(namespace_fd)
    _close(pidfd)
    frozen: dict[int, _Frozen] = {}
    try:
        deadline = time.monotonic() + _FREEZE_SECONDS
        while True:
            # Once each: a second look at a process just stopped would take it for the user's.
            listed = dict.fromkeys([agent_pid, *_processes_in(namespace)])
            fresh = [pid for pid in listed if pid not in frozen]
            for pid in fresh:
                frozen[pid] = _stop_if_in(pid, namespace)
            moving = [entry for pid, entry in frozen.items() if not _is_stopped(pid)]
            if not fresh and not moving:
                break
            for entry in moving:
                entry.stop()  # continued by another of the sandbox's processes before it stopped
            if time.monotonic() >= deadline:
                raise SandboxKillError("the sandbox's processes did not all stop in time")
            time.sleep(0.002)
        yield
    finally:
        for entry in frozen.values():
            entry.release()


@dataclass
class _Frozen:
    """One process of a frozen sandbox: its pidfd (``None``: gone) and whether we stopped it."""

    pidfd: int | None
    ours: bool = False

    def stop(self) -> None:
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGSTOP)
                self.ours = True

    def release(self) -> None:
        if self.pidfd is None:
            return
        if self.ours:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGCONT)
        os.close(self.pidfd)


def _stop_if_in(pid: int, namespace: str) -> _Frozen:
    try:
        entry = _Frozen(os.pidfd_open(pid))
    except OSError:
        return _Frozen(None)  # gone: nothing to stop
    try:
        if os.readlink(f"/proc/{pid}/ns/pid") == namespace and not _is_stopped(pid):
            entry.stop()
    except OSError:
        pass
    return entry


def _is_stopped(pid: int) -> bool:
    """Every thread stopped, or gone (which runs nothing either)."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True
    return all(
        _task_state(f"/proc/{pid}/task/{tid}/stat")[0] in (b"T", b"t", b"Z", b"X", b"") for tid in threads
    )
