"""The ``daytonaflow`` command: run, validate and inspect canvases; the composition root.

This module wires the parts together (runner, components, local server, secrets) and imports
each lazily inside the subcommand that needs it: ``--help`` imports none of them (no pydantic,
httpx, starlette or rich), works even if one is missing, and each command pays only for its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daytonaflow import __version__
from daytonaflow.errors import DaytonaflowError

if TYPE_CHECKING:
    import asyncio

    from rich.console import Console

    from daytonaflow.localserver import LocalServer
    from daytonaflow.runner import Canvas, Engine, RunRecord, RunStore
    from daytonaflow.runner.store import RunReader
    from daytonaflow.temporal import TemporalRuns, TemporalSettings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130
#: A listing cut short by its reader (`runs --json | head`): what a shell reports for a tool that
#: SIGPIPE ended (128 + 13), so `set -o pipefail` scripts see the output was not read whole.
EXIT_BROKEN_PIPE = 141

_EPILOG = """\
examples:
  daytonaflow run examples/hello.yaml
  daytonaflow run examples/repository.yaml --input '{"repository": "https://github.com/octocat/Hello-World.git"}'
  daytonaflow run examples/hello.yaml --json | jq -c 'select(.kind == "node.emitted")'
  daytonaflow validate examples/preview.yaml
  daytonaflow ui examples/hello.yaml          # edit, run and watch canvases in a browser
  daytonaflow components daytona.executeCommand
  daytonaflow runs show 3f2a9c
  daytonaflow runs check
  daytonaflow worker --temporal 127.0.0.1:7233                   # scale out on Temporal (docs/engines.md)
  daytonaflow run examples/hello.yaml --temporal 127.0.0.1:7233  # a run on Temporal's workers

