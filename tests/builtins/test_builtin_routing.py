"""The core ``if``, ``filter`` and ``noop`` components: bare expressions route the run."""

from __future__ import annotations

import pytest
from builtin_support import HookContext, event

from daytonaflow.builtins import Filter, If, Noop
from daytonaflow.builtins._base import ExpressionResultError
from daytonaflow.expressions import ExpressionError

CHAIN = [event("start", {"branch": "main"}, "manual.run"), event("Tests", {"exitCode": 0, "output": "ok"})]


def test_the_expression_fields_are_literal_so_the_engine_never_resolves_them() -> None:
    assert If.literal_fields == frozenset({"expression"})
    assert Filter.literal_fields == frozenset({"expression"})


async def test_if_emits_on_true_when_the_expression_holds() -> None:
    ctx = HookContext(If, {"expression": '$["Tests"].data.exitCode == 0'}, chain=CHAIN)
    await If().execute(ctx)
    assert ctx.channel == "true"
    assert ctx.emitted is not None and ctx.emitted[1].event_type == "if.executed"
    assert ctx.data == {}
    assert ctx.evaluated == [('$["Tests"].data.exitCode == 0', "expression")]


async def test_if_emits_on_false_when_the_expression_does_not_hold() -> None:
    ctx = HookContext(If, {"expression": 'root().data.branch != "main"'}, chain=CHAIN)
    await If().execute(ctx)
    assert ctx.channel == "false"


async def test_if_with_a_non_boolean_result_fails_naming_the_node_field_and_value() -> None:
    ctx = HookContext(If, {"expression": '$["Tests"].data.output'}, node_id="check", chain=CHAIN)
    with pytest.raises(ExpressionResultError) as raised:
        await If().execute(ctx)
    assert (
        str(raised.value)
        == 'node "check": field "expression" must evaluate to true or false, got a string "ok"'
    )


async def test_an_expression_error_names_the_node_and_field() -> None:
    ctx = HookContext(If, {"expression": '$["Nope"].data.x == 1'}, node_id="check", chain=CHAIN)
    with pytest.raises(ExpressionError) as raised:
        await If().execute(ctx)
    assert 'node "check"' in str(raised.value)
    assert "expression" in str(raised.value)


def test_if_requires_its_expression() -> None:
    assert [str(issue) for issue in If.validate_config({}, allow_expressions=True)] == [
        "expression is required"
    ]
    assert [str(issue) for issue in If.validate_config({"expression": ""}, allow_expressions=True)] == [
        "expression must not be empty"
    ]


async def test_filter_emits_on_default_when_the_expression_holds() -> None:
    ctx = HookContext(Filter, {"expression": 'root().data.branch == "main"'}, chain=CHAIN)
    await Filter().execute(ctx)
    assert ctx.channel == "default"
    assert ctx.emitted is not None and ctx.emitted[1].event_type == "filter.executed"


async def test_filter_ends_without_output_when_the_expression_does_not_hold() -> None:
    ctx = HookContext(Filter, {"expression": "1 > 2"}, chain=CHAIN)
    await Filter().execute(ctx)
    assert ctx.emitted is None
    assert ctx.check_delay is None


async def test_filter_with_a_non_boolean_result_fails_naming_the_node_and_field() -> None:
    ctx = HookContext(Filter, {"expression": "1 + 1"}, node_id="only-main", chain=CHAIN)
    with pytest.raises(
        ExpressionResultError, match=r'node "only-main": field "expression" .* got a number 2'
    ):
        await Filter().execute(ctx)


async def test_noop_emits_an_empty_noop_finished_payload_on_default() -> None:
    ctx = HookContext(Noop, {})
    await Noop().execute(ctx)
    assert ctx.channel == "default"
    assert ctx.emitted is not None and ctx.emitted[1].event_type == "noop.finished"
    assert ctx.data == {}


def test_noop_takes_no_configuration() -> None:
    assert [str(issue) for issue in Noop.validate_config({"x": 1}, allow_expressions=True)] == [
        "x is not a known field"
    ]
