"""examples/webhook-report.yaml as a user runs it: ``daytonaflow up`` on the embedded backend
(a real ``daytonaflow serve``), a signed webhook naming a repository whose tests fail, and the
report pushed to a branch of a bare remote on the host, checked with the host's git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from git_repository import host_git, make_repository
from sandbox_dirs import traversable_temp_dir
from serve_process import serve_process
from test_cli_up import running_up, runs, wait_for

from daytonaflow.runner import RunStore

pytestmark = pytest.mark.sandbox

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "webhook-report.yaml"
SIGNING_KEY = "example-signing-key-5d1e"
PUSH_TOKEN = "example-push-token-93b0"


def _bare_remote_of_failing_tests(root: Path) -> Path:
    """A bare remote (writable by the sandboxes' uids) holding a repository whose test fails."""
    source = make_repository(root, passing=False).removeprefix("file://")
    bare = root / "app.git"
    host_git("clone", "--quiet", "--bare", source, str(bare))
    subprocess.run(["chmod", "-R", "a+rwX", str(bare)], check=True)
    return bare


def test_a_signed_webhook_runs_the_tests_and_pushes_the_failure_report_to_a_new_branch() -> None:
    with traversable_temp_dir("daytonaflow-example-") as root, serve_process() as served:
        bare = _bare_remote_of_failing_tests(root)
        secrets = {
            "DAYTONAFLOW_SECRET_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
            "DAYTONAFLOW_SECRET_GIT_PUSH_TOKEN": PUSH_TOKEN,
        }
        db = root / "runs.db"
        with running_up(EXAMPLE, db, env={**served.env(), **secrets}) as up:
            body = f'{{"repository": "file://{bare}"}}'.encode()
            assert up.post(body, secret="not-the-key").status_code == 401
            reply = up.post(body, secret=SIGNING_KEY)
            assert reply.status_code == 202, reply.text
            wait_for(lambda: any(r.finished for r in runs(db)), timeout=300)
            code, output = up.stop()
        (record,) = runs(db)
        assert record.status == "succeeded", (record.error, output)
        with RunStore(db) as store:
            ran = [execution.node_id for execution in store.executions(record.id)]
            stored = repr([e.event for e in store.events(record.id)])
        assert ran == [
            "webhook",
            "checkout",
            "run-tests",
            "write-report",
            "report-branch",
            "commit-report",
            "push-report",
            "cleanup-after-report",
        ]
        (branch,) = [
            b.strip() for b in host_git("-C", str(bare), "branch", "--list", "test-report-*").splitlines()
        ]
        report = host_git("-C", str(bare), "show", f"{branch}:test-report.md")
        assert "Exit code: 1" in report
        assert "AssertionError: 2 != 3" in report
        assert host_git("-C", str(bare), "log", "-1", "--format=%an %s", branch) == (
            "daytonaflow Test report: exit code 1"
        )
        assert SIGNING_KEY not in stored + output and PUSH_TOKEN not in stored + output
        left = httpx.get(f"{served.api_url}/sandbox", headers={"Authorization": f"Bearer {served.api_key}"})
        assert left.json()["items"] == []
        assert code == 0
