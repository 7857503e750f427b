"""The sandboxes' synthetic /etc: a few host entries copied, the accounts written for the sandbox."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import stat
from pathlib import Path
from typing import Any

from daytonaflow.localserver._uids import SANDBOX_UID

# Host /etc entries a normal program needs (dynamic loader, TLS roots, locale, alternatives for
# /usr/bin symlinks); everything else of /etc, notably shadow files and host credentials, stays out.
_ETC_ENTRIES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "localtime",
    "timezone",
    "nsswitch.conf",
    "protocols",
    "services",
    "mime.types",
    "os-release",
    "debian_version",
    "bash.bashrc",
    "profile",
    "inputrc",
    "python3",
    "python3.11",
    "python3.12",
    "python3.13",
)


def write_synthetic_etc(directory: Path, hostname: str = "sandbox", source: Path = Path("/etc")) -> bool:
    """The sandboxes' /etc: a few host entries copied, passwd/group/hosts written for the sandbox.

    One directory bound once costs less at every start than ~25 single-file binds. Copies are
    taken at server start; private material (``ssl/private``, shadow files) never enters.
    Copying ~700 files costs 0.2-0.6 s, so the copy of an earlier start is kept while neither
    what it was copied from (each path's type, mode, size, inode, mtime and ctime) nor the copy
    itself changed; else it is made again. Returns whether it was made.
    """
    # Beside the directory, not in it: the sandboxes see all of it. The server's lock on its
    # state directory keeps two servers from refreshing one copy at once.
    record = directory.with_name(directory.name + ".signature")
    wanted = _signature(source, _ETC_ENTRIES, hostname)
    if directory.is_dir() and _recorded(record) == [wanted, _signature(directory, _COPY_VIEW, "")]:
        return False
    record.unlink(missing_ok=True)  # no record may vouch for a directory being replaced
    _remove_leftovers(directory)
    # Made aside and renamed into place whole: a sandbox never binds a half-made /etc.
    partial = directory.with_name(f"{directory.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        _fill(partial, hostname, source)
        if directory.exists():
            aside = partial.with_name(partial.name + ".old")
            directory.rename(aside)
            partial.rename(directory)
            shutil.rmtree(aside)
        else:
            partial.rename(directory)
    finally:
        if partial.exists():
            shutil.rmtree(partial)
    # Taken once in place: a rename changes the renamed directory's ctime.
    _write_record(record, [wanted, _signature(directory, _COPY_VIEW, "")])
    return True


def _remove_leftovers(directory: Path) -> None:
    """Copies a killed server left half-made or half-replaced (no other server refreshes them:
    the state directory's lock)."""
    for leftover in directory.parent.glob(f"{directory.name}.*.tmp*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _fill(directory: Path, hostname: str, source: Path) -> None:
    directory.mkdir(parents=True)
    directory.chmod(0o755)
    for entry in _ETC_ENTRIES:
        host = source / entry
        target = directory / entry
        try:
            if host.is_symlink():
                target.symlink_to(os.readlink(host))
            elif host.is_dir():
                shutil.copytree(host, target, symlinks=True, ignore=shutil.ignore_patterns(_LEFT_OUT))
            elif host.is_file():
                shutil.copy2(host, target)
        except OSError:
            continue  # unreadable host entry: the sandbox simply lacks it
    files = {
        "passwd": (
            "root:x:0:0:root:/root:/bin/sh\n"
            f"daytona:x:{SANDBOX_UID}:{SANDBOX_UID}:daytona:/home/daytona:/bin/bash\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        ),
        "group": f"root:x:0:\ndaytona:x:{SANDBOX_UID}:\nnogroup:x:65534:\n",
        "hosts": f"127.0.0.1 localhost {hostname}\n::1 localhost\n",
        "hostname": f"{hostname}\n",
        "resolv.conf": "# no network in daytonaflow sandboxes\n",
    }
    for name, content in files.items():
        path = directory / name
        path.write_text(content)
        path.chmod(0o644)


_LEFT_OUT = "private"
_COPY_VIEW: tuple[str, ...] = ()
"""All of a copy, its own root and the written files too."""


def _signature(root: Path, entries: tuple[str, ...], hostname: str) -> str:
    """A hash of what a copy of ``entries`` of ``root`` (all of it: ``()``) would read, taken as
    the copy walks (``private`` directories left out alike).

    One ``lstat`` per entry, directory and file, none per symlink inside a directory (most of
    them: ``ssl/certs``, ``alternatives``): a symlink cannot change in place, so replacing,
    adding or removing one changes its directory's ctime. Few system calls matter: each lets
    the command's own thread take the interpreter lock, and waiting to have it back costs more
    than the call.
    """
    digest = hashlib.sha256(json.dumps([SANDBOX_UID, hostname]).encode())
    for entry in entries or (".",):
        _walk_into(digest, root, entry)
    return digest.hexdigest()


def _walk_into(digest: Any, root: Path, relative: str) -> None:
    path = f"{root}/{relative}"
    try:
        status = os.lstat(path)
    except OSError:
        digest.update(f"{relative}\0missing\n".encode(errors="surrogateescape"))
        return
    facts = [status.st_mode, status.st_uid, status.st_gid, status.st_size, status.st_ino]
    facts += [status.st_mtime_ns, status.st_ctime_ns]
    digest.update(f"{relative}\0{facts}\n".encode(errors="surrogateescape"))
    if not stat.S_ISDIR(status.st_mode):
        return
    try:
        with os.scandir(path) as listing:
            children = sorted((child.name, child.is_symlink()) for child in listing)
    except OSError:
        digest.update(b"unlistable\n")
        return
    for name, is_symlink in children:
        if name == _LEFT_OUT:
            continue
        if is_symlink:
            digest.update(f"{relative}/{name}\0symlink\n".encode(errors="surrogateescape"))
        else:
            _walk_into(digest, root, f"{relative}/{name}")


def _recorded(record: Path) -> list[str] | None:
    try:
        value = json.loads(record.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, list) else None


def _write_record(record: Path, value: list[str]) -> None:
    partial = record.with_name(f"{record.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        partial.write_text(json.dumps(value))
        partial.replace(record)
    finally:
        partial.unlink(missing_ok=True)
