"""Daytona's toolbox git operations (``/git/...``) for a sandbox's repositories.

A sandbox controls its repositories' ``.git/config``, hooks and ``.gitattributes`` (fsmonitor,
filter drivers, ``core.sshCommand``, includes...): git reading them runs whatever they name. So
the host never runs git in a sandbox's repository:

- status, branches, history, add, commit and the branch operations run git *inside* the
  sandbox, as its user, through the agent's ``execute`` (argv shell-quoted, never interpolated);
- push and pull need the host's network: the host works in a bare repository it created itself
  in the sandbox's scratch directory (invisible inside), and only git bundles, which are data,
  cross between it and the sandbox, through the agent's download and upload streams. The
  host's git runs as the sandbox's host uid, so file permissions decide what a local remote lets
  it read or write, and with :mod:`._githost`'s hardened options.

Where the host pushes to or pulls from is not the sandbox's choice: the remote's URL is read from
the sandbox's repository (``remote.<name>.url``, as git would) but used only when the API caller
vouched for it by cloning from it into this sandbox. Otherwise a sandbox could point the host at
its loopback services, at any host path its uid reaches, or at a server that collects the
credentials the caller sends with a push.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import tempfile
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from daytonaflow.localserver import _githost, gitclone
from daytonaflow.localserver.agent_client import AgentClient
from daytonaflow.localserver.api import ServerState
from daytonaflow.localserver.errors import ApiError, GitOperationError, RequestFieldError
from daytonaflow.localserver.http_common import json_body, optional_bool, optional_str, require_str
from daytonaflow.localserver.sandboxes import SandboxRecord

_SANDBOX_GIT_TIMEOUT_SECONDS = 300.0
_NETWORK_TIMEOUT_SECONDS = 600.0
_HOST_GIT_TIMEOUT_SECONDS = 120.0
# The agent keeps a command's first and last megabyte and marks what it dropped in between.
_KEPT_OUTPUT_BYTES = 2 << 20
_OMITTED = re.compile(r"\n\[daytonaflow: \d+ bytes of output omitted\]\n")
_GIT_MISSING_EXIT = 127
_GIT_MISSING_MARK = "daytonaflow: git is not installed in this sandbox"
# ``set --`` gives the quoted argv to ``"$@"``; stderr goes to a file so that stdout stays
# parseable, and is shown only when git fails.
_PRELUDE = (
    f'command -v git >/dev/null 2>&1 || {{ echo "{_GIT_MISSING_MARK}"; exit {_GIT_MISSING_EXIT}; }}; '
    'e=$(mktemp) || exit 125; "$@" 2>"$e"; s=$?; [ "$s" -eq 0 ] || cat "$e"; rm -f "$e"; exit "$s"'
)
_SANDBOX_ENV = {"LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_EDITOR": ":", "GIT_PAGER": "cat"}
_SANDBOX_TMP = "/tmp"
_VOUCHED_REMOTES = "git-remotes.jsonl"
_NETWORK_SCHEMES = ("http", "https", "file")
# What a branch or remote name may not hold: what git's refname rules forbid anyway, and what
# would make a refspec or an option of it.
_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_STATUS_CODES = {
    ".": "Unmodified",
    "M": "Modified",
    "T": "Modified",
    "A": "Added",
    "D": "Deleted",
    "R": "Renamed",
    "C": "Copied",
    "U": "Updated but unmerged",
}


# ---- requests ------------------------------------------------------------------------------------


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.server
    return state


def _sandbox(request: Request) -> SandboxRecord:
    return _state(request).manager.get(request.path_params["sandbox"])


def _text(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    """A string field git gets as one argument: no NUL (no process argument can hold one)."""
    value = require_str(body, name) if required else optional_str(body, name)
    if value is not None and "\0" in value:
        raise RequestFieldError(name, "must not contain NUL characters")
    return value


def _repo_path(value: str | None, field: str = "path") -> str:
    if not value:
        raise RequestFieldError(field, "is required: the repository's path in the sandbox")
    if "\0" in value:
        raise RequestFieldError(field, "must not contain NUL characters")
    return value


def _ref_name(value: str | None, field: str) -> str:
    """A branch or remote name safe to place in a refspec and an argv."""
    if not value or value.startswith(("-", "/")) or value.endswith(("/", ".lock")):
        raise RequestFieldError(field, f"{value!r} is not a valid git name")
    if _BAD_REF_CHARS.search(value) or ".." in value or "@{" in value or "//" in value:
        raise RequestFieldError(field, f"{value!r} is not a valid git name")
    return value


# ---- git inside the sandbox -----------------------------------------------------------------------


class _SandboxRepo:
    """One repository of a sandbox, worked on by git running inside it as its user."""

    def __init__(self, agent: AgentClient, record: SandboxRecord, path: str) -> None:
        self.agent = agent
        self.env = {**record.env, **_SANDBOX_ENV}
        self.path = path

    async def git(self, args: Sequence[str], what: str, *, env: dict[str, str] | None = None) -> str:
        """``git -C path args`` in the sandbox; its stdout, or the error with git's message."""
        code, output = await self.run(["git", "-C", self.path, *args], what, env=env)
        if code != 0:
            raise _failure(what, output)
        return output

    async def run(
        self, argv: Sequence[str], what: str, *, env: dict[str, str] | None = None
    ) -> tuple[int, str]:
        answer = await self.agent.call(
            "execute",
            command=f"set -- {shlex.join(argv)}; {_PRELUDE}",
            cwd=None,
            env={**self.env, **(env or {})},
            timeout=_SANDBOX_GIT_TIMEOUT_SECONDS,
        )
        output = str(answer.get("result", ""))
        if answer.get("timedOut"):
            raise GitOperationError(
                504, f"{what} timed out after {_SANDBOX_GIT_TIMEOUT_SECONDS:g}s", code="GIT_TIMEOUT"
            )
        code = int(answer["exitCode"])
        if code == _GIT_MISSING_EXIT and _GIT_MISSING_MARK in output:
            raise GitOperationError(
                500,
                "git is not installed in the sandbox: it runs the host's /usr/bin/git (the host's /usr is "
                "bound read-only), so install git on the host",
                code="GIT_NOT_INSTALLED",
            )
        if len(output.encode()) >= _KEPT_OUTPUT_BYTES and _OMITTED.search(output):
            raise GitOperationError(
                500, f"{what} printed more than {_KEPT_OUTPUT_BYTES >> 20} MiB", code="GIT_OUTPUT_TOO_LARGE"
            )
        return code, output

    async def config(self, key: str) -> str | None:
        code, output = await self.run(["git", "-C", self.path, "config", "--get", key], "git config")
        if code == 1:  # unset
            return None
        if code != 0:
            raise _failure("git config", output)
        return output.strip()

    async def current_branch(self, what: str) -> str:
        code, output = await self.run(
            ["git", "-C", self.path, "symbolic-ref", "--quiet", "--short", "HEAD"], what
        )
        if code == 1:
            raise GitOperationError(
                400, f"{what}: HEAD is detached, check out a branch first", code="GIT_DETACHED"
            )
        if code != 0:
            raise _failure(what, output)
        return _ref_name(output.strip(), "branch")

    async def remote(self, name: str, what: str) -> _Remote:
        url = await self.config(f"remote.{name}.url")
        if not url:
            raise GitOperationError(
                400, f"{what}: the repository has no remote {name!r}", code="GIT_NO_REMOTE"
            )
        return _Remote(name, url)

    async def remove(self, path: str) -> None:
        with contextlib.suppress(ApiError):
            await self.run(["rm", "-f", "--", path], "rm")


