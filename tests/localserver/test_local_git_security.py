"""The toolbox's git operations never let a sandbox's repository run code on the host, or point
the host's git anywhere the API caller did not.

A hostile repository configures every way git runs commands (fsmonitor, hooks, a filter driver
through ``.gitattributes``); each command touches a marker in a host directory the sandbox
cannot see (where it runs inside, that path does not exist) and one in the sandbox's home, which
shows git did run it, inside.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from localserver_testkit import Api

pytestmark = pytest.mark.sandbox

_IDENTITY = ["-c", "user.name=Host", "-c", "user.email=host@example.com"]
_COMMIT_IN_SANDBOX = (
    "cd /home/daytona/repo && echo x > x.txt && git add x.txt"
    " && git -c user.name=a -c user.email=a@b commit -qm x"
)


def _host_git(*args: str) -> str:
    return subprocess.run(
        ["git", *_IDENTITY, *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def host_dir() -> Iterator[Path]:
    """A host directory anyone may write (so a command run on the host as any uid could)."""
    path = Path(tempfile.mkdtemp(prefix="daytonaflow-git-host-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _bare_remote(parent: Path, name: str, *, mode: str = "a+rwX") -> Path:
    bare = parent / f"{name}.git"
    seed = parent / f"{name}-seed"
    _host_git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    _host_git("clone", "--quiet", str(bare), str(seed))
    (seed / "README.md").write_text(f"{name}\n")
    _host_git("-C", str(seed), "add", "README.md")
    _host_git("-C", str(seed), "commit", "--quiet", "-m", f"{name} seed")
    _host_git("-C", str(seed), "push", "--quiet", "origin", "HEAD:refs/heads/main")
    subprocess.run(["chmod", "-R", mode, str(bare)], check=True)
    return bare


def _fork(bare: Path, name: str, secret: str) -> Path:
    """A bare copy of ``bare`` with one more commit (``secret.txt``): a sibling on the host."""
    fork = bare.parent / f"{name}.git"
    work = bare.parent / f"{name}-work"
    _host_git("clone", "--quiet", "--bare", str(bare), str(fork))
    _host_git("clone", "--quiet", str(fork), str(work))
    (work / "secret.txt").write_text(secret)
    _host_git("-C", str(work), "add", "secret.txt")
    _host_git("-C", str(work), "commit", "--quiet", "-m", "secret")
    _host_git("-C", str(work), "push", "--quiet", "origin", "HEAD:refs/heads/main")
    subprocess.run(["chmod", "-R", "a+rwX", str(fork)], check=True)
    return fork


def _clone(api: Api, sandbox: dict[str, Any], url: str, path: str = "repo") -> None:
    response = api.toolbox("POST", sandbox["id"], "/git/clone", json={"url": url, "path": path})
    assert response.status_code == 200, response.text


def _arm(api: Api, sandbox: dict[str, Any], host_dir: Path) -> None:
    """Make ``repo`` run a marker command through every mechanism git has for it."""

    def marker(name: str) -> str:
        return f"touch {host_dir}/{name}; touch /home/daytona/ran-{name}"

    hook = "#!/bin/sh\n{}\nexit 0\n"
    script = " && ".join(
        [
            "cd /home/daytona/repo",
            f"git config core.fsmonitor {shlex.quote(marker('fsmonitor') + '; exit 1')}",
            f"git config filter.evil.clean {shlex.quote(marker('filter') + '; cat')}",
            "git config filter.evil.smudge cat",
            "echo '* filter=evil' > .gitattributes",
            *(
                f"printf %s {shlex.quote(hook.format(marker(name)))} > .git/hooks/{name}"
                f" && chmod +x .git/hooks/{name}"
                for name in ("pre-commit", "post-commit", "pre-push", "post-merge", "post-checkout")
            ),
        ]
    )
    assert api.run(sandbox["id"], script)["exitCode"] == 0


def _ran_inside(api: Api, sandbox: dict[str, Any]) -> set[str]:
    listing = api.run(sandbox["id"], "ls /home/daytona")["result"].split()
    return {name.removeprefix("ran-") for name in listing if name.startswith("ran-")}


def _host_markers(host_dir: Path) -> list[str]:
    return sorted(path.name for path in host_dir.iterdir())


def test_status_add_and_commit_run_the_repositorys_commands_inside_the_sandbox_only(
    api: Api, sandbox: dict[str, Any], host_dir: Path
) -> None:
    _clone(api, sandbox, str(_bare_remote(host_dir, "remote")))
    _arm(api, sandbox, host_dir)
    api.run(sandbox["id"], "echo change > /home/daytona/repo/file.txt")
    status = api.toolbox("GET", sandbox["id"], "/git/status", params={"path": "repo"})
    assert status.status_code == 200, status.text
    added = api.toolbox("POST", sandbox["id"], "/git/add", json={"path": "repo", "files": ["."]})
    assert added.status_code == 200, added.text
    body = {"path": "repo", "message": "m", "author": "A", "email": "a@example.com"}
    committed = api.toolbox("POST", sandbox["id"], "/git/commit", json=body)
    assert committed.status_code == 200, committed.text
    assert _host_markers(host_dir) == ["remote-seed", "remote.git"]
    assert {"fsmonitor", "filter", "pre-commit", "post-commit"} <= _ran_inside(api, sandbox)


def test_push_and_pull_run_none_of_the_repositorys_commands_on_the_host(
    api: Api, sandbox: dict[str, Any], host_dir: Path
) -> None:
    bare = _bare_remote(host_dir, "remote")
    _clone(api, sandbox, str(bare))
    _arm(api, sandbox, host_dir)
    assert api.run(sandbox["id"], _COMMIT_IN_SANDBOX)["exitCode"] == 0
    pushed = api.toolbox("POST", sandbox["id"], "/git/push", json={"path": "repo"})
    assert pushed.status_code == 200, pushed.text
    assert api.run(sandbox["id"], "cd /home/daytona/repo && git reset -q --hard HEAD~1")["exitCode"] == 0
    pulled = api.toolbox("POST", sandbox["id"], "/git/pull", json={"path": "repo"})
    assert pulled.status_code == 200, pulled.text
    assert _host_markers(host_dir) == ["remote-seed", "remote.git"]
    assert "post-merge" in _ran_inside(api, sandbox)


def test_a_remote_the_sandbox_names_itself_is_never_pushed_to(
    api: Api, sandbox: dict[str, Any], host_dir: Path
) -> None:
    vouched = _bare_remote(host_dir, "vouched")
    victim = host_dir / "victim.git"  # a host repository of the same history: a push would land
    _host_git("clone", "--quiet", "--bare", str(vouched), str(victim))
    subprocess.run(["chmod", "-R", "a+rwX", str(victim)], check=True)
    before = _host_git("--git-dir", str(victim), "rev-parse", "refs/heads/main")
    _clone(api, sandbox, str(vouched))
    api.run(
        sandbox["id"], f"git -C /home/daytona/repo remote set-url origin {victim} && {_COMMIT_IN_SANDBOX}"
    )
    pushed = api.toolbox("POST", sandbox["id"], "/git/push", json={"path": "repo"})
    assert pushed.status_code == 403, pushed.text
    assert "not given to this sandbox through the API" in pushed.json()["message"]
    assert _host_git("--git-dir", str(victim), "rev-parse", "refs/heads/main") == before


def test_a_remote_the_sandbox_names_itself_is_never_pulled_from(
    api: Api, sandbox: dict[str, Any], host_dir: Path
) -> None:
    vouched = _bare_remote(host_dir, "vouched")
    secret = _fork(vouched, "secret", "host secret\n")
    _clone(api, sandbox, str(vouched))
    api.run(sandbox["id"], f"git -C /home/daytona/repo remote set-url origin {secret}")
    pulled = api.toolbox("POST", sandbox["id"], "/git/pull", json={"path": "repo"})
    assert pulled.status_code == 403, pulled.text
    assert api.run(sandbox["id"], "ls /home/daytona/repo")["result"].split() == ["README.md"]


def test_push_reaches_a_local_remote_only_with_the_sandboxs_own_host_permissions(
    api: Api, sandbox: dict[str, Any], host_dir: Path
) -> None:
    private = host_dir / "private"
    private.mkdir(mode=0o700)  # the server's alone: the sandbox's host uid cannot enter it
    bare = _bare_remote(private, "remote", mode="go-rwx")
    before = _host_git("--git-dir", str(bare), "rev-parse", "refs/heads/main")
    _clone(api, sandbox, str(bare))  # the API caller's clone: the server reads it for them
    assert api.run(sandbox["id"], _COMMIT_IN_SANDBOX)["exitCode"] == 0
    pushed = api.toolbox("POST", sandbox["id"], "/git/push", json={"path": "repo"})
    assert pushed.status_code == 400, pushed.text
    assert _host_git("--git-dir", str(bare), "rev-parse", "refs/heads/main") == before


def test_a_push_whose_bundle_is_a_pointer_to_a_host_repository_never_reads_that_repository(
    api: Api, host_dir: Path
) -> None:
    """Sandbox code can replace the git the toolbox runs; its "bundle" is then `gitdir: <path>`,
    which git fetch would follow into a host repository (one the sandbox's uid may read)."""
    vouched = _bare_remote(host_dir, "vouched")
    secret = _fork(vouched, "secret", "host secret\n")
    # The toolbox runs `git -C <repo> bundle create <file> <ref>`.
    shim = (
        "mkdir -p /home/daytona/bin && cat > /home/daytona/bin/git <<'EOF'\n#!/bin/sh\n"
        f'if [ "$3" = bundle ] && [ "$4" = create ]; then printf "gitdir: {secret}\\n" > "$5"; exit 0; fi\n'
        'exec /usr/bin/git "$@"\nEOF\nchmod +x /home/daytona/bin/git'
    )
    sandbox = api.create(env={"PATH": "/home/daytona/bin:/usr/bin:/bin"})
    try:
        manager = api.server.state.manager  # type: ignore[union-attr]
        subprocess.run(
            ["chown", "-R", str(manager.uid_of(manager.get(sandbox["id"]))), str(secret)], check=True
        )
        _clone(api, sandbox, str(vouched))
        assert api.run(sandbox["id"], f"{_COMMIT_IN_SANDBOX} && {shim}")["exitCode"] == 0
        pushed = api.toolbox("POST", sandbox["id"], "/git/push", json={"path": "repo"})
        assert pushed.status_code == 400, pushed.text
        assert pushed.json()["code"] == "GIT_BUNDLE_INVALID"
        pushed_files = _host_git("--git-dir", str(vouched), "ls-tree", "--name-only", "-r", "refs/heads/main")
        assert "secret.txt" not in pushed_files.split()
    finally:
        api.delete(sandbox["id"])


@pytest.mark.parametrize(
    "url",
    ["ssh://git@127.0.0.1/repo.git", "git@127.0.0.1:repo.git", "ext::sh -c true", "relative/repo"],
)
def test_push_refuses_transports_other_than_http_and_file(
    api: Api, sandbox: dict[str, Any], host_dir: Path, url: str
) -> None:
    _clone(api, sandbox, str(_bare_remote(host_dir, "remote")))
    api.run(sandbox["id"], f"git -C /home/daytona/repo remote set-url origin {shlex.quote(url)}")
    pushed = api.toolbox("POST", sandbox["id"], "/git/push", json={"path": "repo"})
    assert pushed.status_code == 400, pushed.text
    assert pushed.json()["code"] == "GIT_REMOTE_REFUSED"
