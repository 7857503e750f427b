"""cgroup v1 groups per sandbox: its limits, and the kill of everything it runs."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from daytonaflow.localserver._limits import SandboxLimits

_CGROUP_ROOT = Path("/sys/fs/cgroup")
_CGROUP_CONTROLLERS = ("pids", "memory", "cpu")
_CFS_PERIOD_US = 100_000
_CGROUP_EMPTY_TIMEOUT_SECONDS = 5.0


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