def _failure(what: str, output: str) -> GitOperationError:
    message = output.strip()[-_githost.OUTPUT_LIMIT :] or "no message"
    if "CONFLICT" in message or "Automatic merge failed" in message:
        return GitOperationError(
            409, f"{what}: merge conflict, resolve it in the sandbox: {message}", code="GIT_CONFLICT"
        )
    return GitOperationError(400, f"{what} failed: {message}", code="GIT_FAILED")


def _bundle_path() -> str:
    return f"{_SANDBOX_TMP}/.daytonaflow-git-{secrets.token_hex(16)}.bundle"


# ---- parsing ---------------------------------------------------------------------------------------


def parse_status(raw: str) -> dict[str, Any]:
    """``git status --porcelain=v2 --branch -z`` as Daytona's ``GitStatus``."""
    fields = raw.split("\0")
    branch, upstream, detached, ahead, behind = "", "", False, 0, 0
    files: list[dict[str, str]] = []
    index = 0
    while index < len(fields):
        entry = fields[index]
        index += 1
        if entry.startswith("# "):
            key, _, value = entry[2:].partition(" ")
            if key == "branch.head":
                detached = value == "(detached)"
                branch = "" if detached else value
            elif key == "branch.upstream":
                upstream = value
            elif key == "branch.ab":
                plus, minus = value.split()
                ahead, behind = int(plus), -int(minus)
        elif entry.startswith("1 "):
            parts = entry.split(" ", 8)
            files.append(_file_status(parts[8], parts[1], ""))
        elif entry.startswith("2 "):
            parts = entry.split(" ", 9)
            files.append(_file_status(parts[9], parts[1], fields[index]))
            index += 1  # a rename's original path is the next field
        elif entry.startswith("u "):
            parts = entry.split(" ", 10)
            files.append(_file_status(parts[10], "UU", ""))
        elif entry.startswith("? "):
            files.append({"name": entry[2:], "staging": "Untracked", "worktree": "Untracked", "extra": ""})
    return {
        "currentBranch": branch,
        "fileStatus": files,
        "ahead": ahead,
        "behind": behind,
        "branchPublished": bool(upstream),
        "detached": detached,
        "upstream": upstream,
    }


