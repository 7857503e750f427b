"""The canvas UI in headless Chromium: editor readiness, live-update latency, bundle size.

Runs the real ``daytonaflow ui --no-browser --port 0`` (loopback) and drives Debian's Chromium
through Playwright (``--chromium PATH``, default ``$DAYTONAFLOW_CHROMIUM`` or ``chromium``).

- ``ui.editor.interactive_200_nodes``: from navigating a fresh browser context to the app's URL
  (``daytonaflow ui BIG.yaml`` opens its CANVAS argument) to an interactive editor: the canvas's
  last node is rendered, a click on it selects it and the inspector shows its name (target ≤ 1 s).
  The baseline, measured in the same run and interleaved with it round by round, is the same for
  a 1-node canvas (``baseline.ui.editor.interactive_1_node``); their ratio is printed too. Medians
  of ``--repeat`` rounds after one warm-up round; the times are the bench's wall clock around the
  Playwright calls (a few ms of IPC included). ``ui.editor.phase.*`` say where the time went, on
  the page's clock from navigation start: the app's script run (DOMContentLoaded) and the canvas
  document received (the end of the ``/api/canvas`` response); the rest is rendering.
- ``ui.live.latency_p50`` / ``_p95``: from a node's event being stored (the ``created_at`` of its
  event row, written by a ``daytonaflow run`` process) to the browser showing the node emitted (a
  MutationObserver's ``Date.now()`` at the ``data-state`` change), over ``--fast-nodes`` quick
  commands of a CLI run watched in the run view (target p50 ≤ 100 ms). Both clocks are this
  machine's wall clock. The baseline, measured in the same page, is a plain API round trip
  (``ui.baseline.api_roundtrip_p50``): the floor of any update the browser fetches.
- ``ui.bundle.gzip``: the shipped assets gzipped, as ``ui/static/build.json`` states it, and as
  measured here over ``ui/static`` (target ≤ 600 KiB).

Prints ``name value unit`` lines.

    python bench/ui.py [--repeat 5] [--fast-nodes 30]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from daytonaflow.runner import RunStore

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "ui" / "static"
URL_LINE = re.compile(r"daytonaflow ui: (?P<base>http://[^\s?]+?)/\?token=(?P<token>[^\s&#]+)")
START_TIMEOUT_SECONDS = 60.0
STEP_TIMEOUT_MS = 60_000
TARGET_EDITOR_SECONDS = 1.0
TARGET_LATENCY_P50_MS = 100.0
TARGET_BUNDLE_KIB = 600.0
GRID_COLUMNS = 20
MIN_LATENCY_SAMPLES = 20
#: Holds the run before the measured nodes, long enough for the run view to load and subscribe.
HOLD_SECONDS = 5

#: Records, per graph node, the Date.now() at which its data-state turned emitted, for nodes first
#: seen in another state (a node already emitted when the page first saw it is no sample).
_OBSERVER_JS = """(() => {
    window.__seenPending = {};
    window.__emittedAt = {};
    const look = (element) => {
        const name = element.dataset ? element.dataset.testid : undefined;
        if (!name || !name.startsWith('node-') || !element.hasAttribute('data-state')) return;
        const node = name.slice('node-'.length);
        const state = element.getAttribute('data-state');
        if (state === 'emitted') {
            if (window.__seenPending[node] && !(node in window.__emittedAt)) {
                window.__emittedAt[node] = Date.now();
            }
        } else {
            window.__seenPending[node] = true;
        }
    };
    new MutationObserver((mutations) => {
        for (const mutation of mutations) {
            if (mutation.type === 'attributes') look(mutation.target);
            for (const added of mutation.addedNodes) {
                if (added.nodeType !== 1) continue;
                look(added);
                added.querySelectorAll('[data-state]').forEach(look);
            }
        }
    }).observe(document, {subtree: true, childList: true, attributes: true, attributeFilter: ['data-state']});
})();"""

_API_ROUNDTRIP_JS = """async (count) => {
    const samples = [];
    for (let i = 0; i < count; i++) {
        const started = performance.now();
        const response = await fetch('api/session', {credentials: 'same-origin'});
        await response.json();
        samples.push(performance.now() - started);
    }
    return samples;
}"""


class BenchError(Exception):
    """The UI did not do what it is measured doing."""


def line(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.4f} {unit}", flush=True)


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Server:
    base_url: str
    token: str
    db: Path
    #: For ``daytonaflow run`` beside the server: the same database, a backend state of its own.
    cli_env: dict[str, str]


def _command() -> str:
    found = shutil.which("daytonaflow", path=str(Path(sys.executable).parent))
    if found is None:
        raise BenchError(f"no daytonaflow command beside {sys.executable}: install the package in this venv")
    return found


@contextlib.contextmanager
def served(work: Path, canvases: Sequence[Path]) -> Iterator[Server]:
    """``daytonaflow ui`` on a free loopback port, stopped with SIGINT (then killed) on exit."""
    # The embedded backends' sandboxes traverse to their homes under these directories.
    work.mkdir(mode=0o711)
    (work / "state").mkdir(mode=0o711)
    (work / "cli-state").mkdir(mode=0o711)
    db = work / "runs.db"
    env = {key: value for key, value in os.environ.items() if not key.startswith("DAYTONA_")}
    env.update(DAYTONAFLOW_DB=str(db), PYTHONUNBUFFERED="1")
    cli_env = {**env, "XDG_DATA_HOME": str(work / "cli-state")}
    env["XDG_DATA_HOME"] = str(work / "state")
    log = work / "ui.log"
    argv = [_command(), "ui", *map(str, canvases), "--no-browser", "--port", "0", "--host", "127.0.0.1"]
    with log.open("wb") as sink:
        process = subprocess.Popen([*argv, "--db", str(db)], stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while (found := URL_LINE.search(log.read_text(errors="replace"))) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"daytonaflow ui printed no URL line:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)
        yield Server(found["base"], found["token"], db, cli_env)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        _unmount_leftovers(work)


def _unmount_leftovers(directory: Path) -> None:
    """Sandbox volumes a stopped server left mounted (said on stderr), unmounted so the temporary
    directory can go and no loop device is leaked into the machine."""
    prefix = str(directory.resolve()) + "/"
    rows = Path("/proc/self/mountinfo").read_text().splitlines()
    points = [row.split()[4] for row in rows if row.split()[4].startswith(prefix)]
    for point in reversed(points):
        print(f"bench: daytonaflow ui left {point} mounted; unmounting it", file=sys.stderr)
        subprocess.run(["umount", point], capture_output=True, check=False)


def write_canvas(path: Path, nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> Path:
    document = {"apiVersion": "v1", "kind": "Canvas", "metadata": {"name": path.stem}}
    document["spec"] = {"nodes": nodes, "edges": edges}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _chain(ids: Sequence[str], channels: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {"sourceId": a, "targetId": b, "channel": channel}
        for a, b, channel in zip(ids, ids[1:], channels, strict=False)
    ]


def _command_node(node_id: str, name: str, command: str, x: float, y: float) -> dict[str, Any]:
    return {
        "id": node_id,
        "name": name,
        "component": "daytona.executeCommand",
        "configuration": {"sandbox": '{{ $["Create Sandbox"].data.id }}', "command": command},
        "position": {"x": x, "y": y},
    }


def sandbox_chain(path: Path, commands: Sequence[tuple[str, str, str]], columns: int = GRID_COLUMNS) -> Path:
    """start → createSandbox → the (id, name, command) nodes → deleteSandbox, on a grid."""

    rows = (len(commands) + 3 + columns - 1) // columns

    def at(index: int) -> tuple[float, float]:
        # Rows bottom-up: the last node ends in the top row, clear of the minimap's corner.
        return float(index % columns * 300), float((rows - 1 - index // columns) * 160)

    nodes: list[dict[str, Any]] = [
        {"id": "start", "name": "Manual Run", "type": "TYPE_TRIGGER", "component": "start"}
    ]
    nodes += [{"id": "create-sandbox", "name": "Create Sandbox", "component": "daytona.createSandbox"}]
    nodes += [_command_node(node_id, name, command, 0, 0) for node_id, name, command in commands]
    nodes += [
        {
            "id": "delete-sandbox",
            "name": "Delete Sandbox",
            "component": "daytona.deleteSandbox",
            "configuration": {"sandbox": '{{ $["Create Sandbox"].data.id }}'},
        }
    ]
    for index, node in enumerate(nodes):
        x, y = at(index)
        node["position"] = {"x": x, "y": y}
    ids = [str(node["id"]) for node in nodes]
    channels = ["default", "default", *["success"] * len(commands)]
    return write_canvas(path, nodes, _chain(ids, channels))


def one_node(path: Path) -> Path:
    start = {"id": "start", "name": "Manual Run", "type": "TYPE_TRIGGER", "component": "start"}
    return write_canvas(path, [{**start, "position": {"x": 0, "y": 0}}], [])


def big_canvas(path: Path, count: int) -> Path:
    commands = [(f"step-{i}", f"Step {i}", f"echo {i}") for i in range(count - 3)]
    return sandbox_chain(path, commands)


#: Where the time went, from the page's own clock (ms since navigation start): the app's script
#: run (DOMContentLoaded) and the canvas document received (the /api/canvas response's end).
_PHASES_JS = """() => {
    const navigation = performance.getEntriesByType('navigation')[0];
    const canvas = performance.getEntriesByType('resource').find((e) => e.name.includes('/api/canvas?'));
    return {script: navigation.domContentLoadedEventEnd, canvas: canvas ? canvas.responseEnd : NaN};
}"""


@dataclass(frozen=True)
class _EditorSample:
    interactive: float
    script_ms: float
    canvas_ms: float


def _interactive_after_navigation(browser: Any, server: Server, last: tuple[str, str]) -> _EditorSample:
    """Seconds from navigating a fresh browser context to the app (which opens the server's CANVAS
    argument) until the last node is rendered, a click selects it and the inspector shows its name."""
    node_id, node_name = last
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    try:
        page = context.new_page()
        started = time.perf_counter()
        page.goto(server.base_url + f"/?token={server.token}")
        # The node itself: at a 200-node fit its title is a pixel high, under its subtitle.
        page.get_by_test_id(f"node-{node_id}").click()
        page.wait_for_function(
            """(name) => document.querySelector('[data-testid="node-name"]')?.value === name""", arg=node_name
        )
        interactive = time.perf_counter() - started
        phases = page.evaluate(_PHASES_JS)
        return _EditorSample(interactive, float(phases["script"]), float(phases["canvas"]))
    finally:
        context.close()


def measure_editor(browser: Any, big: Server, small: Server, repeat: int) -> None:
    """The 200-node canvas against the 1-node one, interleaved round by round, after a warm-up."""
    big_last, small_last = ("delete-sandbox", "Delete Sandbox"), ("start", "Manual Run")
    _interactive_after_navigation(browser, big, big_last)
    _interactive_after_navigation(browser, small, small_last)
    big_samples: list[_EditorSample] = []
    small_samples: list[_EditorSample] = []
    for _ in range(repeat):
        big_samples.append(_interactive_after_navigation(browser, big, big_last))
        small_samples.append(_interactive_after_navigation(browser, small, small_last))
    big_median = statistics.median(sample.interactive for sample in big_samples)
    small_median = statistics.median(sample.interactive for sample in small_samples)
    line("ui.editor.interactive_200_nodes.median", big_median, "s")
    line("ui.editor.interactive_200_nodes.best", min(sample.interactive for sample in big_samples), "s")
    line("baseline.ui.editor.interactive_1_node.median", small_median, "s")
    line("ui.editor.interactive_200_over_1", big_median / small_median, "x")
    for name, samples in (("200_nodes", big_samples), ("1_node", small_samples)):
        line(
            f"ui.editor.phase.script_ready_{name}.median",
            statistics.median(s.script_ms for s in samples),
            "ms",
        )
        line(
            f"ui.editor.phase.canvas_fetched_{name}.median",
            statistics.median(s.canvas_ms for s in samples),
            "ms",
        )
    line("target.ui.editor.interactive_200_nodes", TARGET_EDITOR_SECONDS, "s")


def _run_id_of(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    first = process.stdout.readline()
    try:
        started = json.loads(first)
    except json.JSONDecodeError:
        raise BenchError(f"daytonaflow run --json printed no run.started line: {first!r}") from None
    return str(started["run_id"])


def measure_latency(browser: Any, server: Server, canvas: Path, fast: Sequence[str]) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    context.add_init_script(_OBSERVER_JS)
    page = context.new_page()
    page.goto(server.base_url + f"/?token={server.token}")
    page.get_by_test_id("palette").wait_for()
    roundtrips: list[float] = page.evaluate(_API_ROUNDTRIP_JS, 30)
    run = subprocess.Popen(
        [_command(), "run", str(canvas), "--db", str(server.db), "--json"],
        env=server.cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        run_id = _run_id_of(run)
        page.goto(server.base_url + f"/#/runs/{run_id}")
        page.get_by_test_id("run-view").wait_for()
        assert run.stdout is not None
        run.stdout.read()  # to the end: the run is over
        run.wait(timeout=300)
        page.wait_for_function(
            """(node) => document.querySelector(`[data-testid="node-${node}"]`)?.getAttribute('data-state')
                === 'emitted'""",
            arg=fast[-1],
        )
        shown: dict[str, float] = page.evaluate("window.__emittedAt")
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        context.close()
    with RunStore(server.db) as store:
        stored = {event.node_id: event.created_at for event in store.events(run_id)}
    latencies = [
        (shown[node] / 1000 - stored[node]) * 1000 for node in fast if node in shown and node in stored
    ]
    if len(latencies) < MIN_LATENCY_SAMPLES:
        raise BenchError(
            f"only {len(latencies)} of {len(fast)} nodes were seen turning emitted in the browser"
        )
    line("ui.live.samples", len(latencies), "nodes")
    line("ui.live.latency_p50", statistics.median(latencies), "ms")
    line("ui.live.latency_p95", percentile(latencies, 0.95), "ms")
    line("ui.baseline.api_roundtrip_p50", statistics.median(roundtrips), "ms")
    line("target.ui.live.latency_p50", TARGET_LATENCY_P50_MS, "ms")


def measure_bundle() -> None:
    declared = json.loads((STATIC / "build.json").read_text())
    line("ui.bundle.raw", declared["bytes"] / 1024, "KiB")
    line("ui.bundle.gzip", declared["gzipBytes"] / 1024, "KiB")
    shipped = [path for path in STATIC.rglob("*") if path.is_file() and path.name != "build.json"]
    measured = sum(len(gzip.compress(path.read_bytes(), 9)) for path in shipped)
    line("ui.bundle.gzip_measured", measured / 1024, "KiB")
    line("target.ui.bundle.gzip", TARGET_BUNDLE_KIB, "KiB")


def _chromium(given: str | None) -> str:
    path = given or os.environ.get("DAYTONAFLOW_CHROMIUM") or shutil.which("chromium")
    if path is None:
        raise BenchError("no Chromium: apt-get install chromium, or pass --chromium PATH")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5, help="measured editor rounds (default 5)")
    parser.add_argument("--fast-nodes", type=int, default=30, help="quick commands of the watched run")
    parser.add_argument("--chromium", help="Chromium executable (default $DAYTONAFLOW_CHROMIUM or chromium)")
    args = parser.parse_args()
    if args.fast_nodes < MIN_LATENCY_SAMPLES:
        parser.error(f"--fast-nodes must be at least {MIN_LATENCY_SAMPLES}")
    from playwright.sync_api import sync_playwright

    measure_bundle()
    with tempfile.TemporaryDirectory(prefix="daytonaflow-bench-ui-") as directory:
        work = Path(directory)
        work.chmod(0o711)
        big = big_canvas(work / "big200.yaml", 200)
        small = one_node(work / "one.yaml")
        fast = [(f"fast-{i}", f"Fast {i}", f"echo {i}") for i in range(args.fast_nodes)]
        watched = sandbox_chain(work / "watched.yaml", [("hold", "Hold", f"sleep {HOLD_SECONDS}"), *fast])
        with (
            served(work / "big", [big]) as big_server,
            served(work / "small", [small]) as small_server,
            served(work / "watch", [watched]) as watch_server,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(
                executable_path=_chromium(args.chromium),
                headless=True,
                args=["--no-sandbox", "--disable-dev-shm-usage"] if os.geteuid() == 0 else [],
            )
            try:
                measure_editor(browser, big_server, small_server, args.repeat)
                measure_latency(browser, watch_server, watched, [node_id for node_id, _, _ in fast])
            finally:
                browser.close()


if __name__ == "__main__":
    main()