backend: with DAYTONA_API_KEY set (and optionally DAYTONA_API_URL, DAYTONA_TARGET) canvases run on
Daytona; without it an embedded Daytona-compatible server starts on a free loopback port.
run database: --db PATH, else $DAYTONAFLOW_DB, else ~/.local/share/daytonaflow/runs.db.
engines: embedded (this process and the run database, the default) or temporal (--engine temporal or
--temporal HOST:PORT: runs go to a Temporal server's `daytonaflow worker`s; needs the temporal extra).
exit codes: 0 success, 1 run failed or canvas invalid, 2 usage error, 130 cancelled,
141 output cut short by its reader (a `run` whose reader goes away still finishes: its own code).
"""


class UsageError(DaytonaflowError):
    """The command line asks for something that cannot be (bad ``--input`` JSON, a missing id):
    exit code 2, like argparse's own refusals."""


class TemporalExtraMissingError(DaytonaflowError):
    """The Temporal engine is asked for but its extra (the ``temporalio`` SDK) is not installed."""


TEMPORAL_EXTRA_MISSING = "the Temporal engine needs the temporal extra: pip install 'daytonaflow[temporal]'"
EMBEDDED = "embedded"
TEMPORAL = "temporal"
#: Where each Temporal connection option falls back to (the names Temporal's own CLI reads).
_TEMPORAL_ENV = {
    "temporal": "TEMPORAL_ADDRESS",
    "namespace": "TEMPORAL_NAMESPACE",
    "api_key": "TEMPORAL_API_KEY",
    "tls_cert": "TEMPORAL_TLS_CERT",
    "tls_key": "TEMPORAL_TLS_KEY",
    "tls_ca": "TEMPORAL_TLS_CA",
}
#: The connection options' destinations: given to an embedded command, they are a usage error.
_TEMPORAL_OPTIONS = (
    "temporal",
    "namespace",
    "task_queue",
    "tls",
    "tls_cert",
    "tls_key",
    "tls_ca",
    "tls_server_name",
    "api_key",
)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # `expr` and `serve` hand everything after them to their own parsers.
    if args_list and args_list[0] in ("expr", "serve"):
        return _delegate(args_list[0], args_list[1:])
    parser = _parser()
    args = parser.parse_args(args_list)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        result: int = args.handler(args)
        return result
    except UsageError as error:
        _stderr().print(f"[bold red]error:[/] {_escape(str(error))}")
        return EXIT_USAGE
    except DaytonaflowError as error:
        _stderr().print(f"[bold red]error:[/] {_escape(str(error))}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        _stderr().print("[magenta]interrupted[/]")
        return EXIT_CANCELLED
    except BrokenPipeError:
        # The reader went away (`daytonaflow runs --json | head`): nothing left to tell it. What
        # is still buffered drains into /dev/null, so the flush at exit cannot fail again.
        from daytonaflow._console import discard_output

        discard_output(sys.stdout)
        return EXIT_BROKEN_PIPE


# --- argument parsing ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="daytonaflow",
        description="Run SuperPlane-style canvases of Daytona sandbox components, locally or on Daytona.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"daytonaflow {__version__}")
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument(
        "--db",
        type=Path,
        help="run database (default: $DAYTONAFLOW_DB or ~/.local/share/daytonaflow/runs.db)",
    )
    # Runs resumed by `run` and `runs resume` need their secrets as much as new runs do.
    secrets = argparse.ArgumentParser(add_help=False)
    secrets.add_argument(
        "--secrets",
        metavar="FILE",
        type=Path,
        help="JSON secrets file {name: {key: value}} (default: $DAYTONAFLOW_SECRETS_FILE"
        " or ~/.config/daytonaflow/secrets.json)",
    )
    temporal = _temporal_options()
    engine = argparse.ArgumentParser(add_help=False)
    engine.add_argument(
        "--engine",
        choices=(EMBEDDED, TEMPORAL),
        help="embedded: this process and the run database (the default); temporal: a Temporal server"
        " and its workers (implied by --temporal)",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    run = _command(
        commands,
        "run",
        "run a canvas and show its progress",
        "daytonaflow run examples/hello.yaml\n"
        '  daytonaflow run canvas.yaml --input \'{"repository": "https://example.com/app.git"}\'\n'
        "  daytonaflow run canvas.yaml --json > events.jsonl\n"
        "  daytonaflow run canvas.yaml --keep-sandboxes   # leave sandboxes for inspection\n"
        "  daytonaflow run canvas.yaml --temporal 127.0.0.1:7233   # on Temporal (start a worker first)",
        parents=[db, secrets, engine, temporal],
    )
    run.add_argument("canvas", type=Path, help="canvas file (.yaml, .yml or .json)")
    run.add_argument("--input", metavar="JSON", help="run input: a JSON object, seen as root().data")
    run.add_argument("--input-file", metavar="FILE", type=Path, help="read the run input from a JSON file")
    run.add_argument(
        "--json", action="store_true", help="stream events as JSON lines instead of the live view"
    )
    run.add_argument(
        "--keep-sandboxes", action="store_true", help="do not delete the sandboxes the run leaves behind"
    )
    run.set_defaults(handler=_cmd_run)

    validate = _command(
        commands,
        "validate",
        "check canvases without running them (every problem of each at once)",
        "daytonaflow validate examples/hello.yaml\n"
        "  daytonaflow validate examples/*.yaml   # exit 1 if any is invalid",
    )
    validate.add_argument("canvas", type=Path, nargs="+", help="canvas files (.yaml, .yml or .json)")
    validate.add_argument(
        "--json",
        action="store_true",
        help="print the problems as JSON: {canvas, valid, issues}, a list of them for several files",
    )
    validate.set_defaults(handler=_cmd_validate)

    components = _command(
        commands,
        "components",
        "list the installed components, or show one's documentation and manifest",
        "daytonaflow components\n  daytonaflow components daytona.createSandbox\n"
        "  daytonaflow components daytona.createSandbox --json   # the manifest",
    )
    components.add_argument("name", nargs="?", help="component name, e.g. daytona.executeCode")
    components.add_argument("--json", action="store_true", help="print the manifest(s) as JSON")
    components.add_argument("--markdown", action="store_true", help="print the raw markdown documentation")
    components.set_defaults(handler=_cmd_components)

    runs = _command(
        commands,
        "runs",
        "run history: list, show (nodes, events, resources), resume, check the database",
        "daytonaflow runs\n  daytonaflow runs show 3f2a9c\n"
        "  daytonaflow runs show 3f2a9c --page 2      # nodes and events 21-40\n"
        "  daytonaflow runs show 3f2a9c --page -1     # the last ones\n"
        "  daytonaflow runs show 3f2a9c --json        # everything, streamed\n"
        "  daytonaflow runs resume   # finish runs whose process died\n"
        "  daytonaflow runs check    # SQLite's full integrity check of the run database\n"
        "  daytonaflow runs --temporal 127.0.0.1:7233              # the runs on Temporal\n"
        "  daytonaflow runs cancel 3f2a9c --temporal 127.0.0.1:7233",
        parents=[db, secrets, engine, temporal],
    )
    runs.add_argument(
        "action", nargs="?", choices=("list", "show", "resume", "check", "cancel"), default="list"
    )
    runs.add_argument(
        "run_id", nargs="?", help="run id (or a unique prefix) for show/resume; cancel: Temporal runs only"
    )
    runs.add_argument(
        "--limit",
        type=_positive,
        default=20,
        help="list: how many runs; show: rows of each table per page (default 20)",
    )
    runs.add_argument(
        "--page",
        type=_page_number,
        default=1,
        help="show: which page of nodes and events (default 1; -1 the last, -2 the one before)",
    )
    runs.add_argument("--json", action="store_true", help="print JSON")
    runs.set_defaults(handler=_cmd_runs)

    sandboxes = _command(
        commands,
        "sandboxes",
        "list or delete the sandboxes the backend holds",
        "daytonaflow sandboxes\n"
        "  daytonaflow sandboxes delete 3f2a9c   # a sandbox id, its name or a unique prefix",
    )
    sandboxes.add_argument("action", nargs="?", choices=("list", "delete"), default="list")
    sandboxes.add_argument("sandbox_id", nargs="?", help="sandbox to delete")
    sandboxes.add_argument("--json", action="store_true", help="print JSON")
    sandboxes.set_defaults(handler=_cmd_sandboxes)

    up = _command(
        commands,
        "up",
        "keep canvases' schedule and webhook triggers armed, one run per trigger event (until Ctrl-C)",
        "daytonaflow up nightly.yaml webhook-report.yaml\n"
        "  daytonaflow up canvas.yaml --port 8080 --max-concurrent-runs 2\n"
        "  curl -d @event.json -H 'X-Signature-256: sha256=...' http://127.0.0.1:8080/webhooks/CANVAS/NODE",
        parents=[db, secrets],
    )
    up.add_argument("canvas", nargs="+", type=Path, help="canvas files (.yaml, .yml or .json)")
    up.add_argument(
        "--host",
        default="127.0.0.1",
        help="address the webhooks listen on (default 127.0.0.1: this machine only)",
    )
    up.add_argument(
        "--port", type=int, default=8787, help="port the webhooks listen on (default 8787; 0: a free one)"
    )
    up.add_argument(
        "--max-concurrent-runs",
        type=_positive,
        default=4,
        metavar="N",
        help="runs of one canvas at once (default 4); later events wait in the run database, in order",
    )
    up.set_defaults(handler=_cmd_up)

    worker = _command(
        commands,
        "worker",
        "run canvases for a Temporal server: host the canvas workflow and the component activities",
        "daytonaflow worker --temporal 127.0.0.1:7233\n"
        "  daytonaflow worker --temporal 127.0.0.1:7233 --task-queue builds --secrets secrets.json\n"
        "  DAYTONA_API_URL=http://10.0.0.5:3986/api DAYTONA_API_KEY=... daytonaflow worker --temporal ...\n"
        "    # several workers share one sandbox backend: one `daytonaflow serve`, or Daytona's cloud",
        parents=[secrets, temporal],
    )
    worker.set_defaults(handler=_cmd_worker)

    ui = _command(
        commands,
        "ui",
        "edit, run and watch canvases in a browser (prints the URL with its access token)",
        "daytonaflow ui\n  daytonaflow ui examples/hello.yaml my-canvas.yaml\n"
        "  daytonaflow ui --port 8080 --no-browser",
        parents=[db, secrets],
    )
    ui.add_argument("canvas", nargs="*", type=Path, help="canvas files to offer in the Open dialog")
    ui.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    ui.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    ui.add_argument("--no-browser", action="store_true", help="do not open a browser, only print the URL")
    ui.set_defaults(handler=_cmd_ui)

    _command(
        commands,
        "expr",
        "evaluate and check expressions (see docs/expressions.md)",
        "daytonaflow expr --help",
    )
    _command(
        commands,
        "serve",
        "run the embedded Daytona-compatible server in the foreground",
        "daytonaflow serve --help",
    )
    return parser


def _temporal_options() -> argparse.ArgumentParser:
    """The connection options of every command that talks to Temporal (``worker``, ``run``, ``runs``)."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("Temporal connection (worker, --engine temporal)")
    group.add_argument(
        "--temporal", metavar="HOST:PORT", help="the Temporal server's frontend (default: $TEMPORAL_ADDRESS)"
    )
    group.add_argument("--namespace", help="Temporal namespace (default: $TEMPORAL_NAMESPACE, else default)")
    group.add_argument(
        "--task-queue", metavar="QUEUE", help="the task queue the workers poll (default: daytonaflow)"
    )
    group.add_argument("--tls", action="store_true", help="connect with TLS (implied by the options below)")
    group.add_argument(
        "--tls-cert", metavar="FILE", type=Path, help="client certificate, PEM (default: $TEMPORAL_TLS_CERT)"
    )
    group.add_argument(
        "--tls-key",
        metavar="FILE",
        type=Path,
        help="client certificate's key, PEM (default: $TEMPORAL_TLS_KEY)",
    )
    group.add_argument(
        "--tls-ca",
        metavar="FILE",
        type=Path,
        help="CA that signed the server's certificate (default: $TEMPORAL_TLS_CA)",
    )
    group.add_argument("--tls-server-name", metavar="NAME", help="the name the server's certificate bears")
    group.add_argument(
        "--api-key",
        metavar="KEY",
        help="API key, e.g. Temporal Cloud's; implies TLS (default: $TEMPORAL_API_KEY, which other users"
        " of the machine cannot read in the process list)",
    )
    return options


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1, not {text!r}")
    return value


def _page_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be a page number (1 the first, -1 the last), not {text!r}")
    return value


def _command(
    commands: Any, name: str, summary: str, examples: str, parents: Sequence[argparse.ArgumentParser] = ()
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=f"examples:\n  {examples}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=list(parents),
    )
    return parser


def _delegate(name: str, rest: list[str]) -> int:
    try:
        if name == "expr":
            from daytonaflow.expressions.cli import main as expr_main

            return expr_main(rest)
        from daytonaflow.localserver.cli import main as serve_main

        return serve_main(rest)
    except ImportError as error:
        _stderr().print(f"[bold red]error:[/] `daytonaflow {name}` is not available: {_escape(str(error))}")
        return EXIT_FAILED


# --- run ---------------------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from daytonaflow.runner import load_canvas

    engine = _engine_name(args)
    if engine == TEMPORAL:
        _require_temporal()
    run_input = _read_input(args)
    if run_input is not None and not isinstance(run_input, dict):
        raise UsageError('--input must be a JSON object, e.g. \'{"repository": "..."}\'')
    canvas = load_canvas(args.canvas)
    if engine == TEMPORAL:
        return asyncio.run(_run_on_temporal(args, _temporal_settings(args), canvas, run_input))
    return asyncio.run(_run(args, canvas, run_input))


async def _run(args: argparse.Namespace, canvas: Canvas, run_input: dict[str, Any] | None) -> int:
    from daytonaflow.runner import parse_canvas

    with _open_store(args.db) as store:
        orphans = [record for record in store.unfinished_runs() if _needs_resume(record.owner)]
        canvases = [canvas, *(parse_canvas(record.canvas) for record in orphans)]
        async with _backend(_uses_plugins(canvases)) as backend:
            # The engine loads its components and checks the canvas while the local server starts.
            from daytonaflow._console import JsonLines, RunView, summary

            # A reader that goes away must not cut the run short: it finishes unwatched, recorded.
            console = _stdout(stop_on_broken_pipe=False)
            engine = _engine(store, args.secrets)
            engine.validate(canvas, source=str(args.canvas))
            if any(_needs_backend(each) for each in canvases):
                engine.integration = await backend.integration()
            resumed = await engine.resume()
            if resumed and not args.json:
                console.print(f"[dim]resuming {len(resumed)} unfinished run(s) of a previous process[/]")
            observer: Any = JsonLines() if args.json else RunView(console)
            engine.subscribe(observer)
            with contextlib.ExitStack() as stack:
                if isinstance(observer, RunView):
                    stack.enter_context(observer)
                run_id = await engine.start(canvas, run_input, keep_resources=args.keep_sandboxes)
                # With --json, stdout carries only events: the cancel notice goes to stderr.
                record = await _wait_interruptibly(
                    engine.wait(run_id), lambda: engine.cancel(run_id), _stderr() if args.json else console
                )
            for other in resumed:
                await engine.wait(other)
            if not args.json:
                console.print(summary(record, store))
    return _exit_code(record)


async def _wait_interruptibly(
    waiting: Awaitable[RunRecord], cancel: Callable[[], Coroutine[Any, Any, Any]], console: Console
) -> RunRecord:
    """Await ``waiting``, the run's end; the first Ctrl-C (or SIGTERM) cancels the run cleanly
    (``cancel()``), a second one quits at once."""
    import asyncio

    from daytonaflow._serving import signals_handled

    interrupted = 0
    cancelling: asyncio.Task[Any] | None = None

    def on_signal(signum: int) -> None:
        nonlocal interrupted, cancelling
        interrupted += 1
        if interrupted == 1:
            console.print(
                "[magenta]cancelling: stopping commands and deleting sandboxes (Ctrl-C again to quit)[/]"
            )
            cancelling = asyncio.create_task(cancel())
        else:
            # Leave the run unfinished on disk: the next `daytonaflow run` or `runs resume` picks it up
            # (a Temporal run's cancellation goes on without this process).
            os._exit(EXIT_CANCELLED)

    try:
        with signals_handled(on_signal):
            return await waiting
    finally:
        if cancelling is not None:
            await cancelling


async def _run_on_temporal(
    args: argparse.Namespace, settings: TemporalSettings, canvas: Canvas, run_input: dict[str, Any] | None
) -> int:
    """``run --engine temporal``: submit the run to Temporal and show it as the embedded engine would."""
    from daytonaflow._console import JsonLines, RunView, summary
    from daytonaflow.runner import ComponentRegistry, check_canvas

    # Checked here first, as the embedded engine does, so that the problems name the canvas file.
    registry = ComponentRegistry.discover()
    check_canvas(canvas, registry, source=str(args.canvas))
    console = _stdout(stop_on_broken_pipe=False)
    # With --json, stdout carries only events: notices go to stderr.
    notices = _stderr() if args.json else console
    runs = await _temporal_runs(settings)
    await _warn_without_workers(runs, settings)
    observer: Any = JsonLines() if args.json else RunView(console)
    with contextlib.ExitStack() as stack:
        if isinstance(observer, RunView):
            stack.enter_context(observer)
        run_id = await runs.start(canvas, run_input, keep_resources=args.keep_sandboxes, registry=registry)
        record = await _wait_interruptibly(runs.watch(run_id, observer), lambda: runs.cancel(run_id), notices)
    if not args.json:
        snapshot = await runs.get(run_id)
        console.print(summary(snapshot.record, snapshot, engine_options=_temporal_hint(settings)))
    return _exit_code(record)


def _exit_code(record: RunRecord) -> int:
    if record.status == "succeeded":
        return EXIT_OK
    if record.status == "cancelled":
        return EXIT_CANCELLED
    return EXIT_FAILED


def _read_input(args: argparse.Namespace) -> Any:
    """The run input from ``--input`` or ``--input-file``, within the document limits."""
    from daytonaflow import documents

    if args.input is not None and args.input_file is not None:
        raise UsageError("give --input or --input-file, not both")
    text = args.input
    source = "--input"
    try:
        if args.input_file is not None:
            source = str(args.input_file)
            text = documents.read_text(args.input_file, source=source)
        if text is None:
            return None
        return documents.parse_json(text, source=source)
    except FileNotFoundError as error:
        raise UsageError(f"{source}: {error.strerror}") from None
    except documents.DocumentError as error:
        raise UsageError(str(error)) from None


def _uses_plugins(canvases: Sequence[Canvas]) -> bool:
    """Whether a node uses a component of the plugin entry points, the ones that may need the
    sandbox backend. Their names are known without importing them (nor httpx, nor the runner's
    built-ins), so the embedded server can start before any of that loads."""
    import importlib.metadata

    from daytonaflow.runner.canvas import NodeType
    from daytonaflow.runner.registry import ENTRY_POINT_GROUP

    plugins = {
        entry_point.name
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        # The core components (http, if, merge, ...) register there too and need no sandbox.
        if not entry_point.value.startswith("daytonaflow.builtins.")
    }
    return any(
        node.type is NodeType.ACTION and node.component in plugins
        for canvas in canvases
        for node in canvas.spec.nodes
    )


def _needs_backend(canvas: Canvas) -> bool:
    """Whether any node uses a plugin component (the built-in ones need no sandbox backend)."""
    from daytonaflow.builtins import BUILTIN_COMPONENTS
    from daytonaflow.runner import NodeType

    return any(
        node.type is NodeType.ACTION and node.component not in BUILTIN_COMPONENTS
        for node in canvas.spec.nodes
    )


def _needs_resume(owner: str | None) -> bool:
    from daytonaflow.runner.ownership import owner_alive

    return not owner_alive(owner)


# --- up --------------------------------------------------------------------------------------------------


def _cmd_up(args: argparse.Namespace) -> int:
    import asyncio

    from daytonaflow._up import ARMABLE
    from daytonaflow.runner import ComponentRegistry, NodeType, check_canvas, load_canvas

    registry = ComponentRegistry.discover()
    canvases = []
    for path in args.canvas:
        canvas = load_canvas(path)
        check_canvas(canvas, registry, source=str(path))
        if not any(node.type is NodeType.TRIGGER and node.component in ARMABLE for node in canvas.spec.nodes):
            raise UsageError(
                f"{path}: the canvas has no schedule or webhook trigger (run it with `daytonaflow run`)"
            )
        canvases.append(canvas)
    return asyncio.run(_up(args, canvases))


async def _up(args: argparse.Namespace, canvases: list[Canvas]) -> int:
    from daytonaflow._up import ArmedTrigger, TriggerHost
    from daytonaflow.runner import parse_canvas

    console = _stdout()
    with _open_store(args.db) as store:
        orphans = [record for record in store.unfinished_runs() if _needs_resume(record.owner)]
        every = [*canvases, *(parse_canvas(record.canvas) for record in orphans)]
        async with _backend(_uses_plugins(every)) as backend:
            engine = _engine(store, args.secrets)
            if any(_needs_backend(each) for each in every):
                engine.integration = await backend.integration()
            host = TriggerHost(engine, canvases, max_concurrent=args.max_concurrent_runs)

            def announce(armed: list[ArmedTrigger]) -> None:
                console.print(f"daytonaflow up: {len(armed)} trigger(s) armed on {len(canvases)} canvas(es)")
                for trigger in armed:
                    console.print(f"  {_escape(trigger.describe())}")
                console.print("[dim]Ctrl-C or SIGTERM stops it; the runs are in `daytonaflow runs`[/]")

            await host.serve(host=args.host, port=args.port, announce=announce)
            console.print("daytonaflow up: stopped")
    return EXIT_OK


# --- validate, components ------------------------------------------------------------------------------


def _cmd_validate(args: argparse.Namespace) -> int:
    """Each canvas checked and reported on its own; the exit code is 1 when any is invalid."""
    from daytonaflow.runner import ComponentRegistry

    registry = ComponentRegistry.discover()
    reports = [_validate_one(path, registry, args.json) for path in args.canvas]
    if args.json:
        document: Any = reports[0] if len(reports) == 1 else reports
        print(json.dumps(document, indent=2 if any(not r["valid"] for r in reports) else None))
    return EXIT_OK if all(report["valid"] for report in reports) else EXIT_FAILED


def _validate_one(path: Path, registry: Any, quiet: bool) -> dict[str, Any]:
    """One canvas's report (printed unless ``quiet``): ``{canvas, valid, issues}``."""
    from daytonaflow.runner import CanvasError, check_canvas, load_canvas

    try:
        canvas = load_canvas(path)
        warnings = check_canvas(canvas, registry, source=str(path))
    except CanvasError as error:
        if not quiet:
            _stderr().print(f"[bold red]invalid:[/] {_escape(str(error))}")
        return {"canvas": str(path), "valid": False, "issues": [_issue_json(i) for i in error.issues]}
    if not quiet:
        nodes, edges = len(canvas.spec.nodes), len(canvas.spec.edges)
        where = _escape(f"{path} ({canvas.name}: {nodes} nodes, {edges} edges)")
        _stdout().print(f"[green]valid:[/] {where}")
        for warning in warnings:
            _stdout().print(f"  [yellow]-[/] {_escape(str(warning))}")
    return {"canvas": str(path), "valid": True, "issues": [_issue_json(i) for i in warnings]}


def _issue_json(issue: Any) -> dict[str, Any]:
    document = {"node": issue.node, "field": issue.field, "message": issue.message}
    if issue.warning:
        document["severity"] = "warning"
    return document


def _cmd_components(args: argparse.Namespace) -> int:
    from rich.markdown import Markdown
    from rich.table import Table
    from rich.text import Text

    from daytonaflow.runner import ComponentRegistry

    registry = ComponentRegistry.discover()
    console = _stdout()
    for name, problem in registry.broken.items():
        _stderr().print(f"[yellow]warning:[/] component {name} failed to load: {_escape(problem)}")
    if args.name is None:
        if args.json:
            print(json.dumps([registry[name].manifest() for name in sorted(registry)], indent=2))
            return EXIT_OK
        table = Table()
        table.add_column("name", no_wrap=True)
        table.add_column("label")
        table.add_column("channels")
        table.add_column("description", ratio=1)
        for name in sorted(registry):
            component = registry[name]
            cells = (name, component.label, ", ".join(component.channel_names()), component.description)
            table.add_row(*(Text(cell) for cell in cells))
        console.print(table)
        return EXIT_OK
    if args.name not in registry:
        known = ", ".join(sorted(registry)) or "none"
        _stderr().print(f"[bold red]error:[/] no component {_escape(args.name)} (installed: {known})")
        return EXIT_FAILED
    component = registry[args.name]
    if args.json:
        print(json.dumps(component.manifest(), indent=2))
    elif args.markdown:
        print(component.documentation())
    else:
        _stdout(wrap=True).print(Markdown(component.documentation()))
    return EXIT_OK


# --- runs -------------------------------------------------------------------------------------------------


def _cmd_runs(args: argparse.Namespace) -> int:
    if _engine_name(args) == TEMPORAL:
        return _temporal_runs_command(args)
    if args.action == "cancel":
        raise UsageError(
            "runs cancel is for Temporal runs (--engine temporal): the embedded engine cancels a run"
            " with Ctrl-C in the process running it"
        )
    if args.action == "resume":
        import asyncio

        return asyncio.run(_resume(args))
    if args.action == "check":
        return _check_store(args)
    if args.action == "show" and not args.run_id:
        _stderr().print("[bold red]error:[/] runs show needs a run id")
        return EXIT_USAGE
    with _open_store(args.db) as store:
        if args.action == "show":
            return _show_run(args, store.find_run(args.run_id), store)
        _print_runs(args, store.list_runs(args.limit), f"no runs yet in {store.path}")
    return EXIT_OK


def _print_runs(args: argparse.Namespace, records: list[RunRecord], nothing: str) -> None:
    if args.json:
        print(json.dumps([record.to_json() for record in records], indent=2))
    elif records:
        from daytonaflow._console import fits, runs_table

        console = _stdout()
        console.print(runs_table(records, expand=fits(console)))
    else:
        print(nothing)


def _show_run(
    args: argparse.Namespace, record: RunRecord, reader: RunReader, engine_options: str = ""
) -> int:
    if args.json:
        from daytonaflow._run_json import write_run_document

        write_run_document(record, reader, sys.stdout)
    else:
        from daytonaflow._console import Page, run_details

        page = Page(args.page, args.limit)
        _stdout().print(run_details(record, reader, page, engine_options=engine_options))
    return EXIT_OK


def _temporal_runs_command(args: argparse.Namespace) -> int:
    """``runs --engine temporal``: list, show and cancel the runs Temporal holds."""
    import asyncio

    if args.action in ("resume", "check"):
        raise UsageError(
            f"runs {args.action} is for the embedded engine's run database: Temporal resumes its runs"
            " itself and keeps their history"
        )
    if args.action in ("show", "cancel") and not args.run_id:
        raise UsageError(f"runs {args.action} needs a run id")
    _require_temporal()
    return asyncio.run(_on_temporal_runs(args, _temporal_settings(args)))


async def _on_temporal_runs(args: argparse.Namespace, settings: TemporalSettings) -> int:
    from daytonaflow.runner.store import RUN_CANCELLED

    runs = await _temporal_runs(settings)
    if args.action == "list":
        where = f"no runs yet on {settings.address} (namespace {settings.namespace})"
        _print_runs(args, await runs.list(args.limit), where)
        return EXIT_OK
    snapshot = await runs.get(args.run_id)
    if args.action == "show":
        return _show_run(args, snapshot.record, snapshot, _temporal_hint(settings))
    if snapshot.record.finished:
        raise RunAlreadyFinishedError(
            f"run {snapshot.record.id} already finished ({snapshot.record.status}): nothing to cancel"
        )
    record = await runs.cancel(snapshot.record.id)
    if args.json:
        print(json.dumps(record.to_json(), indent=2))
    else:
        _stdout().print(f"run {record.id} ({record.canvas_name}): {record.status}", markup=False)
    return EXIT_OK if record.status == RUN_CANCELLED else EXIT_FAILED


class RunAlreadyFinishedError(DaytonaflowError):
    """``runs cancel ID`` of a run that has ended already."""


def _check_store(args: argparse.Namespace) -> int:
    """``runs check``: the full integrity check opening skips. A file that will not even open is
    one of the problems it reports, not an error of the command."""
    from daytonaflow.runner import RunStoreError, default_db_path

    path: Path = args.db if args.db is not None else default_db_path()
    if not path.exists():
        _stderr().print(f"[bold red]error:[/] no run database at {_escape(str(path))}")
        return EXIT_FAILED
    try:
        with _open_store(path) as store:
            problems = store.check()
    except RunStoreError as error:
        problems = [str(error)]
    if args.json:
        print(json.dumps({"database": str(path), "ok": not problems, "problems": problems}, indent=2))
    elif problems:
        print(f"damaged: {path}")
        for problem in problems:
            print(f"  {problem}")
    else:
        print(f"ok: {path}")
    return EXIT_FAILED if problems else EXIT_OK


async def _resume(args: argparse.Namespace) -> int:
    from daytonaflow._console import JsonLines, RunView
    from daytonaflow.runner import parse_canvas

    console = _stdout(stop_on_broken_pipe=False)
    with _open_store(args.db) as store:
        wanted = [store.find_run(args.run_id).id] if args.run_id else None
        orphans = [r for r in store.unfinished_runs() if _needs_resume(r.owner)]
        if wanted is not None:
            orphans = [r for r in orphans if r.id in wanted]
        if not orphans:
            console.print("nothing to resume")
            return EXIT_OK
        canvases = [parse_canvas(record.canvas) for record in orphans]
        async with _backend(_uses_plugins(canvases)) as backend:
            engine = _engine(store, args.secrets)
            if any(_needs_backend(each) for each in canvases):
                engine.integration = await backend.integration()
            engine.subscribe(JsonLines() if args.json else RunView(console, every_run=True))
            resumed = await engine.resume(wanted)
            records = [await engine.wait(run_id) for run_id in resumed]
    if not args.json:
        for record in records:
            console.print(f"run {record.id} ({record.canvas_name}): {record.status}", markup=False)
    return max((_exit_code(record) for record in records), default=EXIT_OK)


# --- sandboxes ---------------------------------------------------------------------------------------------


def _cmd_sandboxes(args: argparse.Namespace) -> int:
    import asyncio

    return asyncio.run(_sandboxes(args))


async def _sandboxes(args: argparse.Namespace) -> int:
    from rich.table import Table
    from rich.text import Text

    from daytonaflow._console import fits

    console = _stdout()
    async with _backend(True) as backend:
        client = (await backend.integration()).client
        if args.action == "delete":
            if not args.sandbox_id:
                _stderr().print("[bold red]error:[/] sandboxes delete needs a sandbox id")
                return EXIT_USAGE
            sandbox_id = _unique_sandbox(args.sandbox_id, await client.list_sandboxes())
            await client.delete_sandbox(sandbox_id, force=True)
            console.print(f"deleted {sandbox_id}", markup=False)
            return EXIT_OK
        sandboxes = await client.list_sandboxes()
        if args.json:
            print(json.dumps([s.model_dump(mode="json", by_alias=True) for s in sandboxes], indent=2))
            return EXIT_OK
        table = Table(expand=fits(console))
        for column in ("id", "name", "state", "labels"):
            table.add_column(column)
        for sandbox in sandboxes:
            labels = ", ".join(f"{key}={value}" for key, value in sorted(sandbox.labels.items()))
            table.add_row(*(Text(cell) for cell in (sandbox.id, sandbox.name, sandbox.state or "", labels)))
        console.print(table if sandboxes else "no sandboxes")
    return EXIT_OK


class SandboxNotFoundError(DaytonaflowError):
    """``sandboxes delete ID``: no sandbox has that id (or name), or a prefix names several."""


def _unique_sandbox(wanted: str, sandboxes: Sequence[Any]) -> str:
    """The id of the sandbox whose id or name is ``wanted``, else whose id starts with it
    (unambiguously), as ``runs show`` takes a run id's prefix."""
    exact = [s.id for s in sandboxes if wanted in (s.id, s.name)]
    if len(exact) == 1:
        return str(exact[0])
    matches = exact or sorted(s.id for s in sandboxes if s.id.startswith(wanted))
    if len(matches) == 1:
        return str(matches[0])
    if not matches:
        raise SandboxNotFoundError(f'no sandbox "{wanted}" (daytonaflow sandboxes lists them)')
    raise SandboxNotFoundError(
        f'"{wanted}" matches {len(matches)} sandboxes; give more of the id: ' + ", ".join(matches)
    )


# --- worker, and the Temporal engine's plumbing -------------------------------------------------------


def _cmd_worker(args: argparse.Namespace) -> int:
    import asyncio

    _require_temporal()
    return asyncio.run(_worker(args, _temporal_settings(args, command="daytonaflow worker")))


async def _worker(args: argparse.Namespace, settings: TemporalSettings) -> int:
    """Serve the task queue until SIGTERM or Ctrl-C; activities in flight are then handed back
    (Temporal re-runs them on another worker)."""
    import asyncio

    from daytonaflow._serving import signals_handled
    from daytonaflow.temporal import run_worker

    async with _backend(True) as backend:
        integration = await backend.integration()
        if backend.name == "local":
            _stderr().print(
                f"[yellow]note:[/] sandboxes run on this machine's embedded server ({integration.api_url})."
                " Several workers must share one backend: point them all at one `daytonaflow serve`"
                " (DAYTONA_API_URL and DAYTONA_API_KEY) or at Daytona's cloud (DAYTONA_API_KEY)",
                soft_wrap=True,
            )
        stop = asyncio.Event()

        def on_signal(signum: int) -> None:
            if stop.is_set():
                os._exit(EXIT_CANCELLED)
            _stderr().print(
                "[magenta]stopping: handing the work in flight back to Temporal (again to quit)[/]"
            )
            stop.set()

        def on_ready() -> None:
            print(
                f"worker ready: task queue {settings.task_queue} on {settings.address}"
                f" (namespace {settings.namespace})",
                flush=True,
            )

        with signals_handled(on_signal):
            await run_worker(
                settings,
                integration=integration,
                secrets=_secrets(args.secrets),
                stop=stop,
                on_ready=on_ready,
            )
    return EXIT_OK


def _engine_name(args: argparse.Namespace) -> str:
    """The engine a command uses: ``--engine``, else Temporal when ``--temporal`` names a server."""
    engine: str = args.engine or (TEMPORAL if args.temporal else EMBEDDED)
    if engine == EMBEDDED:
        given = [name for name in _TEMPORAL_OPTIONS if getattr(args, name, None) not in (None, False)]
        if given:
            option = "--" + given[0].replace("_", "-")
            raise UsageError(f"{option} is an option of the Temporal engine: add --engine temporal")
    return engine


def _require_temporal() -> None:
    """Fail clearly when the temporal extra is missing (before any work, and with no traceback)."""
    try:
        from daytonaflow.temporal import TemporalRuns, connect  # noqa: F401
    except ImportError as error:
        if (error.name or "").split(".")[0] != "temporalio" and error.name != "daytonaflow.temporal":
            raise
        raise TemporalExtraMissingError(TEMPORAL_EXTRA_MISSING) from None


def _temporal_settings(args: argparse.Namespace, *, command: str = "--engine temporal") -> TemporalSettings:
    """The connection from the options, each falling back to its environment variable."""
    from daytonaflow.temporal import DEFAULT_NAMESPACE, DEFAULT_TASK_QUEUE, TemporalSettings

    def option(name: str) -> Any:
        value = getattr(args, name)
        if value is None and name in _TEMPORAL_ENV:
            # An empty variable is an unset one (`TEMPORAL_API_KEY= daytonaflow ...`).
            value = os.environ.get(_TEMPORAL_ENV[name]) or None
        return value

    address = option("temporal")
    if not address:
        raise UsageError(
            f"{command} needs the Temporal server's address: --temporal HOST:PORT or TEMPORAL_ADDRESS"
        )
    host, _, port = str(address).rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(
            f"--temporal must be HOST:PORT (the server's frontend, e.g. 127.0.0.1:7233), not {address!r}"
        )

    def path(name: str) -> Path | None:
        value = option(name)
        return None if value is None else Path(value)

    return TemporalSettings(
        address=str(address),
        namespace=option("namespace") or DEFAULT_NAMESPACE,
        task_queue=args.task_queue or DEFAULT_TASK_QUEUE,
        # The certificate files and an API key imply TLS too (TemporalSettings.uses_tls).
        tls=bool(args.tls or args.tls_server_name),
        tls_ca=path("tls_ca"),
        tls_cert=path("tls_cert"),
        tls_key=path("tls_key"),
        tls_server_name=args.tls_server_name,
        api_key=option("api_key"),
    )


async def _temporal_runs(settings: TemporalSettings) -> TemporalRuns:
    from daytonaflow.temporal import TemporalRuns, connect

    return TemporalRuns(await connect(settings), settings)


def _temporal_hint(settings: TemporalSettings) -> str:
    """The options that find a run again (``runs show ID`` + this), for the commands the views suggest."""
    from daytonaflow.temporal import DEFAULT_NAMESPACE

    hint = f" --temporal {settings.address}"
    if settings.namespace != DEFAULT_NAMESPACE:
        hint += f" --namespace {settings.namespace}"
    return hint


def _worker_command(settings: TemporalSettings) -> str:
    """The command line of a worker for ``settings``'s task queue (secrets are left to the environment)."""
    import shlex

    from daytonaflow.temporal import DEFAULT_NAMESPACE, DEFAULT_TASK_QUEUE

    words = ["daytonaflow", "worker", "--temporal", settings.address]
    if settings.namespace != DEFAULT_NAMESPACE:
        words += ["--namespace", settings.namespace]
    if settings.task_queue != DEFAULT_TASK_QUEUE:
        words += ["--task-queue", settings.task_queue]
    if settings.tls:
        words.append("--tls")
    for option, path in (
        ("--tls-cert", settings.tls_cert),
        ("--tls-key", settings.tls_key),
        ("--tls-ca", settings.tls_ca),
    ):
        if path is not None:
            words += [option, str(path)]
    if settings.tls_server_name:
        words += ["--tls-server-name", settings.tls_server_name]
    command = shlex.join(words)
    if settings.api_key:
        command += " (with the API key in TEMPORAL_API_KEY)"
    return command


async def _warn_without_workers(runs: TemporalRuns, settings: TemporalSettings) -> None:
    """A run submitted to a task queue no worker polls waits, silently, until one does: say so.

    Temporal lists a worker as polling for a few minutes after its last poll, so a queue whose
    workers all stopped just now goes unwarned: this is a hint, never a reason to refuse the run.
    """
    try:
        workers = await runs.worker_count()
    except Exception:  # a server that will not say (no permission to describe queues): no hint
        return
    if workers:
        return
    _stderr().print(
        f"[yellow]warning:[/] no worker polls task queue {_escape(settings.task_queue)} on"
        f" {_escape(settings.address)} (namespace {_escape(settings.namespace)}): the run waits until one"
        f" does. Start one: {_escape(_worker_command(settings))}",
        soft_wrap=True,
    )


# --- ui --------------------------------------------------------------------------------------------------


def _cmd_ui(args: argparse.Namespace) -> int:
    import asyncio

    missing = [str(path) for path in args.canvas if not path.is_file()]
    if missing:
        _stderr().print(f"[bold red]error:[/] no such canvas file: {_escape(', '.join(missing))}")
        return EXIT_USAGE
    return asyncio.run(_ui(args))


async def _ui(args: argparse.Namespace) -> int:
    import asyncio

    from daytonaflow.ui import UIServices
    from daytonaflow.ui._serve import is_loopback, serve

    with _open_store(args.db) as store:
        async with _backend(True) as backend:
            engine = _engine(store, args.secrets)

            async def prepare_run(canvas: Canvas) -> None:
                if _needs_backend(canvas) and engine.integration is None:
                    engine.integration = await backend.integration()

            async def resume_orphans() -> None:
                # What `daytonaflow run` does first: finish the runs whose process died.
                orphans = [record for record in store.unfinished_runs() if _needs_resume(record.owner)]
                if orphans:
                    from daytonaflow.runner import parse_canvas

                    for record in orphans:
                        await prepare_run(parse_canvas(record.canvas))
                    await engine.resume()

            services = UIServices(
                store=store,
                engine=engine,
                prepare_run=prepare_run,
                sandboxes=_BackendSandboxes(backend),
                backend=backend.name,
                canvases=[path.resolve() for path in args.canvas],
                examples=_examples(),
                version=__version__,
            )
            resuming = asyncio.create_task(resume_orphans())

            def announce(url: str) -> None:
                print(f"daytonaflow ui: {url}", flush=True)
                if not is_loopback(args.host):
                    _stderr().print(
                        f"[yellow]warning:[/] listening on {_escape(args.host)}, not loopback: the token"
                        " travels unencrypted and other machines can reach the UI"
                    )

            try:
                await serve(
                    services,
                    host=args.host,
                    port=args.port,
                    open_browser=not args.no_browser,
                    announce=announce,
                )
            finally:
                resuming.cancel()
                with contextlib.suppress(BaseException):
                    await resuming
                await engine.aclose()
    return EXIT_OK


def _examples() -> list[Path]:
    """The example canvases: the bundled ones (``daytonaflow.examples``)."""
    import importlib.resources

    folder = importlib.resources.files("daytonaflow.examples")
    return sorted(Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith((".yaml", ".yml")))


class _BackendSandboxes:
    """The sandboxes page's view of the backend (Daytona's or the embedded server's API)."""

    def __init__(self, backend: _Backend) -> None:
        self._backend = backend

    async def list(self) -> list[dict[str, Any]]:
        client = (await self._backend.integration()).client
        return [
            {"id": s.id, "name": s.name, "state": s.state or "", "labels": s.labels}
            for s in await client.list_sandboxes()
        ]

    async def delete(self, sandbox_id: str) -> None:
        client = (await self._backend.integration()).client
        await client.delete_sandbox(sandbox_id, force=True)


# --- composition ------------------------------------------------------------------------------------------


class _Backend:
    """The sandbox backend of a command: Daytona when ``DAYTONA_API_KEY`` is set, else the embedded
    local server on a free loopback port.

    The local server starts in the background as soon as the backend is made: the command loads
    its engine meanwhile (the server's subprocesses and file copies overlap that work) and awaits
    :meth:`integration` only when it needs sandboxes.
    """

    def __init__(self, needed: bool) -> None:
        import asyncio

        self._integration: Any = None
        self._server: LocalServer | None = None
        #: ``daytona`` (the cloud, DAYTONA_API_KEY set) or ``local`` (the embedded server).
        self.name = "local"
        self._starting: asyncio.Future[Any] | None = None
        if not needed:
            return
        from daytonaflow.components import DaytonaIntegration

        self._integration = DaytonaIntegration.from_env()
        if self._integration is not None:
            self.name = "daytona"
            return
        from daytonaflow.localserver import running_server

        shared = running_server()
        if shared is not None:
            # Another command's embedded server (an open `daytonaflow ui`) holds the state: use it.
            self._integration = DaytonaIntegration(shared.api_url, shared.api_key)
        else:
            from daytonaflow.localserver import LocalServer

            self._server = LocalServer()
            # Submitted to a thread now, not when the loop next runs: the caller's next steps are
            # synchronous (loading the engine), and the start must run beside them.
            self._starting = asyncio.get_running_loop().run_in_executor(None, self._server.start)

    async def integration(self) -> Any:
        """The integration the components use (None when the command needs no backend)."""
        if self._server is None or self._integration is not None:
            return self._integration
        from daytonaflow.components import DaytonaIntegration
        from daytonaflow.localserver import IsolationUnavailableError

        assert self._starting is not None
        try:
            await self._starting
        except IsolationUnavailableError as error:
            raise IsolationUnavailableError(
                f"{error}. The embedded backend needs it; or set DAYTONA_API_KEY to run on Daytona's cloud"
            ) from None
        self._integration = DaytonaIntegration(self._server.api_url, self._server.api_key)
        return self._integration

    async def aclose(self) -> None:
        import asyncio

        if self._integration is not None:
            await self._integration.aclose()
        if self._starting is not None:
            # A command that failed before it needed the server: the start's own outcome is no news.
            with contextlib.suppress(Exception):
                await self._starting
        if self._server is not None:
            await asyncio.to_thread(self._server.stop)


@contextlib.asynccontextmanager
async def _backend(needed: bool) -> AsyncIterator[_Backend]:
    backend = _Backend(needed)
    try:
        yield backend
    finally:
        await backend.aclose()


def _engine(store: RunStore, secrets_file: Path | None) -> Engine:
    """The engine of `run` and `runs resume`: components from the entry points, secrets from
    the environment and the secrets file. Its integration is set once the backend is up."""
    from daytonaflow.runner import Engine

    return Engine(store, secrets=_secrets(secrets_file))


def _secrets(path: Path | None) -> Any:
    """Environment first, then ``--secrets FILE`` (else the default secrets file)."""
    from daytonaflow.secrets import (
        ChainedSecretsProvider,
        EnvSecretsProvider,
        FileSecretsProvider,
        default_secrets_provider,
    )

    if path is None:
        return default_secrets_provider()
    return ChainedSecretsProvider(EnvSecretsProvider(os.environ), FileSecretsProvider(path))


def _open_store(path: Path | None) -> RunStore:
    from daytonaflow.runner import RunStore, default_db_path

    return RunStore(path if path is not None else default_db_path())


def _stdout(*, stop_on_broken_pipe: bool = True, wrap: bool = False) -> Console:
    """Standard output; off a terminal, unbounded in width unless ``wrap`` (prose)."""
    from daytonaflow._console import OutputConsole

    return OutputConsole(stop_on_broken_pipe=stop_on_broken_pipe, wrap=wrap)


def _stderr() -> Console:
    from daytonaflow._console import OutputConsole

    return OutputConsole(stderr=True)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def script() -> None:
    """The ``daytonaflow`` program: :func:`main`, then exit with its code.

    After a command that loaded the Temporal SDK the process ends at once, without the interpreter's
    teardown: the SDK's Rust runtime keeps threads of its own that may still call into Python while
    the interpreter finalizes, which aborts it (SIGABRT, exit status 134, now and then, after a
    worker stopped cleanly: temporalio/sdk-python#300). Everything is done and flushed by then.
    """
    code = main()
    if "temporalio" in sys.modules:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    script()