def _file_status(name: str, codes: str, extra: str) -> dict[str, str]:
    return {
        "name": name,
        "staging": _STATUS_CODES.get(codes[0], "Modified"),
        "worktree": _STATUS_CODES.get(codes[1], "Modified"),
        "extra": extra,
    }


def parse_branches(raw: str) -> dict[str, Any]:
    """``git for-each-ref --format=%(HEAD)%(refname) refs/heads/`` as ``ListBranchResponse``."""
    branches, current = [], ""
    for line in raw.splitlines():
        if len(line) < 2:
            continue
        name = line[1:].removeprefix("refs/heads/")
        branches.append(name)
        if line[0] == "*":
            current = name
    return {"branches": branches, "current": current}


def parse_history(raw: str) -> list[dict[str, str]]:
    """``git log -z`` with NUL-separated fields as a list of ``GitCommitInfo``."""
    fields = raw.split("\0")
    commits = []
    for start in range(0, len(fields) - 4, 5):
        sha, author, email, timestamp, message = fields[start : start + 5]
        commits.append(
            {
                "hash": sha.strip(),
                "author": author,
                "email": email,
                "timestamp": timestamp,
                "message": message.strip(),
            }
        )
    return commits


# ---- remotes the host may reach ------------------------------------------------------------------


@dataclass(frozen=True)
class _Remote:
    name: str
    url: str


@dataclass(frozen=True)
class _Target:
    """A remote the host may push to or fetch from, and what it needs to reach it."""

    url: str
    shown: str
    local_paths: tuple[str, ...]
    url_secrets: tuple[str, ...]


def vouch_for_remote(scratch: Path, url: str) -> None:
    """Record that the API caller pointed this sandbox at ``url`` (a clone): push and pull may use it."""
    fd = os.open(scratch / _VOUCHED_REMOTES, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(url) + "\n")


def _vouched_remotes(scratch: Path) -> set[str]:
    try:
        lines = (scratch / _VOUCHED_REMOTES).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return set()
    vouched = set()
    for line in lines:
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, str):
                vouched.add(value)
    return vouched


