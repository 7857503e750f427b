"""The CLI's rendering of runs: kinds it does not know are skipped, a running node shows its latest
output line, a `--json` reader that goes away stops the stream quietly."""

from __future__ import annotations

import io
from dataclasses import dataclass

from rich.console import Console

from daytonaflow._console import NODE_OUTPUT, JsonLines, RunView
from daytonaflow.runner import RunUpdate, progress


@dataclass(frozen=True)
class OutputUpdate(RunUpdate):
    """``node.output`` as the components will send it: a chunk of a running command's output."""

    text: str = ""


def plain_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=120), out


def started(view: RunView) -> None:
    view(RunUpdate(progress.RUN_STARTED, "r1", canvas="c"))
    view(
        RunUpdate(
            progress.NODE_STARTED, "r1", node_id="n1", node_name="Build", execution_id="x1", status="running"
        )
    )


def drawn(view: RunView) -> str:
    console = Console(file=io.StringIO(), width=120)
    with console.capture() as capture:
        console.print(view._render())
    return capture.get()


def test_the_view_skips_update_kinds_it_does_not_know() -> None:
    console, out = plain_console()
    view = RunView(console)
    started(view)
    for kind in ("node.teleported", "resource.borrowed", "run.paused"):
        view(RunUpdate(kind, "r1", node_id="n1", execution_id="x1", status="weird", resource="thing"))
    assert out.getvalue() == ""
    assert "weird" not in drawn(view)


def test_a_running_node_shows_its_latest_output_line() -> None:
    view = RunView(Console(file=io.StringIO(), force_terminal=False))
    started(view)
    view(OutputUpdate(NODE_OUTPUT, "r1", node_id="n1", execution_id="x1", text="compiling\nlinking\n"))
    view(OutputUpdate(NODE_OUTPUT, "r1", node_id="n1", execution_id="x1", text="testing 3/7\n\n"))
    table = drawn(view)
    assert "testing 3/7" in table and "linking" not in table
    assert "running" in table


def test_output_chunks_are_not_printed_as_lines_off_a_terminal() -> None:
    console, out = plain_console()
    view = RunView(console)
    started(view)
    view(OutputUpdate(NODE_OUTPUT, "r1", node_id="n1", execution_id="x1", text="line 1\nline 2\n"))
    assert out.getvalue() == ""


class _GoneReader(io.StringIO):
    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        raise BrokenPipeError(32, "Broken pipe")


def test_json_lines_stop_quietly_once_the_reader_is_gone() -> None:
    stream = _GoneReader()
    lines = JsonLines(stream)
    lines(RunUpdate(progress.RUN_STARTED, "r1"))
    lines(RunUpdate(progress.RUN_FINISHED, "r1", status="succeeded"))
    assert stream.writes == 1
