"""The toolbox API: processes, code, sessions, files and git, run inside real sandboxes."""

from __future__ import annotations

import base64
import http.server
import shlex
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from localserver_testkit import Api

pytestmark = pytest.mark.sandbox


# ---- process/execute --------------------------------------------------------------------------------


def test_execute_returns_exit_code_and_combined_output(api: Api, sandbox: dict[str, Any]) -> None:
    result = api.run(sandbox["id"], "echo out; echo err >&2; exit 3")
    assert result == {"exitCode": 3, "result": "out\nerr\n"}


def test_execute_runs_in_the_home_by_default_and_honours_cwd(api: Api, sandbox: dict[str, Any]) -> None:
    assert api.run(sandbox["id"], "pwd")["result"] == "/home/daytona\n"
    assert api.run(sandbox["id"], "pwd", cwd="/tmp")["result"] == "/tmp\n"


def test_execute_passes_envs(api: Api, sandbox: dict[str, Any]) -> None:
    assert api.run(sandbox["id"], "echo $A-$B", envs={"A": "1", "B": "two"})["result"] == "1-two\n"


INVALID_ENVS = {
    "a boolean value": ({"A": False}, "envs.A"),
    "a null value": ({"A": None}, "envs.A"),
    "a name with NUL": ({"A\u0000": "x"}, "envs.A\\x00"),
    "a name with =": ({"A=B": "x"}, "envs.A=B"),
    "a value with NUL": ({"A": "x\u0000"}, "envs.A"),
    "not an object": (["A"], "envs"),
}


