"""executeCommand's working directory: a leading ``~``, ``$HOME`` or ``${HOME}`` is the sandbox
user's home, and nothing else in the path is ever interpreted by the shell. The scripts run in a
real bash here, with HOME pointed at a temporary directory."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from daytonaflow.components.execute_command import ExecuteCommandConfig, cd_target, shell_script

HOSTILE = ["my app", "it's", "$(touch pwned)", "`touch pwned`", 'a"b', "${IFS}x", "*"]


def _pwd_in(home: Path, cwd: str) -> subprocess.CompletedProcess[str]:
    config = ExecuteCommandConfig.model_validate({"sandbox": "s", "command": "pwd", "cwd": cwd})
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    return subprocess.run(
        ["bash", "-c", shell_script(config)], capture_output=True, text=True, env=env, cwd=home, timeout=30
    )


@pytest.mark.parametrize("home_form", ["~", "$HOME", "${HOME}"])
def test_a_leading_home_form_is_expanded(tmp_path: Path, home_form: str) -> None:
    (tmp_path / "app").mkdir()
    assert _pwd_in(tmp_path, f"{home_form}/app").stdout == f"{tmp_path}/app\n"
    assert _pwd_in(tmp_path, home_form).stdout == f"{tmp_path}\n"


@pytest.mark.parametrize("name", HOSTILE)
def test_the_rest_of_a_home_path_is_taken_literally(tmp_path: Path, name: str) -> None:
    (tmp_path / name).mkdir()
    result = _pwd_in(tmp_path, f"~/{name}")
    assert result.stdout == f"{tmp_path}/{name}\n", result.stderr
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("name", HOSTILE)
def test_an_absolute_path_is_taken_literally(tmp_path: Path, name: str) -> None:
    (tmp_path / name).mkdir()
    result = _pwd_in(tmp_path, f"{tmp_path}/{name}")
    assert result.stdout == f"{tmp_path}/{name}\n", result.stderr
    assert not (tmp_path / "pwned").exists()


def test_tilde_user_is_a_literal_directory_name(tmp_path: Path) -> None:
    (tmp_path / "~root").mkdir()
    assert _pwd_in(tmp_path, "~root").stdout == f"{tmp_path}/~root\n"


def test_home_inside_a_path_is_not_expanded(tmp_path: Path) -> None:
    (tmp_path / "x" / "$HOME").mkdir(parents=True)
    assert _pwd_in(tmp_path, "x/$HOME").stdout == f"{tmp_path}/x/$HOME\n"


def test_a_missing_directory_fails_the_command_before_it_runs(tmp_path: Path) -> None:
    result = _pwd_in(tmp_path, "~/nowhere")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "nowhere" in result.stderr


def test_the_home_forms_become_a_quoted_home_variable() -> None:
    assert cd_target("~/my app") == "\"$HOME\"'/my app'"
    assert cd_target("$HOMEWORK") == "'$HOMEWORK'"
    assert cd_target("~/") == '"$HOME"/'
