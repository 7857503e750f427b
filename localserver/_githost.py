"""Running ``git`` on the host for a sandbox: its network operations (clone, push, pull).

Only repositories the host created itself, in a scratch directory the sandbox cannot see, are
ever worked in, so no configuration a sandbox wrote is read. System and user configuration are
cut off (``GIT_CONFIG_NOSYSTEM``, ``HOME`` the scratch directory, whose ``.gitconfig`` the host
writes), only the http(s) and file transports are allowed, hooks are off and no credential
helper runs. Credentials travel only in the environment of the git process, answered by an
askpass helper that holds no secret itself; git's messages are scrubbed of them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from daytonaflow.localserver.errors import ApiError

_ASKPASS = """#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' "$DAYTONAFLOW_GIT_USERNAME" ;;
  *) printf '%s\\n' "$DAYTONAFLOW_GIT_PASSWORD" ;;
esac
"""
# Read by every git below: written by the host, so nothing in it is a sandbox's choice. Local
# transports drop ``-c`` options (GIT_CONFIG_PARAMETERS) before they start the other side, so
# what must reach ``git-upload-pack``/``git-receive-pack`` of a file remote lives here too.
_GLOBAL_CONFIG = """[core]
\thooksPath = /dev/null
\tfsmonitor = false
[credential]
\thelper =
[protocol]
\tallow = never
[protocol "http"]
\tallow = always
[protocol "https"]
\tallow = always
[protocol "file"]
\tallow = always
"""
HARDENED_ARGS = (
    "-c",
    "protocol.ext.allow=never",
    "-c",
    "credential.helper=",
    "-c",
    "core.hooksPath=/dev/null",
)
"""Options every host-side git gets on its command line (the config file above repeats them)."""

OUTPUT_LIMIT = 2000
"""The characters of git's output an error message keeps (its end: git says why last)."""


def install_askpass(directory: Path) -> Path:
    path = directory / "git-askpass.sh"
    path.write_text(_ASKPASS)
    path.chmod(0o700)
    return path


def write_trusted_config(home: Path, safe_directories: Sequence[str] = ()) -> None:
    """The only user configuration host-side git reads, in its ``HOME``.

    ``safe_directories`` are local remotes git must enter though another uid owns them (a
    file remote the API caller named, reached with the sandbox's uid).
    """
    text = _GLOBAL_CONFIG
    if safe_directories:
        text += "[safe]\n" + "".join(f"\tdirectory = {path}\n" for path in safe_directories)
    (home / ".gitconfig").write_text(text)


def hardened_env(home: Path, askpass: Path, username: str | None, password: str | None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        # A partial clone's missing objects are never fetched from wherever its config says.
        "GIT_NO_LAZY_FETCH": "1",
        "GIT_ASKPASS": str(askpass),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    if username:
        env["DAYTONAFLOW_GIT_USERNAME"] = username
    if password:
        env["DAYTONAFLOW_GIT_PASSWORD"] = password
    return env


def secrets_of(username: str | None, password: str | None) -> list[str]:
    """What a message must not show: each credential as given and as a URL would quote it."""
    found: list[str] = []
    for secret in (username, password):
        if secret:
            found += [secret, quote(secret, safe="")]
    # The longest first: a secret containing another must not be left half-shown.
    return sorted(set(found), key=len, reverse=True)


def scrub(message: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        message = message.replace(secret, "***")
    return message


async def run_git(
    args: Sequence[str],
    *,
    env: dict[str, str],
    secrets: Sequence[str],
    operation: str,
    timeout: float,
    error: type[ApiError],
    code: str,
    uid: int | None = None,
) -> str:
    """``git args`` on the host; its output, or ``error`` with git's scrubbed message.

    ``uid``: run as that host uid (and its gid) instead of the server's, so that the host's
    file permissions decide what a file remote lets it read or write.
    """
    as_other = uid is not None and uid != os.geteuid()
    process = await asyncio.create_subprocess_exec(
        "git",
        *HARDENED_ARGS,
        *args,
        env=env,
        cwd=env["HOME"],
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        user=uid if as_other else None,
        group=uid if as_other else None,
        extra_groups=[] if as_other else None,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise error(504, f"{operation} timed out after {timeout:g}s", code=code) from None
    text = output.decode(errors="replace").strip()
    if process.returncode != 0:
        message = scrub(text, secrets)[-OUTPUT_LIMIT:]
        raise error(400, f"{operation} failed: {message}", code=code)
    return text