@pytest.mark.parametrize(("envs", "field"), INVALID_ENVS.values(), ids=INVALID_ENVS.keys())
@pytest.mark.parametrize("endpoint", ["/process/execute", "/process/code-run"])
def test_exec_envs_that_a_process_cannot_receive_are_a_400_naming_them(
    api: Api, sandbox: dict[str, Any], envs: Any, field: str, endpoint: str
) -> None:
    body = {"command": "true", "code": "pass", "language": "python", "envs": envs}
    response = api.toolbox("POST", sandbox["id"], endpoint, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(field)
    # The sandbox still runs commands: nothing of the refused env stuck.
    assert api.run(sandbox["id"], "echo fine")["result"] == "fine\n"


def test_execute_without_command_is_a_400(api: Api, sandbox: dict[str, Any]) -> None:
    response = api.toolbox("POST", sandbox["id"], "/process/execute", json={"cwd": "/tmp"})
    assert response.status_code == 400
    assert "command" in response.json()["message"]


def test_execute_timeout_kills_the_process_group_and_keeps_partial_output(
    api: Api, sandbox: dict[str, Any]
) -> None:
    response = api.toolbox(
        "POST",
        sandbox["id"],
        "/process/execute",
        json={"command": "echo started; sleep 300 & sleep 300; echo never", "timeout": 1},
    )
    assert response.status_code == 408
    body = response.json()
    assert body["code"] == "PROCESS_EXECUTION_TIMEOUT"
    assert body["result"] == "started\n"
    assert "sleep 300" not in api.run(sandbox["id"], "ps -eo args")["result"]


def test_a_background_process_outlives_its_command(api: Api, sandbox: dict[str, Any]) -> None:
    api.run(sandbox["id"], "nohup sleep 300 >/dev/null 2>&1 &")
    assert "sleep 300" in api.run(sandbox["id"], "ps -eo args")["result"]


# ---- process/code-run -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "code", "expected"),
    [
        ("python", "import sys\nprint('py', sys.argv[1:])", "py ['a']\n"),
        ("javascript", "console.log('js', process.argv.slice(2).join())", "js a\n"),
        (
            "typescript",
            "const who: string = 'ts';\nconsole.log(who, process.argv.slice(2).join());",
            "ts a\n",
        ),
    ],
)
def test_code_run_runs_each_language(
    api: Api, sandbox: dict[str, Any], language: str, code: str, expected: str
) -> None:
    response = api.toolbox(
        "POST", sandbox["id"], "/process/code-run", json={"code": code, "language": language, "argv": ["a"]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {"exitCode": 0, "result": expected, "artifacts": {"charts": []}}


def test_code_run_reports_a_failing_program(api: Api, sandbox: dict[str, Any]) -> None:
    body = api.toolbox(
        "POST", sandbox["id"], "/process/code-run", json={"code": "raise SystemExit(4)", "language": "python"}
    ).json()
    assert body["exitCode"] == 4


def test_code_run_rejects_an_unknown_language(api: Api, sandbox: dict[str, Any]) -> None:
    response = api.toolbox(
        "POST", sandbox["id"], "/process/code-run", json={"code": "x", "language": "cobol"}
    )
    assert response.status_code == 400
    assert "cobol" in response.json()["message"]


# ---- sessions -------------------------------------------------------------------------------------------


def _session(api: Api, sandbox_id: str, name: str) -> None:
    response = api.toolbox("POST", sandbox_id, "/process/session", json={"sessionId": name})
    assert response.status_code == 201


def _exec(api: Api, sandbox_id: str, session: str, command: str, **body: Any) -> dict[str, Any]:
    response = api.toolbox(
        "POST", sandbox_id, f"/process/session/{session}/exec", json={"command": command, **body}
    )
    assert response.status_code in (200, 202), response.text
    result: dict[str, Any] = response.json()
    return result


def test_session_commands_share_cwd_and_environment(api: Api, sandbox: dict[str, Any]) -> None:
    _session(api, sandbox["id"], "shared")
    _exec(api, sandbox["id"], "shared", "mkdir -p work && cd work && export STAGE=build")
    result = _exec(api, sandbox["id"], "shared", "pwd; echo $STAGE; echo oops >&2")
    assert result["exitCode"] == 0
    assert result["stdout"] == "/home/daytona/work\nbuild\n"
    assert result["stderr"] == "oops\n"


def test_session_exec_reports_the_exit_code(api: Api, sandbox: dict[str, Any]) -> None:
    _session(api, sandbox["id"], "codes")
    assert _exec(api, sandbox["id"], "codes", "false")["exitCode"] == 1


def test_async_exec_returns_202_then_status_and_logs(api: Api, sandbox: dict[str, Any]) -> None:
    _session(api, sandbox["id"], "bg")
    response = api.toolbox(
        "POST",
        sandbox["id"],
        "/process/session/bg/exec",
        json={"command": "echo a; sleep 0.3; echo b", "runAsync": True},
    )
    assert response.status_code == 202
    command_id = response.json()["cmdId"]
    with api.http.stream(
        "GET",
        f"{api.server.toolbox_url}/{sandbox['id']}/process/session/bg/command/{command_id}/logs",
        params={"follow": "true"},
    ) as stream:
        followed = b"".join(stream.iter_bytes())
    assert followed == b"a\nb\n"
    status = api.toolbox("GET", sandbox["id"], f"/process/session/bg/command/{command_id}").json()
    assert status == {"id": command_id, "command": "echo a; sleep 0.3; echo b", "exitCode": 0}
    logs = api.toolbox("GET", sandbox["id"], f"/process/session/bg/command/{command_id}/logs").json()
    assert logs == {"output": "a\nb\n", "stdout": "a\nb\n", "stderr": ""}


def test_get_session_lists_its_commands(api: Api, sandbox: dict[str, Any]) -> None:
    _session(api, sandbox["id"], "listing")
    first = _exec(api, sandbox["id"], "listing", "true")
    session = api.toolbox("GET", sandbox["id"], "/process/session/listing").json()
    assert session == {
        "sessionId": "listing",
        "commands": [{"id": first["cmdId"], "command": "true", "exitCode": 0}],
    }


def test_a_long_session_keeps_only_recent_output(api: Api, sandbox: dict[str, Any]) -> None:
    _session(api, sandbox["id"], "long")
    first = _exec(api, sandbox["id"], "long", "echo first")
    for index in range(101):
        _exec(api, sandbox["id"], "long", f"echo {index}")
    logs = api.toolbox("GET", sandbox["id"], f"/process/session/long/command/{first['cmdId']}/logs").json()
    assert "discarded" in logs["output"]
    status = api.toolbox("GET", sandbox["id"], f"/process/session/long/command/{first['cmdId']}").json()
    assert status["exitCode"] == 0


def test_deleted_session_is_gone(api: Api, sandbox: dict[str, Any]) -> None:
    _session(api, sandbox["id"], "short")
    assert api.toolbox("DELETE", sandbox["id"], "/process/session/short").status_code == 204
    assert api.toolbox("GET", sandbox["id"], "/process/session/short").status_code == 404


def test_deleting_a_session_ends_its_commands_in_their_own_process_groups(
    api: Api, sandbox: dict[str, Any]
) -> None:
    # coreutils timeout runs its command in a new process group, out of the session shell's reach.
    _session(api, sandbox["id"], "grouped")
    _exec(api, sandbox["id"], "grouped", "timeout 300 sleep 271.25", runAsync=True)
    count = "for p in /proc/[0-9]*; do tr '\\0\\n' '  ' < $p/cmdline; echo; done | grep -c '^sleep 271.25 $'"
    probe = f"bash -c {shlex.quote(count + ' || true')}"
    deadline = time.monotonic() + 30
    while api.run(sandbox["id"], probe)["result"] != "1\n" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert api.toolbox("DELETE", sandbox["id"], "/process/session/grouped").status_code == 204
    assert api.run(sandbox["id"], probe)["result"] == "0\n"


def test_duplicate_session_is_a_409(api: Api, sandbox: dict[str, Any]) -> None:
    _session(api, sandbox["id"], "twice")
    response = api.toolbox("POST", sandbox["id"], "/process/session", json={"sessionId": "twice"})
    assert response.status_code == 409


# ---- files ----------------------------------------------------------------------------------------------


def test_upload_download_round_trip(api: Api, sandbox: dict[str, Any]) -> None:
    payload = bytes(range(256)) * 1000
    uploaded = api.toolbox(
        "POST",
        sandbox["id"],
        "/files/upload",
        params={"path": "data/blob.bin"},
        files={"file": ("b", payload)},
    )
    assert uploaded.status_code == 200, uploaded.text
    downloaded = api.toolbox(
        "GET", sandbox["id"], "/files/download", params={"path": "/home/daytona/data/blob.bin"}
    )
    assert downloaded.status_code == 200
    assert downloaded.content == payload


def test_folder_list_and_info(api: Api, sandbox: dict[str, Any]) -> None:
    created = api.toolbox(
        "POST", sandbox["id"], "/files/folder", params={"path": "/home/daytona/dir", "mode": "750"}
    )
    assert created.status_code == 201
    api.run(sandbox["id"], "echo hi > dir/f.txt")
    listing = api.toolbox("GET", sandbox["id"], "/files", params={"path": "/home/daytona/dir"}).json()
    assert [(f["name"], f["size"], f["isDir"]) for f in listing] == [("f.txt", 3, False)]
    info = api.toolbox("GET", sandbox["id"], "/files/info", params={"path": "/home/daytona/dir"}).json()
    assert info["isDir"] is True
    assert info["permissions"] == "0750"
    assert info["owner"] == "daytona"


@pytest.mark.parametrize("root", ["/home/daytona", "/tmp"])
def test_creating_a_writable_root_as_a_folder_is_a_no_op_that_keeps_its_mode(
    api: Api, sandbox: dict[str, Any], root: str
) -> None:
    before = api.run(sandbox["id"], f"stat -c %a {root}")["result"]
    created = api.toolbox("POST", sandbox["id"], "/files/folder", params={"path": root, "mode": "700"})
    assert created.status_code == 201, created.text
    assert api.run(sandbox["id"], f"stat -c %a {root}")["result"] == before


def test_a_folder_outside_the_writable_roots_is_still_refused(api: Api, sandbox: dict[str, Any]) -> None:
    for path in ("/home", "/etc/daytonaflow"):
        refused = api.toolbox("POST", sandbox["id"], "/files/folder", params={"path": path, "mode": "700"})
        assert refused.status_code == 403, (path, refused.text)


def test_uploading_onto_a_writable_root_is_a_400(api: Api, sandbox: dict[str, Any]) -> None:
    response = api.toolbox(
        "POST", sandbox["id"], "/files/upload", params={"path": "/tmp"}, files={"file": ("f", b"x")}
    )
    assert response.status_code == 400
    assert "is a directory" in response.json()["message"]


def test_delete_file(api: Api, sandbox: dict[str, Any]) -> None:
    api.run(sandbox["id"], "echo x > gone.txt")
    assert api.toolbox("DELETE", sandbox["id"], "/files", params={"path": "gone.txt"}).status_code == 204
    assert api.toolbox("GET", sandbox["id"], "/files/info", params={"path": "gone.txt"}).status_code == 404


def test_download_of_a_missing_file_is_a_404(api: Api, sandbox: dict[str, Any]) -> None:
    response = api.toolbox("GET", sandbox["id"], "/files/download", params={"path": "nope.txt"})
    assert response.status_code == 404
    assert response.json()["statusCode"] == 404


# ---- git clone ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("repo")

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e", *args],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    git("init", "-q", "-b", "main")
    (repo / "README.md").write_text("first\n")
    git("add", ".")
    git("commit", "-q", "-m", "first")
    (repo / "README.md").write_text("second\n")
    git("commit", "-q", "-am", "second")
    git("checkout", "-q", "-b", "feature")
    (repo / "FEATURE").write_text("feature\n")
    git("add", ".")
    git("commit", "-q", "-m", "feature")
    git("checkout", "-q", "main")
    return repo


def test_clone_a_local_path_into_the_home(api: Api, sandbox: dict[str, Any], repository: Path) -> None:
    response = api.toolbox(
        "POST", sandbox["id"], "/git/clone", json={"url": str(repository), "path": "project"}
    )
    assert response.status_code == 200, response.text
    result = api.run(sandbox["id"], "cat project/README.md; stat -c %U project/README.md")
    assert result["result"] == "second\ndaytona\n"


def test_clone_a_file_url_at_a_branch(api: Api, sandbox: dict[str, Any], repository: Path) -> None:
    response = api.toolbox(
        "POST",
        sandbox["id"],
        "/git/clone",
        json={"url": f"file://{repository}", "path": "/home/daytona/feat", "branch": "feature"},
    )
    assert response.status_code == 200, response.text
    assert api.run(sandbox["id"], "cat feat/FEATURE")["result"] == "feature\n"


def test_clone_checks_out_a_commit(api: Api, sandbox: dict[str, Any], repository: Path) -> None:
    first = subprocess.run(
        ["git", "-C", str(repository), "rev-list", "--max-parents=0", "HEAD"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    response = api.toolbox(
        "POST", sandbox["id"], "/git/clone", json={"url": str(repository), "path": "old", "commit_id": first}
    )
    assert response.status_code == 200, response.text
    assert api.run(sandbox["id"], "cat old/README.md")["result"] == "first\n"


def test_clone_of_a_missing_repository_is_a_400_naming_git(api: Api, sandbox: dict[str, Any]) -> None:
    response = api.toolbox(
        "POST", sandbox["id"], "/git/clone", json={"url": "/nonexistent/repo", "path": "x"}
    )
    assert response.status_code == 400
    assert "git clone failed" in response.json()["message"]


PASSWORD = "s3cret-pw-4471"


@pytest.fixture(scope="module")
def private_git_url(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A dumb-HTTP git server on the host's loopback that wants Basic auth alice:PASSWORD."""
    served = tmp_path_factory.mktemp("served")
    subprocess.run(["git", "clone", "-q", "--bare", str(repository), str(served / "repo.git")], check=True)
    subprocess.run(["git", "-C", str(served / "repo.git"), "update-server-info"], check=True)
    expected = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(served), **kwargs)

        def do_GET(self) -> None:
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/repo.git"
    httpd.shutdown()


def test_clone_with_username_and_password(api: Api, sandbox: dict[str, Any], private_git_url: str) -> None:
    response = api.toolbox(
        "POST",
        sandbox["id"],
        "/git/clone",
        json={"url": private_git_url, "path": "private", "username": "alice", "password": PASSWORD},
    )
    assert response.status_code == 200, response.text
    assert api.run(sandbox["id"], "cat private/README.md")["result"] == "second\n"


def test_failed_clone_never_echoes_nor_stores_the_password(
    api: Api, sandbox: dict[str, Any], private_git_url: str
) -> None:
    wrong = PASSWORD + "-wrong"
    response = api.toolbox(
        "POST",
        sandbox["id"],
        "/git/clone",
        json={"url": private_git_url, "path": "denied", "username": "alice", "password": wrong},
    )
    assert response.status_code == 400
    assert wrong not in response.text
    assert PASSWORD not in response.text


def test_no_file_of_the_server_holds_a_clone_password(
    api: Api, sandbox: dict[str, Any], private_git_url: str
) -> None:
    api.toolbox(
        "POST",
        sandbox["id"],
        "/git/clone",
        json={"url": private_git_url, "path": "again", "username": "alice", "password": PASSWORD},
    )
    leaks = [
        path
        for path in api.server.state_dir.rglob("*")
        if path.is_file() and not path.is_symlink() and PASSWORD.encode() in path.read_bytes()
    ]
    assert leaks == []


def test_legacy_toolbox_path_under_the_api_works(api: Api, sandbox: dict[str, Any]) -> None:
    response = api.api(
        "POST", f"/toolbox/{sandbox['id']}/toolbox/process/execute", json={"command": "echo legacy"}
    )
    assert response.status_code == 200
    assert response.json()["result"] == "legacy\n"
