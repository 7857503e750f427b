"""examples/webhook-report.yaml as a user runs it: ``daytonaflow up`` on the embedded backend
(a real ``daytonaflow serve``), signed webhooks, a repository whose tests fail (and, on the way,
point the clone's remote elsewhere), and the report pushed to a branch of the canvas's remote,
checked with the host's git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from git_repository import host_git
from sandbox_dirs import traversable_temp_dir
from serve_process import serve_process
from test_cli_up import running_up, runs, wait_for

from daytonaflow.runner import RunStore

pytestmark = pytest.mark.sandbox

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "webhook-report.yaml"
CANVAS_REPOSITORY = "repository: https://github.com/org/app.git"
SIGNING_KEY = "example-signing-key-5d1e"
PUSH_TOKEN = "example-push-token-93b0"

#: A failing test that, like hostile code under test could, points its clone's origin at another
#: remote before failing: a push from that sandbox would go there, with the token.
_HIJACKING_TEST = """\
import subprocess
import unittest


class SumTest(unittest.TestCase):
    def test_sum(self):
        subprocess.run(["git", "remote", "set-url", "origin", "file://{attacker}"], check=True)
        self.assertEqual(1 + 1, 3)
"""


def _bare(root: Path, name: str, source: Path) -> Path:
    """A bare clone of ``source``, writable by the sandboxes' uids."""
    bare = root / f"{name}.git"
    host_git("clone", "--quiet", "--bare", str(source), str(bare))
    subprocess.run(["chmod", "-R", "a+rwX", str(bare)], check=True)
    return bare


def _remotes(root: Path) -> tuple[Path, Path]:
    """The canvas's remote and the one the tested code redirects to, both with the failing test."""
    source = root / "app"
    source.mkdir()
    (source / "test_sum.py").write_text(_HIJACKING_TEST.format(attacker=root / "attacker.git"))
    host_git("init", "--quiet", "--initial-branch=main", str(source))
    host_git("-C", str(source), "add", ".")
    host_git("-C", str(source), "commit", "--quiet", "-m", "tests")
    return _bare(root, "app", source), _bare(root, "attacker", source)


def _canvas_for(root: Path, remote: Path) -> Path:
    """The example with its configured repository replaced by ``remote`` (and nothing else)."""
    text = EXAMPLE.read_text()
    assert text.count(CANVAS_REPOSITORY) == 1
    canvas = root / "webhook-report.yaml"
    canvas.write_text(text.replace(CANVAS_REPOSITORY, f"repository: file://{remote}"))
    return canvas


def _report_branches(bare: Path) -> list[str]:
    listed = host_git("-C", str(bare), "branch", "--list", "test-report-*")
    return [line.strip() for line in listed.splitlines()]


def test_a_signed_webhook_runs_the_tests_and_a_fresh_sandbox_pushes_the_report_to_the_canvas_remote() -> None:
    with traversable_temp_dir("daytonaflow-example-") as root, serve_process() as served:
        remote, attacker = _remotes(root)
        secrets = {
            "DAYTONAFLOW_SECRET_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
            "DAYTONAFLOW_SECRET_GIT_PUSH_TOKEN": PUSH_TOKEN,
        }
        db = root / "runs.db"
        with running_up(_canvas_for(root, remote), db, env={**served.env(), **secrets}) as up:
            # The body names a branch only; a repository in it is not read.
            body = b'{"branch": "main", "repository": "https://attacker.example/x.git"}'
            assert up.post(body, secret="not-the-key").status_code == 401
            reply = up.post(body, secret=SIGNING_KEY)
            assert reply.status_code == 202, reply.text
            wait_for(lambda: any(r.finished for r in runs(db)), timeout=300)
            code, output = up.stop()
        (record,) = runs(db)
        assert record.status == "succeeded", (record.error, output)
        # The tested code pointed its clone at the attacker's remote; the push went to the canvas's.
        assert _report_branches(attacker) == []
        (branch,) = _report_branches(remote)
        with RunStore(db) as store:
            ran = [execution.node_id for execution in store.executions(record.id)]
            stored = repr([e.event for e in store.events(record.id)])
        assert ran == [
            "webhook",
            "check-branch",
            "checkout",
            "run-tests",
            "cleanup-tested",
            "report-checkout",
            "write-report",
            "report-branch",
            "commit-report",
            "push-report",
            "cleanup-after-report",
        ]
        report = host_git("-C", str(remote), "show", f"{branch}:test-report.md")
        assert "Exit code: 1" in report
        assert "AssertionError: 2 != 3" in report
        assert host_git("-C", str(remote), "log", "-1", "--format=%an %s", branch) == (
            "daytonaflow Test report: exit code 1"
        )
        assert SIGNING_KEY not in stored + output and PUSH_TOKEN not in stored + output
        left = httpx.get(f"{served.api_url}/sandbox", headers={"Authorization": f"Bearer {served.api_key}"})
        assert left.json()["items"] == []
        assert code == 0
