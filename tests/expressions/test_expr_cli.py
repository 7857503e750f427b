"""daytonaflow expr TEMPLATE --context FILE: print the value as JSON, or the error with exit code 1."""

import io
import json
from pathlib import Path

import pytest

from daytonaflow.expressions.cli import main

EVENTS = {
    "Create Sandbox": {
        "component": "daytona.createSandbox",
        "type": "default",
        "data": {"id": "sb-123", "cpu": 2},
        "timestamp": "2026-01-01T00:00:00Z",
    },
    "Clone": {"type": "default", "data": {"path": "/work/app"}, "timestamp": "2026-01-01T00:00:01Z"},
    "root": {"type": "manual", "data": {"branch": "main"}, "timestamp": "2026-01-01T00:00:00Z"},
}


@pytest.fixture
def context_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.json"
    path.write_text(json.dumps(EVENTS))
    return path


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_prints_the_resolved_value_as_json(context_file: Path) -> None:
    code, out, err = run(['{{ $["Create Sandbox"].data }}', "--context", str(context_file)])
    assert (code, err) == (0, "")
    assert json.loads(out) == {"id": "sb-123", "cpu": 2}


def test_component_keys_previous_and_root_come_from_the_file(context_file: Path) -> None:
    template = '<< $["daytona.createSandbox"].data.id >>:{{ previous().data.path }}@{{ root().data.branch }}'
    code, out, _ = run([template, "--context", str(context_file)])
    assert code == 0
    assert json.loads(out) == "sb-123:/work/app@main"


def test_explicit_previous_entry_is_the_immediate_predecessor(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    previous = {"type": "default", "data": {"x": 1}, "timestamp": ""}
    path.write_text(json.dumps({"previous": previous, "Clone": EVENTS["Clone"]}))
    assert run(["{{ previous().data.x }}", "--context", str(path)])[:2] == (0, "1\n")


def test_prints_the_error_and_exits_1(context_file: Path) -> None:
    code, out, err = run(['{{ $["Create Sandbox"].data.idd }}', "--context", str(context_file)])
    assert (code, out) == (1, "")
    assert (
        err
        == 'error: $["Create Sandbox"].data has no field "idd"; did you mean "id"? (its fields: id, cpu)\n'
    )


def test_syntax_error_shows_the_caret(context_file: Path) -> None:
    code, _, err = run(["{{ 1 + }}", "--context", str(context_file)])
    assert code == 1
    assert err.endswith("  {{ 1 + }}\n         ^\n")


def test_missing_context_file_is_a_clear_error(tmp_path: Path) -> None:
    code, _, err = run(["{{ 1 }}", "--context", str(tmp_path / "nope.json")])
    assert code == 1
    assert "cannot read the context file" in err


def test_invalid_context_json_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    code, _, err = run(["{{ 1 }}", "--context", str(path)])
    assert code == 1
    assert f"the context file {path}: not valid JSON" in err


def test_without_context_only_literals_resolve() -> None:
    assert run(["{{ [1, 2] | sum() }}"])[:2] == (0, "3\n")


def test_now_can_be_fixed_for_reproducible_output() -> None:
    code, out, _ = run(['{{ now().Format("2006-01-02") }}', "--now", "2026-01-02T03:04:05Z"])
    assert (code, out) == (0, '"2026-01-02"\n')


def test_help_shows_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    help_text = capsys.readouterr().out
    assert help_text.startswith("usage: daytonaflow expr")
    assert "examples:" in help_text
    assert "--context" in help_text


def test_a_lone_surrogate_escape_is_a_syntax_error_not_a_crash() -> None:
    code, out, err = run(['{{ "\\ud800" }}'])
    assert (code, out) == (1, "")
    assert "invalid escape sequence \\ud800: a surrogate half is not a character" in err


def test_escapes_of_real_characters_still_resolve() -> None:
    code, out, _ = run(['{{ "\\u00e9\\U0001F600" }}'])
    assert (code, json.loads(out)) == (0, "é😀")


def test_the_real_cli_prints_no_traceback_for_a_surrogate_escape() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "daytonaflow.cli", "expr", '{{ "\\ud800" }}'],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "surrogate half" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_template_argument_that_was_not_utf8_is_a_clear_error() -> None:
    # What Python makes of the command-line bytes b'\xff' (surrogateescape).
    code, _, err = run(['{{ "\udcff" }}'])
    assert code == 1
    assert "the template: not valid UTF-8 text" in err


def test_a_context_file_nested_too_deeply_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 5000 + "]" * 5000)
    code, _, err = run(["{{ 1 }}", "--context", str(path)])
    assert code == 1
    assert f"the context file {path}: nested deeper than the limit" in err


def test_a_context_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"root": {"data": "caf\xe9"}}')
    code, _, err = run(["{{ 1 }}", "--context", str(path)])
    assert code == 1
    assert f"the context file {path}: not UTF-8 text" in err


def test_a_lone_surrogate_built_at_run_time_is_printed_escaped() -> None:
    # fromJSON() decodes a JSON escape of a surrogate half as it is: printed raw, no encoder
    # could write it, so the output falls back to ASCII escapes (still the same JSON value).
    code, out, err = run(['{{ fromJSON(`"\\ud800"`) + "é" }}'])
    assert (code, err) == (0, "")
    assert out == '"\\ud800\\u00e9"\n'
    assert json.loads(out) == "\ud800é"
