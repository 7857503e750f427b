"""The real ``daytonaflow ui`` as a subprocess, and the page helpers the browser tests share.

The server is started exactly as a user starts it (``daytonaflow ui --no-browser --port 0``); its
printed URL line is the only thing the tests learn about it. Browser helpers go through the
``data-testid``s of /work/ui-contract.md only, never through the frontend's markup or classes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from sandbox_dirs import traversable_temp_dir

if TYPE_CHECKING:
    from playwright.sync_api import FloatRect, Locator, Page

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
HELLO = EXAMPLES / "hello.yaml"

#: ``daytonaflow ui: http://127.0.0.1:PORT/?token=TOKEN``, as the contract says it is printed.
URL_LINE = re.compile(r"daytonaflow ui: (?P<base>http://[^\s?]+?)/\?token=(?P<token>[^\s&#]+)")
#: Generous: on a loaded 2-core machine the first import of the app and the backend takes seconds.
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0
#: Every non-GET API request needs it (CSRF); the frontend always sends it.
UI_HEADER = {"X-Daytonaflow-UI": "1"}
#: What a run's sandboxes may end as once the run is over: nothing may still be held.
FINAL_RESOURCE_STATES = {"released", "reclaimed"}


class UiServerError(Exception):
    """``daytonaflow ui`` did not start, printed no URL line, or did not stop when asked."""


def daytonaflow_command() -> str:
    """The ``daytonaflow`` script of the venv running the tests (what ``pip install`` put there)."""
    found = shutil.which("daytonaflow", path=str(Path(sys.executable).parent))
    if found is None:
        raise UiServerError(f"no daytonaflow command beside {sys.executable}: install the package here")
    return found


@dataclass
class UiServer:
    """One running ``daytonaflow ui`` process."""

    base_url: str
    token: str
    db: Path
    #: The environment CLI commands run in: the server's own (run database and state home), so they
    #: share the UI's embedded backend as a user's commands do.
    cli_env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    #: The embedded backend's state directory (``$XDG_DATA_HOME`` of the server).
    state_home: Path | None = None
    #: Mount points under ``state_home`` still mounted once the process had exited (set on stop;
    #: they are unmounted then, so a failing server does not leak loop devices into the machine).
    leftover_mounts: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The URL the server printed: opening it sets the session cookie."""
        return f"{self.base_url}/?token={self.token}"

    def client(self) -> httpx.Client:
        """An API client as the frontend is one: the token (as a header) and the CSRF header."""
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.token}", **UI_HEADER},
            timeout=60,
        )

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """``daytonaflow ARGS`` in the server's environment (same run database, same state home)."""
        return subprocess.run(
            [daytonaflow_command(), *args],
            env=self.cli_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _server_env(db: Path, state_home: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The embedded local backend, never a cloud account the developer happens to have configured.
    for name in ("DAYTONA_API_KEY", "DAYTONA_API_URL", "DAYTONA_TARGET"):
        env.pop(name, None)
    env["DAYTONAFLOW_DB"] = str(db)
    env["XDG_DATA_HOME"] = str(state_home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _wait_for_url_line(process: subprocess.Popen[bytes], log: Path) -> re.Match[str]:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        found = URL_LINE.search(text)
        if found is not None:
            return found
        if process.poll() is not None:
            raise UiServerError(
                f"daytonaflow ui exited {process.returncode} before printing its URL:\n{text}"
            )
        time.sleep(0.05)
    raise UiServerError(
        f"daytonaflow ui printed no URL line within {START_TIMEOUT_SECONDS:.0f} s:\n"
        f"{log.read_text(errors='replace')}"
    )


def _stop(process: subprocess.Popen[bytes]) -> bool:
    """SIGINT as Ctrl-C sends it; SIGKILL when that did not stop it. True when SIGINT sufficed."""
    if process.poll() is not None:
        return True
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
        return True
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
        return False


def mounts_under(directory: Path) -> list[str]:
    """Mount points at or below ``directory`` (from /proc/self/mountinfo; octal escapes decoded)."""
    prefix = str(directory.resolve())
    found = []
    for row in Path("/proc/self/mountinfo").read_text().splitlines():
        point = row.split()[4].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return found


def _unmount_leftovers(directory: Path) -> list[str]:
    leftovers = mounts_under(directory)
    for point in reversed(leftovers):
        subprocess.run(["umount", point], capture_output=True, check=False)
    return leftovers


@contextlib.contextmanager
def running_ui_server(
    work: Path, canvases: Sequence[Path] = (), extra_args: Sequence[str] = ()
) -> Iterator[UiServer]:
    """``daytonaflow ui --no-browser --port 0 --host 127.0.0.1 --db WORK/runs.db [CANVAS ...]``."""
    work.mkdir(parents=True, exist_ok=True)
    db = work / "runs.db"
    log = work / "ui-server.log"
    with traversable_temp_dir("daytonaflow-ui-state-") as state_home:
        env = _server_env(db, state_home)
        argv = [
            daytonaflow_command(),
            "ui",
            *(str(path) for path in canvases),
            "--no-browser",
            "--port",
            "0",
            "--host",
            "127.0.0.1",
            "--db",
            str(db),
            *extra_args,
        ]
        with log.open("wb") as sink:
            process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=work)
        server: UiServer | None = None
        try:
            found = _wait_for_url_line(process, log)
            server = UiServer(found["base"], found["token"], db, env, log, process)
            server.state_home = state_home
            yield server
        finally:
            stopped_by_sigint = _stop(process)
            leftovers = _unmount_leftovers(state_home)
            if server is not None:
                server.leftover_mounts = leftovers
        if not stopped_by_sigint:
            raise UiServerError(
                f"daytonaflow ui did not stop within {STOP_TIMEOUT_SECONDS:.0f} s of SIGINT:\n"
                f"{log.read_text(errors='replace')}"
            )


# --- the page, through the contract's data-testids -------------------------------------------------


def by_testid(page: Page, name: str) -> Locator:
    return page.get_by_test_id(name)


NODE_IDS_JS = """() => [...document.querySelectorAll('[data-testid^="node-"]')]
    .map((element) => element.dataset.testid)
    .filter((name) => !/^node-(title|badge|output|time)-/.test(name))
    .filter((name) => name !== 'node-name' && name !== 'node-issues')
    .map((name) => name.slice('node-'.length))"""


def node_ids(page: Page) -> list[str]:
    """The ids of the graph's nodes (``node-<id>``, without the other ``node-…`` testids)."""
    found: list[str] = page.evaluate(NODE_IDS_JS)
    return found


def add_from_palette(page: Page, component: str) -> str:
    """Double-click a palette item (the contract's "adds at a free spot"); returns the new node's id."""
    before = set(node_ids(page))
    by_testid(page, f"palette-item-{component}").dblclick()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        added = set(node_ids(page)) - before
        if len(added) == 1:
            return added.pop()
        if len(added) > 1:
            raise AssertionError(f"one double-click on palette-item-{component} added {sorted(added)}")
        page.wait_for_timeout(50)
    raise AssertionError(f"double-clicking palette-item-{component} added no node-<id> to the canvas")


def _settled_box(page: Page, locator: Locator) -> FloatRect:
    """The element's box once it stopped moving (a fit-view animation may still be running)."""
    previous = None
    for _ in range(40):
        box = locator.bounding_box()
        if box is not None and box == previous:
            return box
        previous = box
        page.wait_for_timeout(50)
    raise AssertionError(f"{locator} did not come to rest on screen (last box {previous})")


def drag(page: Page, source: Locator, target: Locator) -> None:
    """A real pointer drag (press, move in steps, release), as React Flow's connection needs."""
    start = _settled_box(page, source)
    end = _settled_box(page, target)
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=12)
    page.mouse.up()


def fit(page: Page) -> None:
    """The fit-view button: every node on screen (the graph pane is narrower than the window)."""
    by_testid(page, "btn-fit").click()


def connect(page: Page, source: str, channel: str, target: str) -> None:
    """Drag from ``handle-<source>-<channel>`` to ``target-<target>`` and wait for the edge."""
    drag(page, by_testid(page, f"handle-{source}-{channel}"), by_testid(page, f"target-{target}"))
    by_testid(page, f"edge-{source}-{channel}-{target}").wait_for(state="attached")


def select_node(page: Page, node: str) -> None:
    by_testid(page, f"node-title-{node}").click()
    by_testid(page, "inspector").wait_for()


def set_field(page: Page, path: str, value: Any) -> None:
    """Set the form input ``field-<path>`` as a user would, whatever kind of input the form chose."""
    field = by_testid(page, f"field-{path}")
    kind = field.evaluate("(element) => element.tagName.toLowerCase() + ':' + (element.type || '')")
    if kind.startswith("select:"):
        field.select_option(str(value))
    elif kind == "input:checkbox":
        field.set_checked(bool(value))
    else:
        field.fill(value if isinstance(value, str) else json.dumps(value))


def save(page: Page) -> dict[str, Any]:
    """Save a canvas opened from a file, in place; returns the server's answer (``written``, ``issues``).

    The answer is awaited on the network: a save that changes nothing leaves no trace in the file."""
    with page.expect_response(_is_save) as saved:
        by_testid(page, "btn-save").click()
    return _answer(saved.value)


def save_as(page: Page, path: Path) -> dict[str, Any]:
    """Save a canvas that has no file yet (new, or new from an example): the save dialog, ``path``."""
    by_testid(page, "btn-save").click()
    field = by_testid(page, "save-path")
    field.fill(str(path))
    with page.expect_response(_is_save) as saved:
        by_testid(page, "save-confirm").click()
    return _answer(saved.value)


def _answer(response: Any) -> dict[str, Any]:
    assert response.ok, f"PUT /api/canvas answered {response.status}: {response.text()[:500]}"
    answer: dict[str, Any] = response.json()
    return answer


def _is_save(response: Any) -> bool:
    return bool(response.request.method == "PUT" and response.url.split("?")[0].endswith("/api/canvas"))


def open_path(page: Page, path: Path) -> None:
    by_testid(page, "btn-open").click()
    by_testid(page, "open-path").fill(str(path))
    by_testid(page, "open-confirm").click()


def open_listed(page: Page, name: str) -> None:
    """Open one of ``/api/canvases``' files (the CANVAS arguments and the examples) by its name.

    A CANVAS argument opens in place; an example opens as a copy (Save asks for a path)."""
    by_testid(page, "btn-open").click()
    by_testid(page, f"open-file-{name}").click()


def new_from_example(page: Page, name: str) -> None:
    """New → from an example: a copy with no file, so Save asks for a path."""
    by_testid(page, "btn-new").click()
    by_testid(page, f"new-example-{name}").click()


def open_copy(page: Page, source: Path, directory: Path) -> Path:
    """Copy ``source`` into ``directory`` and open the copy by path (the open dialog's path field)."""
    copy = directory / source.name
    shutil.copyfile(source, copy)
    open_path(page, copy)
    return copy


def start_run(page: Page, run_input: dict[str, Any] | None = None) -> str:
    """Run → input dialog → start; waits for the run view and returns its run id."""
    by_testid(page, "btn-run").click()
    if run_input is not None:
        by_testid(page, "run-input").fill(json.dumps(run_input))
    by_testid(page, "run-start").click()
    view = by_testid(page, "run-view")
    view.wait_for()
    run_id = view.get_attribute("data-run-id")
    assert run_id, "run-view has no data-run-id"
    return run_id


def wait_for_run_status(page: Page, statuses: Sequence[str], timeout_ms: float = 180_000) -> str:
    """Wait until ``run-view``'s ``data-status`` is one of ``statuses``; returns it."""
    page.wait_for_function(
        """(statuses) => {
            const view = document.querySelector('[data-testid="run-view"]');
            return view !== null && statuses.includes(view.getAttribute('data-status'));
        }""",
        arg=list(statuses),
        timeout=timeout_ms,
    )
    status = by_testid(page, "run-view").get_attribute("data-status")
    assert status is not None
    return status


def wait_for_node_state(page: Page, node: str, states: Sequence[str], timeout_ms: float = 120_000) -> None:
    page.wait_for_function(
        """([node, states]) => {
            const element = document.querySelector(`[data-testid="node-${node}"]`);
            return element !== null && states.includes(element.getAttribute('data-state'));
        }""",
        arg=[node, list(states)],
        timeout=timeout_ms,
    )


def wait_for_execution(server: UiServer, run_id: str, node: str, status: str, timeout: float = 120) -> None:
    """Poll ``GET /api/runs/<id>`` until ``node``'s execution has ``status`` (the server's truth)."""
    deadline = time.monotonic() + timeout
    with server.client() as api:
        while True:
            executions = api.get(f"/api/runs/{run_id}").json()["executions"]
            if any(e["node"] == node and e["status"] == status for e in executions):
                return
            assert time.monotonic() < deadline, f"{node} never {status}: {executions}"
            time.sleep(0.1)


def wait_until_no_sandboxes(server: UiServer, timeout: float = 30) -> list[dict[str, Any]]:
    """Poll ``GET /api/sandboxes`` until the backend holds none (or the deadline); returns the last list."""
    deadline = time.monotonic() + timeout
    with server.client() as api:
        while True:
            response = api.get("/api/sandboxes")
            response.raise_for_status()
            sandboxes: list[dict[str, Any]] = response.json()["sandboxes"]
            if not sandboxes or time.monotonic() >= deadline:
                return sandboxes
            time.sleep(0.2)


def write_canvas(path: Path, name: str, nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> Path:
    """A canvas document written as YAML (the format the CLI runs)."""
    import yaml

    document = {
        "apiVersion": "v1",
        "kind": "Canvas",
        "metadata": {"name": name},
        "spec": {"nodes": nodes, "edges": edges},
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def sandbox_command_canvas(path: Path, name: str, command: str, timeout: int = 120) -> Path:
    """start → createSandbox → executeCommand(``command``) → deleteSandbox, laid out in a row."""
    sandbox = '{{ $["Create Sandbox"].data.id }}'
    nodes = [
        {"id": "start", "name": "Manual Run", "type": "TYPE_TRIGGER", "component": "start",
         "position": {"x": 0, "y": 0}},
        {"id": "create-sandbox", "name": "Create Sandbox", "type": "TYPE_ACTION",
         "component": "daytona.createSandbox", "configuration": {"autoStopInterval": 15},
         "position": {"x": 300, "y": 0}},
        {"id": "command", "name": "Command", "type": "TYPE_ACTION", "component": "daytona.executeCommand",
         "configuration": {"sandbox": sandbox, "command": command, "timeout": timeout},
         "position": {"x": 600, "y": 0}},
        {"id": "delete-sandbox", "name": "Delete Sandbox", "type": "TYPE_ACTION",
         "component": "daytona.deleteSandbox", "configuration": {"sandbox": sandbox},
         "position": {"x": 900, "y": 0}},
    ]  # fmt: skip
    edges = [
        {"sourceId": "start", "targetId": "create-sandbox", "channel": "default"},
        {"sourceId": "create-sandbox", "targetId": "command", "channel": "default"},
        {"sourceId": "command", "targetId": "delete-sandbox", "channel": "success"},
    ]
    return write_canvas(path, name, nodes, edges)
