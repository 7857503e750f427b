"""``git clone`` on the host into a sandbox's home: sandboxes have no network of their own.

The clone lands in a scratch directory the sandbox cannot see, is handed to the sandbox's host
uid there, and only then is moved into place through directory fds opened without following
symlinks, so a sandbox racing symlinks into its home cannot redirect the write onto the host.
Local paths are cloned with ``--no-local``: git would otherwise hard-link the source's object
files, and handing the clone to the sandbox would then hand it the host repository's files too.
Credentials, options and scrubbing are :mod:`._githost`'s, shared with push and pull.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from daytonaflow.localserver import _githost
from daytonaflow.localserver._githost import install_askpass
from daytonaflow.localserver.errors import GitCloneError

__all__ = ["clone", "install_askpass", "relative_destination"]

_HOME_IN_SANDBOX = "/home/daytona"
_CLONE_TIMEOUT_SECONDS = 600


def relative_destination(path: str) -> list[str]:
    """The clone target as components below the sandbox home; ``..`` and escapes are refused."""
    if not path:
        raise GitCloneError(400, "path is required")
    if path.startswith("/"):
        if path != _HOME_IN_SANDBOX and not path.startswith(_HOME_IN_SANDBOX + "/"):
            raise GitCloneError(400, f"path {path!r} must be inside {_HOME_IN_SANDBOX}")
        path = path[len(_HOME_IN_SANDBOX) :]
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts) or "\0" in path:
        raise GitCloneError(400, f"path {path!r} must not contain '..'")
    if not parts:
        raise GitCloneError(400, "path must name a directory inside the home, not the home itself")
    return parts


async def clone(
    *,
    url: str,
    home: Path,
    scratch: Path,
    destination: list[str],
    askpass: Path,
    host_uid: int,
    branch: str | None = None,
    commit: str | None = None,
    username: str | None = None,
    password: str | None = None,
) -> None:
    if not url or url.startswith("-"):
        raise GitCloneError(400, "url is required and must not start with '-'")
    for name, value in (("branch", branch), ("commit", commit)):
        if value is not None and value.startswith("-"):
            raise GitCloneError(400, f"{name} must not start with '-'")
    secrets = _githost.secrets_of(username, password)
    work = Path(tempfile.mkdtemp(prefix="clone-", dir=scratch))
    target = work / "repo"
    env = _githost.hardened_env(work, askpass, username, password)
    args = ["clone", "--quiet", "--no-local"]
    if branch:
        args += ["--branch", branch]
    try:
        await _git([*args, "--", url, str(target)], env, secrets)
        if commit:
            await _git(["-C", str(target), "checkout", "--quiet", "--detach", commit, "--"], env, secrets)
        await asyncio.get_running_loop().run_in_executor(None, _give_to, target, host_uid)
        _move_into_home(target, home, destination)
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def _git(args: list[str], env: dict[str, str], secrets: list[str]) -> None:
    await _githost.run_git(
        args,
        env=env,
        secrets=secrets,
        operation="git clone",
        timeout=_CLONE_TIMEOUT_SECONDS,
        error=GitCloneError,
        code="GIT_CLONE_FAILED",
    )


def _give_to(tree: Path, uid: int) -> None:
    if uid == os.geteuid():
        return
    for root, dirs, files in os.walk(tree):
        for name in files:
            path = os.path.join(root, name)
            # A second link means an inode shared with a file outside the clone: giving it away
            # would give the sandbox that file too.
            if os.lstat(path).st_nlink > 1:
                raise GitCloneError(500, f"refusing to hand over {name!r}: it is hard-linked elsewhere")
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), uid, uid)
    os.lchown(tree, uid, uid)


def _move_into_home(source: Path, home: Path, destination: list[str]) -> None:
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    parent = os.open(home, flags)
    try:
        owner = os.fstat(parent)
        for part in destination[:-1]:
            created = False
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=parent)
                created = True
            try:
                child = os.open(part, flags, dir_fd=parent)
            except OSError:
                raise GitCloneError(400, f"{part!r} in the clone path is not a directory") from None
            os.close(parent)
            parent = child
            if created:
                # Through the fd: the sandbox may have swapped the new name for a symlink by now.
                with contextlib.suppress(OSError):
                    os.fchown(parent, owner.st_uid, owner.st_gid)
        leaf = destination[-1]
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(leaf, dir_fd=parent)  # an empty directory may be replaced, like git allows
        try:
            os.rename(source, leaf, dst_dir_fd=parent)
        except OSError as error:
            raise GitCloneError(409, f"cannot clone into {'/'.join(destination)}: {error.strerror}") from None
    finally:
        os.close(parent)
