"""Which host uid each sandbox runs as: one per sandbox as root, claimed host-wide."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from daytonaflow.localserver.errors import (
    SandboxUidInUseError,
    SandboxUidRefusedError,
    SandboxUidsExhaustedError,
    UnsafeSandboxUidsError,
)

SANDBOX_UID = 1000
"""The uid (and gid) sandbox processes have inside their user namespace (user ``daytona``)."""

NOBODY = 65534
"""The host uid all sandboxes share when the server runs as root without a uid range."""

DEFAULT_SANDBOX_UIDS = range(1_900_000_000, 1_900_000_000 + 65536)
"""Host uids (and gids) handed out one per sandbox when the server runs as root.

The quotas the kernel keeps per uid (inotify instances and watches, POSIX message queue bytes,
pending signals, fds in flight over unix sockets, RLIMIT_NPROC) then hold per sandbox. The range
sits in the 1879048192-2147483647 block that systemd leaves unassigned, above its container
ranges and below 2^31; a uid that the host's passwd or group database names is skipped.
Override with ``LocalServer(sandbox_uids=range(...))``."""

DEFAULT_UID_CLAIMS = Path("/run/daytonaflow/uids")
"""Where root servers claim sandbox uids host-wide: one file per uid, ``flock``ed by its holder."""

_UID_LIMIT = 1 << 31
# nobody, and the 16-bit (uid_t)-1: the kernel's overflow uid and the value old interfaces read as
# "no uid". A sandbox running as either shares it with whatever else does.
_SPECIAL_UIDS = (65534, 65535)


def check_uid_range(pool: range) -> None:
    """Refuse a range with a uid no sandbox may run as: 0 is root; 2^31 and above are read as
    negative ids by many interfaces (``(uid_t)-1`` means "leave the uid unchanged", so a sandbox
    would keep the server's root); 65534/65535 are ``nobody`` and the 16-bit ``(uid_t)-1``."""
    if pool.step != 1 or not pool:
        raise UnsafeSandboxUidsError(f"sandbox uids {pool} are not a non-empty run of consecutive uids")
    last = pool.stop - 1
    if pool.start < 1 or last >= _UID_LIMIT:
        raise UnsafeSandboxUidsError(
            f"sandbox uids {pool.start}-{last} must lie within 1-{_UID_LIMIT - 1} (not root, below 2^31)"
        )
    special = [uid for uid in _SPECIAL_UIDS if uid in pool]
    if special:
        raise UnsafeSandboxUidsError(
            f"sandbox uids {pool.start}-{last} include {', '.join(map(str, special))} "
            "(nobody / the 16-bit (uid_t)-1): choose a range without them"
        )


class _UidClaims:
    """Host-wide claims of sandbox uids, so that two root servers never run sandboxes as one uid.

    One file per uid in a directory only root may write; the server running (or keeping) a
    sandbox as that uid holds an exclusive ``flock`` on it: one fd per sandbox. The kernel drops a
    flock when its holder dies, so a killed server frees its uids without any clean-up. The files
    are never unlinked: a lock on an unlinked file would not exclude one on its successor.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.lstat()
        if info.st_uid != 0 or info.st_mode & 0o077 or not directory.is_dir() or directory.is_symlink():
            raise OSError(errno.EPERM, f"{directory} is not a directory of root's alone (mode 0700)")
        self.directory = directory
        self._held: dict[int, int] = {}

    def take(self, uid: int) -> bool:
        """Claim ``uid``; False when another server holds it."""
        if uid in self._held:
            return True
        path = self.directory / str(uid)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._held[uid] = fd
        return True

    def drop(self, uid: int) -> None:
        fd = self._held.pop(uid, None)
        if fd is not None:
            os.close(fd)  # closing the only fd of the open file releases the flock

    def close(self) -> None:
        for uid in list(self._held):
            self.drop(uid)


class SandboxUids:
    """Which host uid each sandbox runs as and owns its files as.

    As root with a ``pool``, every sandbox gets a uid of its own (kept in its record, so a
    restarted server gives it back the same one), claimed host-wide in ``claims`` so that another
    root server on the host never hands it out too; otherwise every sandbox shares one uid,
    ``nobody`` for root and the server's own uid for a normal user.
    """

    def __init__(self, pool: range | None, claims: Path | None = DEFAULT_UID_CLAIMS) -> None:
        """``UnsafeSandboxUidsError`` for a pool with a uid no sandbox may have (see
        :func:`check_uid_range`). ``claims=None``: no host-wide claims (this server's own only)."""
        if pool is not None:
            check_uid_range(pool)
        self.pool = pool if pool and os.geteuid() == 0 else None
        self.shared = host_uid_for_sandboxes()
        self._by_sandbox: dict[str, int] = {}
        self._claims: _UidClaims | None = None
        self.claims_unavailable: str | None = None if claims is not None else "not requested"
        if self.pool is not None and claims is not None:
            try:
                self._claims = _UidClaims(claims)
            except OSError as error:
                self.claims_unavailable = f"cannot use {claims}: {error.strerror or error}"

    @property
    def per_sandbox(self) -> bool:
        return self.pool is not None

    @property
    def representative(self) -> int:
        """A uid sandboxes will run as, for the start-up checks (bwrap works, paths traversable)."""
        return self.pool.start if self.pool is not None else self.shared

    def assign(self, sandbox_id: str) -> int:
        """A uid for a new sandbox: the lowest one of the pool free here and on the whole host
        (claimed for it until :meth:`release`), or the shared uid."""
        if self.pool is None:
            uid = self.shared
        else:
            taken = set(self._by_sandbox.values())
            uid = next(
                (u for u in self.pool if u not in taken and not _named_on_host(u) and self._claim(u)), -1
            )
            if uid < 0:
                raise SandboxUidsExhaustedError(
                    f"no free sandbox uid left in {self.pool.start}-{self.pool.stop - 1}; "
                    "delete sandboxes or configure a larger range"
                )
        self._by_sandbox[sandbox_id] = uid
        return uid

    def adopt(self, sandbox_id: str, uid: object) -> None:
        """A sandbox that already owns files as ``uid`` (left by an earlier server).

        ``SandboxUidRefusedError`` when the sandbox must not run as it: not a uid, root, a uid
        that is neither of the pool nor the shared one, or another sandbox's. A uid another server
        on the host holds is kept unclaimed; :meth:`claim` refuses to start the sandbox with it.
        """
        if isinstance(uid, bool) or not isinstance(uid, int):
            raise SandboxUidRefusedError(f"its host uid {uid!r} is not a uid")
        if uid == 0:
            raise SandboxUidRefusedError("its host uid is 0 (root): a sandbox never runs as root")
        if uid != self.shared and (self.pool is None or uid not in self.pool):
            allowed = f"this server's range {self.pool.start}-{self.pool.stop - 1} nor " if self.pool else ""
            raise SandboxUidRefusedError(
                f"its host uid {uid} is neither {allowed}the shared sandbox uid {self.shared}"
            )
        if self.pool is not None and uid in self.pool:
            holder = next((s for s, u in self._by_sandbox.items() if u == uid and s != sandbox_id), None)
            if holder is not None:
                raise SandboxUidRefusedError(f"its host uid {uid} is already sandbox {holder}'s")
            self._claim(uid)
        self._by_sandbox[sandbox_id] = uid

    def claim(self, sandbox_id: str) -> int:
        """The uid to start a sandbox as, claimed host-wide: ``SandboxUidInUseError`` when another
        server holds it (a sandbox adopted while that server ran), ``SandboxUidRefusedError`` when
        the sandbox has no uid it may run as."""
        uid = self._by_sandbox.get(sandbox_id)
        if uid is None:
            raise SandboxUidRefusedError(f"sandbox {sandbox_id} has no host uid it may run as")
        if self.pool is not None and uid in self.pool and not self._claim(uid):
            assert self._claims is not None  # _claim only refuses with claims in use
            raise SandboxUidInUseError(
                f"Sandbox {sandbox_id} cannot start: its host uid {uid} is in use by another daytonaflow "
                f"server on this host (claimed in {self._claims.directory}); stop that server or delete "
                "one of the two sandboxes"
            )
        return uid

    def release(self, sandbox_id: str) -> None:
        uid = self._by_sandbox.pop(sandbox_id, None)
        if uid is not None and self._claims is not None and uid not in self._by_sandbox.values():
            self._claims.drop(uid)

    def of(self, sandbox_id: str) -> int:
        """The uid of a sandbox that was assigned or adopted one (``KeyError`` otherwise: guessing
        would run it as a uid that does not own its files)."""
        return self._by_sandbox[sandbox_id]

    def describe(self) -> str:
        if self.pool is None:
            return f"all sandboxes share host uid {self.shared}"
        own = f"one host uid per sandbox, from {self.pool.start}-{self.pool.stop - 1}"
        if self._claims is not None:
            return f"{own}, claimed host-wide in {self._claims.directory} (other root servers skip them)"
        return (
            f"{own}, known to this server only (no host-wide claims: {self.claims_unavailable}): "
            "other root servers on this host must be given disjoint ranges"
        )

    def close(self) -> None:
        """Give up every claim (the server stops; its sandboxes keep their uids in their records)."""
        if self._claims is not None:
            self._claims.close()

    def _claim(self, uid: int) -> bool:
        return self._claims is None or self._claims.take(uid)


def _named_on_host(uid: int) -> bool:
    """Whether the host's user or group database already names ``uid``: never hand that out."""
    import grp
    import pwd

    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
            return True
        except KeyError:
            continue
    return False


def host_uid_for_sandboxes() -> int:
    """Root must not be root inside: a sandbox then maps to ``nobody`` on the host."""
    return NOBODY if os.geteuid() == 0 else os.geteuid()
