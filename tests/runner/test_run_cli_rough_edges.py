"""The CLI's rough edges (issue 11): a reader that goes away, output off a terminal kept whole,
usage errors exit 2, YAML errors name the file, validate takes several files, sandbox id prefixes.

Broken pipes are real: the CLI runs in a subprocess whose stdout pipe is closed under it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from run_fakes import make_canvas

from daytonaflow.cli import EXIT_BROKEN_PIPE, EXIT_FAILED, EXIT_OK, EXIT_USAGE, _unique_sandbox, main
from daytonaflow.components._wire import SandboxInfo
from daytonaflow.runner import ComponentRegistry, RunStore, check_canvas, parse_canvas

#: Longer than any terminal: off a terminal it must come out whole, on one line.
LONG_PATH = "/" + "-".join(["a-rather-long-path-segment"] * 8)


def _write(tmp_path: Path, document: dict[str, Any], name: str = "canvas.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document))
    return path


def _fetch_chain(url: str, length: int = 6) -> dict[str, Any]:
    """``length`` HTTP nodes one after the other: a run that prints a line per node."""
    nodes = [
        {"id": f"fetch-{n}", "component": "http", "configuration": {"url": f"{url}/{n}"}}
        for n in range(length)
    ]
    edges = [("start", "fetch-0")] + [(f"fetch-{n}", f"fetch-{n + 1}", "success") for n in range(length - 1)]
    return make_canvas(nodes, edges, name="chain")


def _cli_with_no_reader(tmp_path: Path, *args: str) -> tuple[int, str]:
    """The CLI with its stdout a pipe closed before it writes a byte: exit code and stderr."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("DAYTONA")}
    with subprocess.Popen(
        [sys.executable, "-m", "daytonaflow.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**env, "DAYTONAFLOW_DB": str(tmp_path / "runs.db")},
        cwd=tmp_path,  # not the checkout: its folders must not shadow the installed package
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        stderr = process.stderr.read().decode()
        code = process.wait(timeout=120)
    return code, stderr


# --- a reader that goes away ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", [["--json"], []], ids=["json", "progress"])
def test_a_run_whose_reader_goes_away_finishes_quietly_and_whole(
    tmp_path: Path, web: str, mode: list[str]
) -> None:
    canvas = _write(tmp_path, _fetch_chain(web))
    code, stderr = _cli_with_no_reader(tmp_path, "run", str(canvas), *mode)
    assert stderr == ""
    assert code == EXIT_OK  # the run's own outcome: it was not cut short
    with RunStore(tmp_path / "runs.db") as store:
        (run,) = store.list_runs()
        assert run.status == "succeeded"
        assert len(store.executions(run.id)) == 7


@pytest.mark.parametrize(
    "command", [["components", "--json"], ["components"], ["runs", "--json"], ["runs"]], ids=" ".join
)
def test_a_listing_whose_reader_goes_away_ends_quietly_with_141(tmp_path: Path, command: list[str]) -> None:
    code, stderr = _cli_with_no_reader(tmp_path, *command)
    assert stderr == ""
    assert code == EXIT_BROKEN_PIPE


# --- off a terminal, whole values ----------------------------------------------------------------


def test_off_a_terminal_the_run_history_shows_whole_errors_and_statuses(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = make_canvas(
        [{"id": "fetch", "component": "http", "configuration": {"url": f"http://127.0.0.1:9{LONG_PATH}"}}],
        [("start", "fetch")],
        name="a-canvas-with-a-name-long-enough-to-be-cut",
    )
    assert main(["run", str(_write(tmp_path, document))]) == EXIT_FAILED
    capsys.readouterr()
    assert main(["runs"]) == EXIT_OK
    out = capsys.readouterr().out
    with RunStore(db) as store:
        (run,) = store.list_runs()
    assert run.error is not None and LONG_PATH in run.error
    (row,) = [line for line in out.splitlines() if run.id in line]
    assert run.error.splitlines()[0] in row
    assert "a-canvas-with-a-name-long-enough-to-be-cut" in row and "failed" in row
    assert "…" not in out


def test_off_a_terminal_an_error_message_is_not_wrapped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = make_canvas([{"id": "x", "component": "daytona.createSandBox"}], [("start", "x")])
    assert main(["validate", str(_write(tmp_path, document))]) == EXIT_FAILED
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if 'field "component"' in line]
    assert "daytona.createSandbox" in line  # the whole list of known components, on the same line


# --- usage errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["--input", "{bad"], "not valid JSON"),
        (["--input", "[1, 2]"], "JSON object"),
        (["--input-file", "no-such-input.json"], "no-such-input.json"),
        (["--input", "{}", "--input-file", "x.json"], "not both"),
    ],
    ids=["bad-json", "not-an-object", "missing-file", "both"],
)
def test_a_bad_run_input_is_a_usage_error(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], said: str
) -> None:
    canvas = _write(tmp_path, make_canvas([], []))
    assert main(["run", str(canvas), *arguments]) == EXIT_USAGE
    assert said in capsys.readouterr().err
    assert not db.exists() or RunStore(db).list_runs() == []


