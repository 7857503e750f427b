"""Chain entries carry their execution's resolved configuration (``.config``), and a context can
reach nodes off its linear chain through an ``upstream`` function (the engine's, after a merge)."""

import pytest

from daytonaflow.expressions import (
    ChainEntry,
    ExpressionContext,
    ReferenceNotFoundError,
    evaluate_expression,
    resolve,
)


def _event(data: dict[str, object]) -> dict[str, object]:
    return {"type": "default", "data": data, "timestamp": "2026-03-05T14:00:00Z"}


REQUEST = ChainEntry(
    "node-http",
    "HTTP Request",
    "http",
    _event({"status": 200}),
    {"url": "https://example.test", "method": "GET"},
)
BRANCH_B = ChainEntry(
    "node-b", "Build B", "daytona.executeCommand", _event({"exitCode": 0}), {"command": "make b"}
)


def _upstream(key: str) -> ChainEntry | None:
    """A hand-made engine: one node ran on another branch of the run."""
    return BRANCH_B if key in ("Build B", "node-b", "daytona.executeCommand") else None


def test_config_is_read_beside_the_event_data() -> None:
    ctx = ExpressionContext([REQUEST])
    assert resolve('{{ $["HTTP Request"].config.url }}', ctx) == "https://example.test"
    assert resolve('{{ $["HTTP Request"].data.status }}', ctx) == 200


def test_previous_sees_the_config_too() -> None:
    assert resolve("{{ previous().config.method }}", ExpressionContext([REQUEST])) == "GET"


def test_a_whole_node_reference_shows_its_config_key() -> None:
    seen = resolve('{{ $["HTTP Request"] }}', ExpressionContext([REQUEST]))
    assert seen["config"] == {"url": "https://example.test", "method": "GET"}
    assert seen["data"] == {"status": 200}


def test_an_entry_without_config_has_no_config_key() -> None:
    ctx = ExpressionContext([ChainEntry("n", "Plain", "noop", _event({}))])
    assert resolve('{{ $["Plain"].config == nil }}', ctx) is True


def test_an_event_that_has_its_own_config_key_keeps_it() -> None:
    event = {**_event({}), "config": "the event's own"}
    ctx = ExpressionContext([ChainEntry("n", "Odd", "noop", event, {"x": 1})])
    assert resolve('{{ $["Odd"].config }}', ctx) == "the event's own"


def test_the_entry_event_itself_is_left_unchanged() -> None:
    ExpressionContext([REQUEST]).lookup("HTTP Request")
    assert "config" not in REQUEST.event


def test_upstream_answers_for_a_node_off_the_linear_chain() -> None:
    ctx = ExpressionContext([REQUEST], upstream=_upstream)
    assert resolve('{{ $["Build B"].data.exitCode }}', ctx) == 0
    assert resolve('{{ $["Build B"].config.command }}', ctx) == "make b"
    assert evaluate_expression('$["HTTP Request"].data.status == 200 && $["node-b"].data.exitCode == 0', ctx)


def test_the_linear_chain_wins_over_upstream() -> None:
    local = ChainEntry("node-b", "Build B", "daytona.executeCommand", _event({"exitCode": 7}))
    ctx = ExpressionContext([local], upstream=_upstream)
    assert resolve('{{ $["Build B"].data.exitCode }}', ctx) == 7


def test_upstream_is_consulted_with_an_empty_chain() -> None:
    assert ExpressionContext([], upstream=_upstream).has("Build B")


def test_has_consults_upstream() -> None:
    ctx = ExpressionContext([REQUEST], upstream=_upstream)
    assert ctx.has("Build B")
    assert not ctx.has("Nowhere")
    assert resolve('{{ $["Nowhere"]?.data ?? "none" }}', ctx) == "none"


def test_a_name_upstream_does_not_know_still_gets_suggestions() -> None:
    ctx = ExpressionContext([REQUEST], upstream=_upstream)
    with pytest.raises(ReferenceNotFoundError, match='did you mean "HTTP Request"'):
        resolve('{{ $["HTTP Requst"].data }}', ctx)
