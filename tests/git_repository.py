"""Local git repositories for tests: a small one for canvases that check one out (``file://`` needs no
network), bare remotes to push to, and one served over loopback HTTP behind basic auth."""

from __future__ import annotations

import base64
import contextlib
import http.server
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path


def make_repository(root: Path, *, passing: bool) -> str:
    """A small git repository with one unittest test, passing or not; returns its file:// URL."""
    repository = root / ("passing" if passing else "failing")
    repository.mkdir()
    (repository / "test_sum.py").write_text(
        "import unittest\n\n\nclass SumTest(unittest.TestCase):\n"
        f"    def test_sum(self):\n        self.assertEqual(1 + 1, {2 if passing else 3})\n"
    )
    git = ["git", "-c", "user.name=daytonaflow", "-c", "user.email=tests@daytonaflow.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main", str(repository)], check=True)
    subprocess.run([*git, "-C", str(repository), "add", "."], check=True)
    subprocess.run([*git, "-C", str(repository), "commit", "-qm", "tests"], check=True)
    return f"file://{repository}"


# ---- bare remotes on the host, and one served over HTTP with basic auth ----------------------------

_IDENTITY = ["-c", "user.name=Host Tester", "-c", "user.email=host@example.com"]


def host_git(*args: str) -> str:
    """The host's git (never a sandbox's), with an identity of its own; its stdout."""
    result = subprocess.run(["git", *_IDENTITY, *args], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def make_bare_remote(root: Path, name: str) -> Path:
    """A bare repository ``root/name.git`` with one commit on ``main``, writable by any uid (a
    shared remote the sandboxes' host uids push to). ``root`` must be traversable by them."""
    bare = root / f"{name}.git"
    host_git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    work = root / f"{name}-seed"
    host_git("clone", "--quiet", str(bare), str(work))
    (work / "README.md").write_text("seed\n")
    host_git("-C", str(work), "add", "README.md")
    host_git("-C", str(work), "commit", "--quiet", "-m", "seed")
    host_git("-C", str(work), "push", "--quiet", "origin", "HEAD:refs/heads/main")
    subprocess.run(["chmod", "-R", "a+rwX", str(bare)], check=True)
    return bare


class _GitHttpHandler(http.server.BaseHTTPRequestHandler):
    """``git http-backend`` as CGI behind basic auth (one user), for the smart HTTP protocol."""

    project_root = ""
    expected = ""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _serve(self) -> None:
        if self.headers.get("Authorization") != self.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": self.project_root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": "tester",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
        }
        output = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        head, _, payload = output.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode().split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@contextlib.contextmanager
def served_over_http(bare: Path, username: str, password: str) -> Iterator[str]:
    """``bare`` at ``http://127.0.0.1:PORT/NAME.git`` (loopback only), for ``username:password``."""
    expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    attributes = {"project_root": str(bare.parent), "expected": expected}
    handler = type("Handler", (_GitHttpHandler,), attributes)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{bare.name}"
    finally:
        server.shutdown()
        server.server_close()
