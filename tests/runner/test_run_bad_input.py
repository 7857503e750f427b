"""Bad documents through the real CLI: a clear error naming the file, exit code 1, no traceback.

Each case runs ``python -m daytonaflow.cli`` in a subprocess (or ``main`` for arguments too long
for a command line) so what is checked is exactly what a user sees on stderr.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from run_fakes import make_canvas

from daytonaflow import documents
from daytonaflow.builtins import BUILTIN_COMPONENTS
from daytonaflow.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from daytonaflow.runner import Engine, RunInputError, RunStore, load_canvas, parse_canvas

LIMIT_MESSAGE = f"nested deeper than the limit of {documents.MAX_DEPTH} levels"


def cli(*args: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "daytonaflow.cli", *args],
        cwd=cwd,
        input=stdin.decode("latin-1") if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=120,
        env={**_clean_env(), "DAYTONAFLOW_DB": str(cwd / "runs.db")},
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _clean_env() -> dict[str, str]:
    import os

    return {key: value for key, value in os.environ.items() if not key.startswith("DAYTONA")}


def nested_json(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.fixture
def start_only(tmp_path: Path) -> Path:
    path = tmp_path / "start.yaml"
    path.write_text(yaml.safe_dump(make_canvas([], [], name="only-start")))
    return path


# --- canvas files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_canvas_nested_100k_deep_is_refused_naming_the_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"deep{suffix}"
    path.write_text("[" * 100_000 + "]" * 100_000)
    result = cli("validate", path.name, cwd=tmp_path)
    assert result.returncode == EXIT_FAILED
    assert f"{path.name}: 1 problem in canvas" in result.stderr
    # libyaml, when PyYAML has it, stops a flow at its own depth of 1000 while scanning ahead.
    assert LIMIT_MESSAGE in result.stderr or "exceeded maximum nesting depth" in result.stderr


def test_a_yaml_canvas_nested_deeper_than_the_limit_but_within_libyaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * 500 + "]" * 500 + "\n")
    result = cli("validate", path.name, cwd=tmp_path)
    assert result.returncode == EXIT_FAILED
    assert f"deep.yaml: 1 problem in canvas\n  - {LIMIT_MESSAGE}" in result.stderr


def test_a_canvas_that_is_not_utf8_is_refused_with_the_offset(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"apiVersion: v1\nkind: Canvas\nmetadata: {name: caf\xe9}\n")
    result = cli("validate", path.name, cwd=tmp_path)
    assert result.returncode == EXIT_FAILED
    assert "latin1.yaml" in result.stderr
    assert "not UTF-8 text (invalid byte 0xe9 at offset 48)" in result.stderr


def test_validate_of_dev_zero_reads_a_bounded_amount_and_refuses_it(tmp_path: Path) -> None:
    result = cli("validate", "/dev/zero", cwd=tmp_path)
    assert result.returncode == EXIT_FAILED
    assert "/dev/zero" in result.stderr
    assert "larger than the limit of 16 MiB" in result.stderr


def test_a_regular_canvas_file_over_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as handle:
        handle.truncate(documents.MAX_DOCUMENT_BYTES + 1)
    result = cli("validate", path.name, cwd=tmp_path)
    assert result.returncode == EXIT_FAILED
    assert "big.yaml: 1 problem in canvas" in result.stderr
    assert "the file is larger than the limit of 16 MiB" in result.stderr


def test_a_directory_given_as_canvas_is_a_clear_error(tmp_path: Path) -> None:
    result = cli("validate", str(tmp_path), cwd=tmp_path)
    assert result.returncode == EXIT_FAILED
    assert "is a directory, not a file" in result.stderr


def test_yaml_aliases_that_expand_a_billion_times_are_refused(tmp_path: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for level, name in enumerate("bcdefghi"):
        previous = "abcdefghi"[level]
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n")
    result = cli("validate", path.name, cwd=tmp_path)
    assert result.returncode == EXIT_FAILED
    assert f"expands to more than {documents.MAX_YAML_NODES} nodes" in result.stderr


def test_a_yaml_alias_inside_the_node_it_names_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("spec: &loop {nodes: [*loop]}\n")
    with pytest.raises(Exception, match=r"the alias \*loop is inside the node it names"):
        load_canvas(path)


def test_aliases_within_the_limits_still_load(tmp_path: Path) -> None:
    document = make_canvas([], [], name="aliased")
    text = yaml.safe_dump(document) + "extra: &shared {k: v}\nagain: *shared\n"
    assert documents.parse_yaml(text, source="aliased.yaml")["again"] == {"k": "v"}


# --- run input ---------------------------------------------------------------------------------------


def test_an_input_60k_deep_is_refused_naming_input(
    start_only: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # 300 kB: more than one command-line argument may hold, so through main() in-process.
    monkeypatch.setenv("DAYTONAFLOW_DB", str(tmp_path / "runs.db"))
    assert main(["run", str(start_only), "--input", nested_json(60_000)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"--input: {LIMIT_MESSAGE}" in err
    assert "Traceback" not in err


def test_an_input_file_5000_deep_is_refused_naming_the_file(start_only: Path, tmp_path: Path) -> None:
    (tmp_path / "deep-input.json").write_text(nested_json(5000))
    result = cli("run", str(start_only), "--input-file", "deep-input.json", cwd=tmp_path)
    assert result.returncode == EXIT_USAGE
    assert f"deep-input.json: {LIMIT_MESSAGE}" in result.stderr


def test_an_input_file_that_is_not_utf8_is_refused_naming_the_file(start_only: Path, tmp_path: Path) -> None:
    (tmp_path / "input.json").write_bytes(b'{"who": "\xc3("}')
    result = cli("run", str(start_only), "--input-file", "input.json", cwd=tmp_path)
    assert result.returncode == EXIT_USAGE
    assert "input.json: not UTF-8 text (invalid byte 0xc3 at offset 9)" in result.stderr


def test_an_input_with_a_lone_surrogate_escape_is_refused(start_only: Path, tmp_path: Path) -> None:
    result = cli("run", str(start_only), "--input", '{"who": "\\ud800"}', cwd=tmp_path)
    assert result.returncode == EXIT_USAGE
    assert "--input: a string is not valid UTF-8 text" in result.stderr


def test_an_input_file_from_dev_zero_is_refused(start_only: Path, tmp_path: Path) -> None:
    result = cli("run", str(start_only), "--input-file", "/dev/zero", cwd=tmp_path)
    assert result.returncode == EXIT_USAGE
    assert "/dev/zero: larger than the limit of 16 MiB" in result.stderr


def test_an_input_at_the_depth_limit_runs_and_is_stored(start_only: Path, tmp_path: Path) -> None:
    data = json.loads(nested_json(documents.MAX_DEPTH))
    (tmp_path / "input.json").write_text(json.dumps(data))
    result = cli("run", str(start_only), "--input-file", "input.json", "--json", cwd=tmp_path)
    assert result.returncode == EXIT_OK, result.stderr
    with RunStore(tmp_path / "runs.db") as store:
        (run,) = store.list_runs()
        assert run.input == data
        assert store.events(run.id)[0].event["data"] == data


async def test_the_engine_refuses_an_input_deeper_than_the_limit(tmp_path: Path) -> None:
    canvas = load_canvas_from(tmp_path, make_canvas([], []))
    with RunStore(tmp_path / "runs.db") as store:
        engine = Engine(store, registry={})
        with pytest.raises(RunInputError, match=f"the run input: {LIMIT_MESSAGE}"):
            await engine.start(canvas, json.loads(nested_json(documents.MAX_DEPTH + 1)))
        assert store.list_runs() == []


def load_canvas_from(tmp_path: Path, document: dict[str, Any]) -> Any:
    path = tmp_path / "canvas.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_canvas(path)


# --- payloads ----------------------------------------------------------------------------------------


def nested_value(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


async def test_a_payload_nested_past_the_payload_limit_fails_its_node_clearly(engine: Engine) -> None:
    # Depth 230 still passes pydantic's own limit (about 255): only the runner's check stops it.
    deep = nested_value(230)
    canvas = parse_canvas(make_canvas([{"id": "echo", "component": "test.echo"}], [("start", "echo")]))
    canvas.node("echo").configuration["value"] = deep
    record = await engine.run(canvas)
    assert record.status == "failed"
    assert record.error == (
        f'node "echo": test.echo emitted a payload nested deeper than {documents.MAX_PAYLOAD_DEPTH} levels'
    )


class _DeepJson(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = ("[" * 100_000 + "]" * 100_000).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


async def test_an_http_answer_of_deeply_nested_json_is_kept_as_text(store: RunStore) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DeepJson)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/deep"
        config = {"url": url, "maxBodyBytes": 1 << 20}
        document = make_canvas(
            [{"id": "fetch", "component": "http", "configuration": config}], [("start", "fetch")]
        )
        engine = Engine(store, registry=BUILTIN_COMPONENTS)
        record = await engine.run(parse_canvas(document))
    finally:
        server.shutdown()
    assert record.status == "succeeded", record.error
    event = store.events(record.id)[-1].event
    assert event["data"]["status"] == 200
    assert "json" not in event["data"]
    assert event["data"]["body"].startswith("[[[")


def test_a_reader_that_goes_away_ends_the_output_quietly(tmp_path: Path) -> None:
    """`daytonaflow components --json | head -1`: the pipe closes under the CLI."""
    with subprocess.Popen(
        [sys.executable, "-m", "daytonaflow.cli", "components", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**_clean_env(), "DAYTONAFLOW_DB": str(tmp_path / "runs.db")},
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # before the CLI writes a byte
        stderr = process.stderr.read().decode()
        process.wait(timeout=60)
    assert "Traceback" not in stderr
    assert "BrokenPipeError" not in stderr
