"""A devpts instance per sandbox with a limit of its own (a root server only)."""

from __future__ import annotations

import contextlib
import ctypes
import os
from pathlib import Path

from daytonaflow.localserver.disk import LIBC

_MS_NOSUID = 2
_MS_NOEXEC = 8
_MNT_DETACH = 2


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
