"""The CLI's rendering of runs: kinds it does not know are skipped, a running node shows its latest
output line, a `--json` reader that goes away stops the stream quietly."""

from __future__ import annotations

import io
from dataclasses import dataclass

from rich.console import Console

from daytonaflow._console import NODE_OUTPUT, JsonLines, RunView, excerpt
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
    (row,) = [line for line in drawn(view).splitlines() if "running" in line]
    assert "testing 3/7" in row and "linking" not in row


def test_off_a_terminal_output_lines_are_printed_as_they_complete_prefixed_by_the_node() -> None:
    console, out = plain_console()
    view = RunView(console)
    started(view)
    view(OutputUpdate(NODE_OUTPUT, "r1", node_id="n1", execution_id="x1", text="line 1\nline"))
    assert out.getvalue() == "Build | line 1\n"
    view(OutputUpdate(NODE_OUTPUT, "r1", node_id="n1", execution_id="x1", text=" 2\n\n"))
    assert out.getvalue() == "Build | line 1\nBuild | line 2\n"


def test_a_last_line_without_a_newline_is_printed_when_the_node_ends() -> None:
    console, out = plain_console()
    view = RunView(console)
    started(view)
    view(OutputUpdate(NODE_OUTPUT, "r1", node_id="n1", execution_id="x1", text="done"))
    view(RunUpdate(progress.NODE_EMITTED, "r1", node_id="n1", execution_id="x1", status="emitted"))
    assert out.getvalue().splitlines()[0] == "Build | done"


def test_a_flood_of_output_is_printed_up_to_a_bound(monkeypatch) -> None:
    monkeypatch.setattr("daytonaflow._console.MAX_PRINTED_OUTPUT_LINES", 3)
    console, out = plain_console()
    view = RunView(console)
    started(view)
    view(OutputUpdate(NODE_OUTPUT, "r1", node_id="n1", execution_id="x1", text="x\n" * 50))
    lines = out.getvalue().splitlines()
    assert lines[:3] == ["Build | x"] * 3
    assert len(lines) == 4 and "more output not shown" in lines[3]


def test_a_node_that_waits_again_after_each_check_says_waiting_once() -> None:
    console, out = plain_console()
    view = RunView(console)
    started(view)
    for _ in range(9):
        view(RunUpdate(progress.NODE_WAITING, "r1", node_id="n1", execution_id="x1", status="waiting"))
        view(RunUpdate(progress.NODE_STARTED, "r1", node_id="n1", execution_id="x1", status="checking"))
    assert out.getvalue().count("waiting") == 1


def test_the_live_view_shows_a_running_nodes_last_lines() -> None:
    view = RunView(Console(file=io.StringIO(), force_terminal=False))
    started(view)
    text = "".join(f"step {n}\n" for n in range(1, 10))
    view(OutputUpdate(NODE_OUTPUT, "r1", node_id="n1", execution_id="x1", text=text))
    drawing = drawn(view)
    assert "Build | step 9" in drawing and "Build | step 6" in drawing
    assert "Build | step 5" not in drawing


def test_a_finished_node_leaves_no_live_output_lines() -> None:
    view = RunView(Console(file=io.StringIO(), force_terminal=False))
    started(view)
    view(OutputUpdate(NODE_OUTPUT, "r1", node_id="n1", execution_id="x1", text="step 1\n"))
    view(RunUpdate(progress.NODE_EMITTED, "r1", node_id="n1", execution_id="x1", status="emitted"))
    assert "Build | step 1" not in drawn(view)


def test_a_timed_out_command_is_shown_as_timed_out_not_as_exit_124() -> None:
    event = {"type": "daytona.command.response", "data": {"exitCode": 124, "result": "", "timeout": True}}
    assert excerpt(event) == "timed out"


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


async def test_a_run_polling_nine_times_prints_waiting_once(engine, store) -> None:
    """A real engine and a component that waits through nine scheduled checks."""
    from run_fakes import make_canvas

    from daytonaflow.runner import parse_canvas

    console, out = plain_console()
    view = RunView(console)
    engine.subscribe(view)
    canvas = make_canvas(
        [
            {
                "id": "poll",
                "name": "Poll",
                "component": "test.poll",
                "configuration": {"polls": 9, "every": 0.01},
            }
        ],
        [("start", "poll")],
    )
    record = await engine.run(parse_canvas(canvas))
    assert record.status == "succeeded", record.error
    lines = out.getvalue().splitlines()
    (waiting,) = [line for line in lines if "waiting" in line]
    assert waiting.startswith("Poll [test.poll] waiting")
    assert any(line.startswith("Poll [test.poll] emitted") for line in lines)
