"""``daytonaflow expr``: print what a template resolves to against a JSON file of node events."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from daytonaflow import documents
from daytonaflow.expressions.context import ChainEntry, ExpressionContext, utc_now
from daytonaflow.expressions.dates import parse_date
from daytonaflow.expressions.errors import ExpressionError
from daytonaflow.expressions.resolver import resolve

_EPILOG = """\
The context file maps node names to the events they emitted, oldest first; the last
one is what previous() returns. Optional entries: "root" (the event that started the
run) and "previous" (an explicit immediate predecessor). An event may carry a
"component" key so $["daytona.createSandbox"] style references can be tried:

  {
    "Create Sandbox": {"component": "daytona.createSandbox", "type": "default",
                       "data": {"id": "sb-123"}, "timestamp": "2026-01-01T00:00:00Z"},
    "root": {"type": "manual", "data": {"branch": "main"}, "timestamp": "2026-01-01T00:00:00Z"}
  }

examples:
  daytonaflow expr '{{ $["Create Sandbox"].data.id }}' --context events.json
  daytonaflow expr 'cd /work && git checkout << root().data.branch >>' --context events.json
  daytonaflow expr '{{ len(previous().data.id) > 0 ? "yes" : "no" }}' --context events.json
  daytonaflow expr '{{ now().Format("2006-01-02") }}' --now 2026-01-01T00:00:00Z

The resolved value is printed as JSON; an error is printed to stderr with exit code 1.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="daytonaflow expr",
        description="Resolve a {{ ... }} or << ... >> template against node events, to debug a canvas.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "template", help='the template, e.g. \'{{ $["Create Sandbox"].data.id }}\' ("-": stdin)'
    )
    parser.add_argument("--context", type=Path, help="JSON file of node events (see below); none by default")
    parser.add_argument("--now", help="the moment now() returns, in RFC 3339 (default: the current time)")
    return parser


def main(argv: list[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = build_parser()
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        template = _template(arguments.template)
        context = load_context(arguments.context, arguments.now)
        value = resolve(template, context)
    except (ExpressionError, _InputError) as error:
        print(f"error: {error}", file=err)
        return 1
    print(_to_json(value), file=out)
    return 0


class _InputError(Exception):
    """The template, the context file or --now cannot be used; the message says which."""


def _template(argument: str) -> str:
    """The template argument (or stdin for ``-``), bounded and checked to be UTF-8 text."""
    try:
        if argument == "-":
            data = sys.stdin.buffer.read(documents.MAX_DOCUMENT_BYTES + 1)
            if len(data) > documents.MAX_DOCUMENT_BYTES:
                raise documents.DocumentError(
                    f"the template on stdin is larger than {documents.MAX_DOCUMENT_BYTES} bytes"
                )
            return documents.decode_text(data, source="the template on stdin")
        # Bytes of the command line that were not UTF-8 arrive as lone surrogates.
        documents.check_text(argument, source="the template")
    except documents.DocumentError as error:
        raise _InputError(str(error)) from None
    return argument


def _to_json(value: Any) -> str:
    """``value`` as JSON, escaping to ASCII only when it holds what no encoding can write."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, indent=2)
    return text


def load_context(path: Path | None, now: str | None = None) -> ExpressionContext:
    """The context described by the JSON file at ``path`` (an empty chain when ``path`` is None)."""
    clock = _fixed_clock(now) if now else utc_now
    if path is None:
        return ExpressionContext([], clock=clock)
    source = f"the context file {path}"
    try:
        document = documents.load_json_file(path, source=source)
    except FileNotFoundError as error:
        raise _InputError(f"cannot read the context file {path}: {error.strerror}") from None
    except documents.DocumentError as error:
        raise _InputError(str(error)) from None
    if not isinstance(document, dict):
        raise _InputError(f"the context file {path} must hold a JSON object of node name -> event")
    chain: list[ChainEntry] = []
    root: dict[str, Any] | None = None
    previous: ChainEntry | None = None
    for name, event in document.items():
        if not isinstance(event, dict):
            raise _InputError(
                f'the context file {path}: "{name}" must be an event object {{type, data, timestamp}}'
            )
        if name == "root":
            root = event
            continue
        component = event.get("component", "")
        entry = ChainEntry(name, name, str(component), {k: v for k, v in event.items() if k != "component"})
        if name == "previous":
            previous = entry
        else:
            chain.append(entry)
    if previous is not None:
        chain.append(previous)
    return ExpressionContext(chain, root, clock=clock)


def _fixed_clock(text: str) -> Callable[[], datetime]:
    try:
        moment = parse_date(text)
    except ValueError as error:
        raise _InputError(f"--now: {error}") from None
    return lambda: moment


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