@pytest.mark.parametrize(
    "arguments",
    [["runs", "frobnicate"], ["runs", "--limit", "0"], ["sandboxes", "purge"], ["run"], ["validate"]],
    ids=" ".join,
)
def test_unknown_option_values_are_usage_errors(
    arguments: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(arguments)
    assert exit_.value.code == EXIT_USAGE
    assert "usage:" in capsys.readouterr().err


def test_missing_ids_are_usage_errors(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "show"]) == EXIT_USAGE
    assert "needs a run id" in capsys.readouterr().err


# --- YAML errors, validate -----------------------------------------------------------------------


def test_a_yaml_error_names_the_file_and_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: Canvas\nspec:\n  nodes: [\n   - a: b\n")
    assert main(["validate", str(broken)]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert f'in "{broken}", line 5' in err
    assert "<unicode string>" not in err


def test_validate_reports_each_of_several_files_and_exits_1_if_any_is_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _write(tmp_path, make_canvas([], [], name="good"), "good.yaml")
    bad = _write(tmp_path, make_canvas([{"id": "x", "component": "nope"}], [("start", "x")]), "bad.yaml")
    also_good = _write(tmp_path, make_canvas([], [], name="also-good"), "also-good.yaml")
    assert main(["validate", str(good), str(bad), str(also_good)]) == EXIT_FAILED
    captured = capsys.readouterr()
    assert f"valid: {good}" in captured.out and f"valid: {also_good}" in captured.out
    assert f"invalid: {bad}" in captured.err
    assert main(["validate", str(good), str(also_good)]) == EXIT_OK


def test_validate_json_of_several_files_is_a_list_of_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _write(tmp_path, make_canvas([], [], name="good"), "good.yaml")
    bad = _write(tmp_path, make_canvas([{"id": "x", "component": "nope"}], [("start", "x")]), "bad.yaml")
    assert main(["validate", "--json", str(good), str(bad)]) == EXIT_FAILED
    reports = json.loads(capsys.readouterr().out)
    assert [(r["canvas"], r["valid"]) for r in reports] == [(str(good), True), (str(bad), False)]
    assert reports[1]["issues"][0]["node"] == "x"


def _short_code_timeout() -> dict[str, Any]:
    config = {"sandbox": "s", "code": "print(1)", "timeout": 30}
    return make_canvas(
        [{"id": "code", "component": "daytona.executeCode", "configuration": config}], [("start", "code")]
    )


def test_validate_warns_of_an_execute_code_timeout_under_a_second_and_still_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canvas = _write(tmp_path, _short_code_timeout())
    assert main(["validate", str(canvas)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "warning:" in out and "milliseconds" in out and "30000" in out
    assert main(["validate", "--json", str(canvas)]) == EXIT_OK
    (issue,) = json.loads(capsys.readouterr().out)["issues"]
    assert issue["severity"] == "warning" and issue["field"] == "configuration.timeout"


def test_a_warning_does_not_stop_the_canvas_from_running() -> None:
    warnings = check_canvas(parse_canvas(_short_code_timeout()), ComponentRegistry.discover())
    assert [issue.warning for issue in warnings] == [True]


# --- sandbox id prefixes ---------------------------------------------------------------------------


def _sandboxes(*ids: str) -> list[SandboxInfo]:
    return [SandboxInfo(id=each, name=f"name-{each}") for each in ids]


def test_a_unique_prefix_names_its_sandbox() -> None:
    assert _unique_sandbox("3f2", _sandboxes("3f2a-1", "9c1b-2")) == "3f2a-1"


def test_an_exact_id_or_name_wins_over_a_prefix() -> None:
    assert _unique_sandbox("ab", _sandboxes("ab", "abc")) == "ab"
    assert _unique_sandbox("name-abc", _sandboxes("ab", "abc")) == "abc"


def test_an_ambiguous_prefix_lists_the_sandboxes_it_matches() -> None:
    from daytonaflow.cli import SandboxNotFoundError

    with pytest.raises(
        SandboxNotFoundError, match=r'"3f" matches 2 sandboxes; give more of the id: 3f2a, 3f9b'
    ):
        _unique_sandbox("3f", _sandboxes("3f9b", "3f2a", "77"))


def test_a_prefix_matching_nothing_is_a_clear_error() -> None:
    from daytonaflow.cli import SandboxNotFoundError

    with pytest.raises(SandboxNotFoundError, match='no sandbox "zz"'):
        _unique_sandbox("zz", _sandboxes("3f2a"))
