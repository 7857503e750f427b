"""The Temporal commands' refusals: each a clear message and an exit code, never a traceback; and
their options in ``--help``, which stays as light as before."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from daytonaflow.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, TEMPORAL_EXTRA_MISSING, main

CONNECTION_OPTIONS = (
    "--temporal",
    "--namespace",
    "--task-queue",
    "--tls",
    "--tls-cert",
    "--tls-key",
    "--tls-ca",
    "--tls-server-name",
    "--api-key",
)
#: A Python without the temporal extra, as far as imports go: `import temporalio` fails.
_WITHOUT_EXTRA = """
import sys
sys.modules["temporalio"] = None
from daytonaflow.cli import main
sys.exit(main(sys.argv[1:]))
"""
_MODULES_AFTER = """
import json, sys
from daytonaflow.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
sys.stdout.flush()
sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n")
"""
CANVAS = """\
apiVersion: v1
kind: Canvas
metadata: {name: one}
spec:
  nodes:
    - {id: start, name: Manual Run, type: TYPE_TRIGGER, component: start}
    - {id: pass, name: Pass, type: TYPE_ACTION, component: noop, configuration: {}}
  edges:
    - {sourceId: start, targetId: pass, channel: default}
"""


@pytest.fixture(autouse=True)
def no_temporal_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "TEMPORAL_ADDRESS",
        "TEMPORAL_NAMESPACE",
        "TEMPORAL_API_KEY",
        "TEMPORAL_TLS_CERT",
        "TEMPORAL_TLS_KEY",
        "TEMPORAL_TLS_CA",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def closed_address() -> str:
    """A loopback address nothing listens on (the port was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture
def canvas(tmp_path: Path) -> Path:
    path = tmp_path / "one.yaml"
    path.write_text(CANVAS)
    return path


def python(code: str, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *argv], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "one.yaml", "--engine", "temporal", "--temporal", "127.0.0.1:7233"],
        ["worker", "--temporal", "127.0.0.1:7233"],
        ["runs", "--engine", "temporal", "--temporal", "127.0.0.1:7233"],
    ],
    ids=lambda argv: argv[0],
)
def test_without_the_extra_the_temporal_engine_says_how_to_install_it(
    tmp_path: Path, argv: list[str]
) -> None:
    result = python(_WITHOUT_EXTRA, *argv, cwd=tmp_path)
    assert result.returncode == EXIT_FAILED
    assert result.stderr.strip() == f"error: {TEMPORAL_EXTRA_MISSING}"
    assert (
        TEMPORAL_EXTRA_MISSING
        == "the Temporal engine needs the temporal extra: pip install 'daytonaflow[temporal]'"
    )


def test_an_unreachable_server_is_named(
    temporalio_installed: None, closed_address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "--temporal", closed_address]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: cannot connect to the Temporal server at {closed_address} (namespace default)"
    )
    assert "Traceback" not in err


def test_the_address_falls_back_to_temporal_address(
    temporalio_installed: None,
    closed_address: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", closed_address)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "builds")
    assert main(["runs", "--engine", "temporal"]) == EXIT_FAILED
    assert (
        f"cannot connect to the Temporal server at {closed_address} (namespace builds)"
        in capsys.readouterr().err
    )


def test_a_missing_tls_file_is_named(
    temporalio_installed: None, tmp_path: Path, closed_address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "ca.pem"
    assert main(["runs", "--temporal", closed_address, "--tls-ca", str(missing)]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert f"cannot read the TLS CA certificate {missing}: No such file or directory" in err


def test_an_unknown_run_id_is_named_with_its_namespace(
    temporal_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "show", "0123456789ab", "--temporal", temporal_server]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "0123456789ab" in err and "namespace default" in err


def test_runs_cancel_on_the_embedded_engine_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "cancel", "0123456789ab", "--db", str(tmp_path / "runs.db")]) == EXIT_USAGE
    assert capsys.readouterr().err.strip() == (
        "error: runs cancel is for Temporal runs (--engine temporal): the embedded engine cancels a run"
        " with Ctrl-C in the process running it"
    )


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["run", "one.yaml", "--engine", "temporal"], "--engine temporal"),
        (["runs", "--engine", "temporal"], "--engine temporal"),
        (["worker"], "daytonaflow worker"),
    ],
    ids=lambda value: value[0] if isinstance(value, list) else "",
)
def test_the_temporal_engine_without_an_address_is_a_usage_error(
    temporalio_installed: None,
    tmp_path: Path,
    canvas: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    command: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == EXIT_USAGE
    assert capsys.readouterr().err.strip() == (
        f"error: {command} needs the Temporal server's address: --temporal HOST:PORT or TEMPORAL_ADDRESS"
    )


def test_an_address_without_a_port_is_a_usage_error(
    temporalio_installed: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "--temporal", "localhost"]) == EXIT_USAGE
    assert "--temporal must be HOST:PORT" in capsys.readouterr().err


def test_a_temporal_option_on_the_embedded_engine_is_a_usage_error(
    canvas: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(canvas), "--engine", "embedded", "--namespace", "builds"]) == EXIT_USAGE
    assert capsys.readouterr().err.strip() == (
        "error: --namespace is an option of the Temporal engine: add --engine temporal"
    )


def test_runs_resume_is_for_the_embedded_engine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "resume", "--temporal", "127.0.0.1:7233"]) == EXIT_USAGE
    assert "runs resume is for the embedded engine's run database" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["run", "runs", "worker"])
def test_help_lists_the_temporal_options(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == EXIT_OK
    out = capsys.readouterr().out
    for option in CONNECTION_OPTIONS:
        assert option in out
    if command != "worker":
        assert "--engine {embedded,temporal}" in out


def test_the_top_level_help_lists_the_worker(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "worker" in out and "daytonaflow worker --temporal 127.0.0.1:7233" in out


def modules_after(cwd: Path, *argv: str) -> set[str]:
    result = python(_MODULES_AFTER, *argv, cwd=cwd)
    marker = result.stderr.rindex("MODULES ")
    return set(json.loads(result.stderr[marker + len("MODULES ") :]))


@pytest.mark.parametrize("argv", [["worker", "--help"], ["run", "--help"], ["runs", "--help"]], ids=" ".join)
def test_help_imports_neither_temporal_nor_a_heavy_library(tmp_path: Path, argv: list[str]) -> None:
    loaded = {name.split(".")[0] for name in modules_after(tmp_path, *argv)}
    assert loaded & {"temporalio", "rich", "pydantic", "httpx", "asyncio"} == set()
    assert not any(name.startswith("daytonaflow.temporal") for name in modules_after(tmp_path, *argv))


def test_an_embedded_run_imports_nothing_of_temporal(tmp_path: Path, canvas: Path) -> None:
    modules = modules_after(tmp_path, "run", str(canvas), "--db", str(tmp_path / "runs.db"))
    assert "daytonaflow.runner.engine" in modules
    assert not any(
        name.split(".")[0] == "temporalio" or name.startswith("daytonaflow.temporal") for name in modules
    )
