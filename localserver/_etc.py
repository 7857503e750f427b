"""The sandboxes' synthetic /etc: a few host entries copied, the accounts written for the sandbox."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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


def write_synthetic_etc(directory: Path, hostname: str = "sandbox") -> None:
    """The sandboxes' /etc: a few host entries copied, passwd/group/hosts written for the sandbox.

    One directory bound once costs less at every start than ~25 single-file binds. Copies are
    taken at server start; private material (``ssl/private``, shadow files) never enters.
    """
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    directory.chmod(0o755)
    for entry in _ETC_ENTRIES:
        host = Path("/etc") / entry
        target = directory / entry
        try:
            if host.is_symlink():
                target.symlink_to(os.readlink(host))
            elif host.is_dir():
                shutil.copytree(host, target, symlinks=True, ignore=shutil.ignore_patterns("private"))
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
