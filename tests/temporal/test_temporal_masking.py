"""What the activities mask before anything reaches Temporal's history (no server needed)."""

from __future__ import annotations

import pytest

pytest.importorskip("temporalio")

from daytonaflow.temporal._activities import _Progress, _RecordingSecrets
from daytonaflow.temporal._records import RunOptions


class _Secrets:
    def __init__(self, values: dict[str, str]) -> None:
        self._values = values

    def get(self, secret: str, key: str) -> str:
        return self._values[key]


def _handed_out(value: str) -> _RecordingSecrets:
    secrets = _RecordingSecrets(_Secrets({"key": value}))
    secrets.get("db", "key")
    return secrets


def test_a_secret_in_text_is_masked_everywhere_in_a_document() -> None:
    secrets = _handed_out("5432")
    masked = secrets.redact({"output": "port 5432", "lines": ("at 5432",), "nested": [{"e": "x5432"}]})
    assert masked == {"output": "port ***", "lines": ["at ***"], "nested": [{"e": "x***"}]}


def test_an_identifier_that_happens_to_contain_a_secret_is_left_whole() -> None:
    secrets = _handed_out("5432")
    sandbox = "7c1e5432-aa10-4b2c-9d3e-0f1a2b3c4d5e"
    key = "0a1b5432c3d4/9f3a5432c0de11223344556677889900"
    assert secrets.redact({"sandbox": sandbox, "creating": key}) == {"sandbox": sandbox, "creating": key}


def test_a_secret_split_over_two_pieces_of_output_is_masked_in_the_heartbeat() -> None:
    secrets = _handed_out("hunter22")
    progress = _Progress("execution", "node", secrets)
    progress.add("password: hun")
    progress.add("ter22 accepted")
    assert progress.details()["output"] == "password: *** accepted"


def test_run_options_a_workflow_cannot_run_with_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="heartbeat_seconds must be above 0"):
        RunOptions(heartbeat_seconds=0)
    with pytest.raises(ValueError, match="max_history_events must be between 1 and 45000"):
        RunOptions(max_history_events=60_000)