def _shown_url(url: str) -> str:
    """``url`` without credentials in it (a sandbox may have written ``https://user:token@``)."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()


def checked_target(remote: _Remote, vouched: set[str]) -> _Target:
    """The remote as the host may use it, or a refusal saying why."""
    url, shown = remote.url, _shown_url(remote.url)
    if url.startswith("-") or any(ord(char) < 32 for char in url):
        raise GitOperationError(
            400, f"remote {remote.name!r} has an unusable URL {shown!r}", code="GIT_REMOTE_REFUSED"
        )
    scheme, separator, _ = url.partition("://")
    local: tuple[str, ...] = ()
    if separator:
        if scheme.lower() not in _NETWORK_SCHEMES:
            raise GitOperationError(
                400,
                f"remote {remote.name!r} ({shown}) uses {scheme!r}: the local server pushes and pulls over "
                "https, http and file:// (or a local path) only; ssh would use the host's own keys",
                code="GIT_REMOTE_REFUSED",
            )
        if scheme.lower() == "file":
            local = (unquote(urlsplit(url).path),)
    elif url.startswith("/"):
        local = (url,)
    else:
        raise GitOperationError(
            400,
            f"remote {remote.name!r} ({shown}) is neither a URL nor an absolute path (scp-like ssh "
            "addresses are not supported: ssh would use the host's own keys)",
            code="GIT_REMOTE_REFUSED",
        )
    if url not in vouched:
        raise GitOperationError(
            403,
            f"remote {remote.name!r} ({shown}) was not given to this sandbox through the API: push and pull "
            "reach only URLs a git clone of this sandbox came from, so that code in a sandbox cannot choose "
            "where the host connects (or where the credentials go)",
            code="GIT_REMOTE_REFUSED",
        )
    userinfo = urlsplit(url).netloc.rpartition("@")[0] if separator else ""
    url_secrets = tuple(part for part in userinfo.split(":") if part)
    paths = {os.path.normpath(path) for path in local}
    paths |= {os.path.realpath(path) for path in paths}
    return _Target(url, shown, tuple(sorted(paths)), url_secrets)


# ---- git on the host -------------------------------------------------------------------------------


class _HostGit:
    """Host-side git in a scratch directory of the sandbox's, run as the sandbox's host uid."""

    def __init__(
        self,
        work: Path,
        uid: int,
        target: _Target,
        username: str | None,
        password: str | None,
        operation: str,
    ) -> None:
        self.work = work
        self.uid = uid
        self.operation = operation
        self.secrets = sorted(
            {*_githost.secrets_of(username, password), *target.url_secrets}, key=len, reverse=True
        )
        _githost.write_trusted_config(work, target.local_paths)
        askpass = _githost.install_askpass(work)
        self.env = _githost.hardened_env(work, askpass, username, password)
        for path in (work / ".gitconfig", askpass):
            _give(path, uid)

    async def run(self, args: Sequence[str], *, timeout: float = _HOST_GIT_TIMEOUT_SECONDS) -> str:
        output = await _githost.run_git(
            args,
            env=self.env,
            secrets=self.secrets,
            operation=self.operation,
            timeout=timeout,
            error=GitOperationError,
            code="GIT_FAILED",
            uid=self.uid,
        )
        return _githost.scrub(output, self.secrets)


def _give(path: Path, uid: int) -> None:
    if uid != os.geteuid():
        os.chown(path, uid, uid, follow_symlinks=False)


@contextlib.contextmanager
def _host_workdir(scratch: Path, uid: int) -> Iterator[Path]:
    """A fresh directory in the sandbox's scratch that the sandbox's host uid owns."""
    if uid != os.geteuid():
        # The uid must pass through scratch (root's, 0700) to its directory; the sandbox itself
        # never sees scratch, and the names in it are random.
        os.chown(scratch, -1, uid)
        scratch.chmod(0o710)
    work = Path(tempfile.mkdtemp(prefix="git-", dir=scratch))
    try:
        _give(work, uid)
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


#: The first line of every bundle format git writes (v2, and v3 with capabilities).
_BUNDLE_SIGNATURES = (b"# v2 git bundle\n", b"# v3 git bundle\n")


async def _download(agent: AgentClient, source: str, target: Path, limit: int) -> None:
    stream = await agent.stream("download", path=source)
    size = int(stream.header["size"])
    if size > limit:
        await stream.close()
        raise GitOperationError(
            413, f"the bundle to push is {size} bytes, over the limit of {limit}", code="GIT_TOO_LARGE"
        )
    head = b""
    with open(target, "wb") as handle:
        async for chunk in stream.iter_chunks(size):
            if len(head) < len(_BUNDLE_SIGNATURES[0]):
                head += chunk[: len(_BUNDLE_SIGNATURES[0]) - len(head)]
            handle.write(chunk)
    # What is not a bundle, git fetch takes for a repository path (a `gitdir:` file, a relative
    # path) and reads that repository on the host: only a bundle may pass.
    if not head.startswith(_BUNDLE_SIGNATURES):
        raise GitOperationError(
            400, "git push: what the sandbox's git bundled is not a git bundle", code="GIT_BUNDLE_INVALID"
        )


async def _in_time(transfer: Coroutine[Any, Any, Any], what: str) -> None:
    """A bundle's way through the agent, bounded: a sandbox could leave it hanging (a FIFO where
    its bundle should be)."""
    try:
        await asyncio.wait_for(transfer, _NETWORK_TIMEOUT_SECONDS)
    except TimeoutError:
        raise GitOperationError(
            504, f"{what} timed out after {_NETWORK_TIMEOUT_SECONDS:g}s", code="GIT_TIMEOUT"
        ) from None


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            yield chunk


# ---- push and pull ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Transfer:
    path: str
    username: str | None
    password: str | None
    branch: str | None
    remote: str | None


def _transfer(body: dict[str, Any]) -> _Transfer:
    branch, remote = _text(body, "branch", required=False), _text(body, "remote", required=False)
    return _Transfer(
        path=_repo_path(_text(body, "path")),
        username=_text(body, "username", required=False) or None,
        password=_text(body, "password", required=False) or None,
        branch=_ref_name(branch, "branch") if branch else None,
        remote=_ref_name(remote, "remote") if remote else None,
    )


async def push(state: ServerState, record: SandboxRecord, request: _Transfer, set_upstream: bool) -> None:
    manager = state.manager
    uid, scratch = manager.uid_of(record), manager.scratch_dir(record)
    limit = manager.limits_of(record).upload_bytes
    async with manager.activity(record) as agent:
        repo = _SandboxRepo(agent, record, request.path)
        branch = request.branch or await repo.current_branch("git push")
        remote = await repo.remote(request.remote or "origin", "git push")
        target = checked_target(remote, _vouched_remotes(scratch))
        ref = f"refs/heads/{branch}"
        credentials = await _credentials(repo, target, request)
        with _host_workdir(scratch, uid) as work:
            host = _HostGit(work, uid, target, *credentials, "git push")
            bundle = _bundle_path()
            try:
                await repo.git(["bundle", "create", bundle, ref], "git push (bundling the branch)")
                await _in_time(
                    _download(agent, bundle, work / "push.bundle", limit), "git push (reading the bundle)"
                )
            finally:
                await repo.remove(bundle)
            _give(work / "push.bundle", uid)
            await host.run(["init", "--quiet", "--bare", "repo.git"])
            # fsck: the bundle is the sandbox's data, passed on to a remote that trusts the caller.
            fetch = ["-C", "repo.git", "-c", "fetch.fsckObjects=true", "fetch", "--quiet"]
            await host.run([*fetch, str(work / "push.bundle"), f"+{ref}:{ref}"])
            sha = (await host.run(["-C", "repo.git", "rev-parse", "--verify", ref])).strip()
            await host.run(
                ["-C", "repo.git", "push", "--quiet", target.url, f"{ref}:{ref}"],
                timeout=_NETWORK_TIMEOUT_SECONDS,
            )
        # As git push would: the remote-tracking branch now knows what the remote has.
        await repo.git(["update-ref", f"refs/remotes/{remote.name}/{branch}", sha], "git push")
        if set_upstream:
            await repo.git(["branch", f"--set-upstream-to={remote.name}/{branch}", branch], "git push")


async def pull(state: ServerState, record: SandboxRecord, request: _Transfer) -> None:
    manager = state.manager
    async with manager.activity(record) as agent:
        repo = _SandboxRepo(agent, record, request.path)
        local = await repo.current_branch("git pull")
        remote_name = request.remote or await repo.config(f"branch.{local}.remote") or "origin"
        upstream = (await repo.config(f"branch.{local}.merge") or "").removeprefix("refs/heads/")
        branch = _ref_name(request.branch or upstream or local, "branch")
        remote = await repo.remote(_ref_name(remote_name, "remote"), "git pull")
        target = checked_target(remote, _vouched_remotes(manager.scratch_dir(record)))
        tracking = f"refs/remotes/{remote.name}/{branch}"
        credentials = await _credentials(repo, target, request)
        await _bring_in(
            state, record, repo, target, credentials, f"refs/heads/{branch}", tracking, "git pull"
        )
        message = f"Merge branch '{branch}' of {target.shown}"
        await repo.git(["merge", "--no-edit", "-m", message, tracking], "git pull")


async def _bring_in(
    state: ServerState,
    record: SandboxRecord,
    repo: _SandboxRepo,
    target: _Target,
    credentials: tuple[str | None, str | None],
    source: str,
    destination: str,
    operation: str,
) -> None:
    """Fetch ``source`` (a ref, or a ``refs/heads/*`` pattern) from the remote on the host and
    hand it to the sandbox's repository as ``destination``, through a bundle."""
    manager = state.manager
    uid, scratch = manager.uid_of(record), manager.scratch_dir(record)
    bundle = _bundle_path()
    with _host_workdir(scratch, uid) as work:
        host = _HostGit(work, uid, target, *credentials, operation)
        await host.run(["init", "--quiet", "--bare", "repo.git"])
        fetch = ["-C", "repo.git", "fetch", "--quiet", target.url, f"+{source}:{source}"]
        await host.run(fetch, timeout=_NETWORK_TIMEOUT_SECONDS)
        if not (await host.run(["-C", "repo.git", "for-each-ref", "--count=1", "refs/heads/"])).strip():
            return  # an empty remote: nothing to hand over
        await host.run(["-C", "repo.git", "bundle", "create", str(work / "in.bundle"), "--branches"])
        await _in_time(
            repo.agent.upload(bundle, _file_chunks(work / "in.bundle")), f"{operation} (writing the bundle)"
        )
    try:
        fetch = ["fetch", "--quiet", bundle, f"+{source}:{destination}"]
        await repo.git(fetch, f"{operation} (fetching the bundle)")
    finally:
        await repo.remove(bundle)


async def _credentials(
    repo: _SandboxRepo, target: _Target, request: _Transfer
) -> tuple[str | None, str | None]:
    """The request's credentials, else what the sandbox's own credential helpers (say, those of
    ``dangerously_authenticate``) answer for the remote: asked inside the sandbox, only ever
    sent to the remote, which the API caller chose."""
    if request.username or request.password or not target.url.lower().startswith(("http://", "https://")):
        return request.username, request.password
    script = 'printf "url=%s\\n\\n" "$1" | git -C "$2" credential fill'
    code, output = await repo.run(["sh", "-c", script, "sh", target.url, repo.path], "git credential fill")
    if code != 0:
        return None, None
    answers = dict(line.partition("=")[::2] for line in output.splitlines() if "=" in line)
    return answers.get("username") or None, answers.get("password") or None


# ---- handlers ----------------------------------------------------------------------------------


def _query_path(request: Request) -> str:
    return _repo_path(request.query_params.get("path"))


async def git_status(request: Request) -> Response:
    path = _query_path(request)
    state, record = _state(request), _sandbox(request)
    async with state.manager.activity(record) as agent:
        args = ["status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all"]
        raw = await _SandboxRepo(agent, record, path).git(args, "git status", env={"GIT_OPTIONAL_LOCKS": "0"})
    return JSONResponse(parse_status(raw))


async def git_branches(request: Request) -> Response:
    path = _query_path(request)
    state, record = _state(request), _sandbox(request)
    async with state.manager.activity(record) as agent:
        args = ["for-each-ref", "--format=%(HEAD)%(refname)", "refs/heads/"]
        raw = await _SandboxRepo(agent, record, path).git(args, "git branch")
    return JSONResponse(parse_branches(raw))


async def git_history(request: Request) -> Response:
    path = _query_path(request)
    state, record = _state(request), _sandbox(request)
    async with state.manager.activity(record) as agent:
        repo = _SandboxRepo(agent, record, path)
        code, _ = await repo.run(["git", "-C", path, "rev-parse", "--verify", "--quiet", "HEAD"], "git log")
        if code != 0:  # no commit yet (or not a repository: git log says which)
            code, raw = await repo.run(["git", "-C", path, "rev-parse", "--git-dir"], "git log")
            if code != 0:
                raise _failure("git log", raw)
            return JSONResponse([])
        raw = await repo.git(["log", "-z", "--format=%H%x00%an%x00%ae%x00%aI%x00%B"], "git log")
    return JSONResponse(parse_history(raw))


async def git_add(request: Request) -> Response:
    body = await json_body(request)
    path = _repo_path(_text(body, "path"))
    files = body.get("files")
    if (
        not isinstance(files, list)
        or not files
        or not all(isinstance(f, str) and f and "\0" not in f for f in files)
    ):
        raise RequestFieldError("files", "must be a non-empty list of paths (use '.' for all)")
    state, record = _state(request), _sandbox(request)
    async with state.manager.activity(record) as agent:
        await _SandboxRepo(agent, record, path).git(["add", "--", *files], "git add")
    return Response(status_code=200)


async def git_commit(request: Request) -> Response:
    body = await json_body(request)
    path = _repo_path(_text(body, "path"))
    message, author, email = (_text(body, name) or "" for name in ("message", "author", "email"))
    allow_empty = optional_bool(body, "allow_empty") or optional_bool(body, "allowEmpty") or False
    identity = {
        "GIT_AUTHOR_NAME": author,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": author,
        "GIT_COMMITTER_EMAIL": email,
    }
    state, record = _state(request), _sandbox(request)
    async with state.manager.activity(record) as agent:
        repo = _SandboxRepo(agent, record, path)
        args = ["commit", "--quiet", "-m", message, *(["--allow-empty"] if allow_empty else [])]
        await repo.git(args, "git commit", env=identity)
        sha = (await repo.git(["rev-parse", "--verify", "HEAD"], "git commit")).strip()
    return JSONResponse({"hash": sha})


async def git_create_branch(request: Request) -> Response:
    body = await json_body(request)
    path, name = _repo_path(_text(body, "path")), _ref_name(_text(body, "name"), "name")
    state, record = _state(request), _sandbox(request)
    async with state.manager.activity(record) as agent:
        # Daytona's toolbox creates the branch and checks it out.
        await _SandboxRepo(agent, record, path).git(["checkout", "--quiet", "-b", name], "git branch")
    return Response(status_code=201)


async def git_checkout(request: Request) -> Response:
    body = await json_body(request)
    path = _repo_path(_text(body, "path"))
    branch = _text(body, "branch") or ""
    if branch.startswith("-"):
        raise RequestFieldError("branch", f"{branch!r} is not a branch or commit")
    state, record = _state(request), _sandbox(request)
    async with state.manager.activity(record) as agent:
        await _SandboxRepo(agent, record, path).git(["checkout", "--quiet", branch], "git checkout")
    return Response(status_code=200)


async def git_delete_branch(request: Request) -> Response:
    body = await json_body(request)
    path, name = _repo_path(_text(body, "path")), _ref_name(_text(body, "name"), "name")
    state, record = _state(request), _sandbox(request)
    async with state.manager.activity(record) as agent:
        await _SandboxRepo(agent, record, path).git(["branch", "--quiet", "-D", name], "git branch -D")
    return Response(status_code=204)


async def git_push(request: Request) -> Response:
    body = await json_body(request)
    transfer = _transfer(body)
    set_upstream = optional_bool(body, "set_upstream") or optional_bool(body, "setUpstream") or False
    await push(_state(request), _sandbox(request), transfer, set_upstream)
    return Response(status_code=200)


async def git_pull(request: Request) -> Response:
    body = await json_body(request)
    await pull(_state(request), _sandbox(request), _transfer(body))
    return Response(status_code=200)


def _option_value(value: str | None, field: str) -> str | None:
    """A revision or similar argument: never one git could read as an option."""
    if value is not None and (value.startswith("-") or not value):
        raise RequestFieldError(field, f"{value!r} must not be empty or start with '-'")
    return value


def _paths(body: dict[str, Any], name: str, *, required: bool) -> list[str]:
    files = body.get(name)
    if files is None and not required:
        return []
    if not isinstance(files, list) or (required and not files):
        raise RequestFieldError(name, "must be a non-empty list of paths")
    if not all(isinstance(f, str) and f and "\0" not in f for f in files):
        raise RequestFieldError(name, "must hold non-empty paths without NUL characters")
    return files


async def git_init(request: Request) -> Response:
    body = await json_body(request)
    path = _repo_path(_text(body, "path"))
    branch = _text(body, "initial_branch", required=False)
    args = ["init", "--quiet", *(["--bare"] if optional_bool(body, "bare") else [])]
    if branch:
        args.append(f"--initial-branch={_ref_name(branch, 'initial_branch')}")
    state, record = _state(request), _sandbox(request)
    async with state.manager.activity(record) as agent:
        await _SandboxRepo(agent, record, ".").git([*args, "--", path], "git init")
    return Response(status_code=201)


_RESET_MODES = ("soft", "mixed", "hard", "merge", "keep")


async def git_reset(request: Request) -> Response:
    body = await json_body(request)
    path = _repo_path(_text(body, "path"))
    mode = _text(body, "mode", required=False)
    target = _option_value(_text(body, "target", required=False), "target")
    files = _paths(body, "files", required=False)
    if mode is not None and mode not in _RESET_MODES:
        raise RequestFieldError("mode", f"must be one of {', '.join(_RESET_MODES)}")
    if files and mode not in (None, "mixed"):
        raise RequestFieldError("mode", "a reset of given files is always mixed")
    args = ["reset", "--quiet", *([f"--{mode}"] if mode and not files else []), *([target] if target else [])]
    state, record = _state(request), _sandbox(request)
    async with state.manager.activity(record) as agent:
        await _SandboxRepo(agent, record, path).git([*args, *(["--", *files] if files else [])], "git reset")
    return Response(status_code=200)


async def git_restore(request: Request) -> Response:
    body = await json_body(request)
    path = _repo_path(_text(body, "path"))
    files = _paths(body, "files", required=True)
    source = _option_value(_text(body, "source", required=False), "source")
    args = ["restore"]
    if optional_bool(body, "staged"):
        args.append("--staged")
    if optional_bool(body, "worktree"):
        args.append("--worktree")
    if source:
        args.append(f"--source={source}")
    state, record = _state(request), _sandbox(request)
    async with state.manager.activity(record) as agent:
        await _SandboxRepo(agent, record, path).git([*args, "--", *files], "git restore")
    return Response(status_code=200)


async def git_list_remotes(request: Request) -> Response:
    path = _query_path(request)
    state, record = _state(request), _sandbox(request)
    async with state.manager.activity(record) as agent:
        repo = _SandboxRepo(agent, record, path)
        code, raw = await repo.run(
            ["git", "-C", path, "config", "--local", "-z", "--get-regexp", r"^remote\..*\.url$"], "git remote"
        )
        if code not in (0, 1):  # 1: no remote at all
            raise _failure("git remote", raw)
    remotes = []
    for entry in raw.split("\0") if code == 0 else []:
        key, _, url = entry.partition("\n")
        if key.startswith("remote.") and key.endswith(".url"):
            remotes.append({"name": key[len("remote.") : -len(".url")], "url": url})
    return JSONResponse({"remotes": remotes})


async def git_add_remote(request: Request) -> Response:
    body = await json_body(request)
    path = _repo_path(_text(body, "path"))
    name = _ref_name(_text(body, "name"), "name")
    url = _option_value(_text(body, "url"), "url") or ""
    state, record = _state(request), _sandbox(request)
    async with state.manager.activity(record) as agent:
        repo = _SandboxRepo(agent, record, path)
        exists = await repo.config(f"remote.{name}.url") is not None
        if exists and not optional_bool(body, "overwrite"):
            raise GitOperationError(
                409, f"remote {name!r} exists; pass overwrite to replace it", code="GIT_REMOTE_EXISTS"
            )
        await repo.git(["remote", "set-url" if exists else "add", name, url], "git remote add")
        # The API caller named it: push, pull and fetch may reach it from now on.
        scratch = state.manager.scratch_dir(record)
        vouch_for_remote(scratch, url)
        if optional_bool(body, "fetch"):
            target = checked_target(_Remote(name, url), _vouched_remotes(scratch))
            credentials = await _credentials(repo, target, _Transfer(path, None, None, None, name))
            await _bring_in(
                state,
                record,
                repo,
                target,
                credentials,
                "refs/heads/*",
                f"refs/remotes/{name}/*",
                "git fetch",
            )
    return Response(status_code=201)


_CONFIG_SCOPES = ("global", "local", "system")


def _config_scope(scope: str | None, path: str | None) -> tuple[str, str]:
    """``--<scope>`` and the repository to run in (the home unless local)."""
    scope = scope or "global"
    if scope not in _CONFIG_SCOPES:
        raise RequestFieldError("scope", f"must be one of {', '.join(_CONFIG_SCOPES)}")
    if scope == "local" and not path:
        raise RequestFieldError("path", "is required for the local scope")
    return f"--{scope}", _repo_path(path) if scope == "local" else "."


def _config_key(value: str | None) -> str:
    if not value or value.startswith("-") or any(ord(char) < 32 for char in value) or "." not in value:
        raise RequestFieldError("key", f"{value!r} is not a git config key (section.name)")
    return value


async def git_get_config(request: Request) -> Response:
    query = request.query_params
    key = _config_key(query.get("key"))
    scope, path = _config_scope(query.get("scope"), query.get("path"))
    state, record = _state(request), _sandbox(request)
    async with state.manager.activity(record) as agent:
        repo = _SandboxRepo(agent, record, path)
        code, output = await repo.run(["git", "-C", path, "config", scope, "--get", key], "git config")
    if code not in (0, 1):
        raise _failure("git config", output)
    return JSONResponse({"value": output.removesuffix("\n") if code == 0 else None})


async def _set_config(request: Request, body: dict[str, Any], values: dict[str, str]) -> None:
    scope, path = _config_scope(_text(body, "scope", required=False), _text(body, "path", required=False))
    state, record = _state(request), _sandbox(request)
    async with state.manager.activity(record) as agent:
        repo = _SandboxRepo(agent, record, path)
        for key, value in values.items():
            await repo.git(["config", scope, key, value], "git config")


async def git_set_config(request: Request) -> Response:
    body = await json_body(request)
    key = _config_key(_text(body, "key"))
    await _set_config(request, body, {key: _text(body, "value") or ""})
    return Response(status_code=200)


async def git_configure_user(request: Request) -> Response:
    body = await json_body(request)
    values = {"user.name": _text(body, "name") or "", "user.email": _text(body, "email") or ""}
    await _set_config(request, body, values)
    return Response(status_code=200)


async def git_authenticate(request: Request) -> Response:
    """Daytona's ``dangerously_authenticate``: the sandbox's git credential store keeps them (in
    plain text, as the SDK warns); push and pull use them when a request brings none."""
    body = await json_body(request)
    fields = {
        "protocol": _text(body, "protocol", required=False) or "https",
        "host": _text(body, "host", required=False) or "github.com",
        "username": _text(body, "username") or "",
        "password": _text(body, "password") or "",
    }
    for name, value in fields.items():
        if "\n" in value or "\r" in value:
            raise RequestFieldError(name, "must be a single line")
    script = (
        'git config --global credential.helper store && printf "protocol=%s\\nhost=%s\\nusername=%s\\n'
        'password=%s\\n\\n" "$1" "$2" "$3" "$4" | git credential approve'
    )
    state, record = _state(request), _sandbox(request)
    async with state.manager.activity(record) as agent:
        repo = _SandboxRepo(agent, record, ".")
        code, output = await repo.run(["sh", "-c", script, "sh", *fields.values()], "git credential approve")
    if code != 0:
        secrets = _githost.secrets_of(fields["username"], fields["password"])
        raise _failure("git credential approve", _githost.scrub(output, secrets))
    return Response(status_code=200)


async def git_clone(request: Request) -> Response:
    body = await json_body(request)
    url = require_str(body, "url")
    destination = gitclone.relative_destination(require_str(body, "path"))
    state = _state(request)
    record = _sandbox(request)
    scratch = state.manager.scratch_dir(record)
    async with state.manager.activity(record):
        await gitclone.clone(
            url=url,
            home=state.manager.home(record),
            scratch=scratch,
            destination=destination,
            askpass=state.askpass,
            host_uid=state.manager.uid_of(record),
            branch=optional_str(body, "branch"),
            commit=optional_str(body, "commit_id") or optional_str(body, "commitId"),
            username=optional_str(body, "username"),
            password=optional_str(body, "password"),
        )
    vouch_for_remote(scratch, url)
    return Response(status_code=200)
