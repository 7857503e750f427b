"""Errors that help: carets, suggestions, the path that resolved, the operation and types."""

import pytest

from daytonaflow.expressions import (
    AmbiguousReferenceError,
    ChainEntry,
    ExpressionContext,
    ExpressionError,
    ExpressionSyntaxError,
    ExpressionTypeError,
    MissingFieldError,
    ReferenceNotFoundError,
    resolve,
)


def error_of(template: str, ctx: ExpressionContext, **where: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        resolve(template, ctx, **where)  # type: ignore[arg-type]
    return caught.value


def test_syntax_error_shows_the_template_with_a_caret_under_the_column(ctx: ExpressionContext) -> None:
    error = error_of("echo {{ 1 + * 2 }}", ctx)
    assert isinstance(error, ExpressionSyntaxError)
    assert str(error) == "unexpected operator '*' (column 13)\n  echo {{ 1 + * 2 }}\n              ^"


def test_syntax_error_in_a_multiline_template_names_the_line(ctx: ExpressionContext) -> None:
    error = error_of("line one\ncd {{ $[Clone] }}", ctx)
    assert "(line 2, column 9)" in str(error)
    assert str(error).endswith("\n  cd {{ $[Clone] }}\n          ^")
    assert 'a node reference takes a quoted name: $["Node name"]' in str(error)


def test_unterminated_template_points_at_the_opener_and_names_the_escape(ctx: ExpressionContext) -> None:
    error = error_of("cat <<EOF", ctx)
    assert isinstance(error, ExpressionSyntaxError)
    assert "<< has no matching >> (write \\<< for a literal <<)" in str(error)
    assert str(error).endswith("  cat <<EOF\n      ^")


def test_unterminated_string_is_a_syntax_error_pointing_at_its_quote(ctx: ExpressionContext) -> None:
    error = error_of("{{ 'abc }}", ctx)
    assert str(error) == "unterminated string in the template (column 4)\n  {{ 'abc }}\n     ^"


def test_empty_template_is_a_syntax_error(ctx: ExpressionContext) -> None:
    assert "empty template {{ }}" in str(error_of("{{   }}", ctx))


def test_unknown_function_suggests_the_closest_builtin(ctx: ExpressionContext) -> None:
    assert "unknown function uper(); did you mean upper()?" in str(error_of("{{ uper('a') }}", ctx))


def test_bare_name_explains_how_to_read_node_events(ctx: ExpressionContext) -> None:
    message = str(error_of("{{ sandbox.id }}", ctx))
    assert "unknown name 'sandbox'" in message
    assert '$["Node name"], previous() or root()' in message


def test_unknown_node_suggests_the_closest_names(ctx: ExpressionContext) -> None:
    error = error_of('{{ $["Create Sandbx"].data.id }}', ctx)
    assert isinstance(error, ReferenceNotFoundError)
    assert str(error) == (
        '$["Create Sandbx"]: no earlier node in this run is named "Create Sandbx"; '
        'did you mean "Create Sandbox" or "daytona.createSandbox"?'
    )


def test_unknown_node_without_close_match_lists_the_earlier_nodes(ctx: ExpressionContext) -> None:
    message = str(error_of('{{ $["zzz"] }}', ctx))
    assert message.endswith('earlier nodes: "Create Sandbox", "Clone", "Run tests"')


def test_component_key_matching_several_nodes_lists_them(ctx: ExpressionContext) -> None:
    error = error_of('{{ $["daytona.executeCommand"].data }}', ctx)
    assert isinstance(error, AmbiguousReferenceError)
    assert str(error) == (
        '$["daytona.executeCommand"] is ambiguous: 2 earlier nodes are daytona.executeCommand components; '
        'name the one you mean: $["Clone"], $["Run tests"]'
    )


def test_node_name_wins_over_id_and_component() -> None:
    chain = [
        ChainEntry("Build", "Setup", "daytona.createSandbox", {"type": "a", "data": {}, "timestamp": ""}),
        ChainEntry("n2", "Build", "daytona.executeCommand", {"type": "b", "data": {}, "timestamp": ""}),
    ]
    assert resolve('{{ $["Build"].type }}', ExpressionContext(chain)) == "b"
    assert resolve('{{ $["n2"].type }}', ExpressionContext(chain)) == "b"


def test_missing_field_names_the_path_that_resolved_and_the_key_that_did_not(ctx: ExpressionContext) -> None:
    error = error_of('{{ $["Create Sandbox"].data.idd }}', ctx)
    assert isinstance(error, MissingFieldError)
    assert str(error) == (
        '$["Create Sandbox"].data has no field "idd"; did you mean "id"? '
        "(its fields: id, state, labels, cpu, ratio)"
    )


def test_reading_a_field_of_nil_says_which_part_was_nil(ctx: ExpressionContext) -> None:
    message = str(error_of('{{ $["Clone"].data.nothing.deep }}', ctx))
    assert message == (
        'cannot read field "deep" of nil: $["Clone"].data.nothing is nil (use ?. or ?? to allow nil)'
    )


def test_index_out_of_range_names_the_length(ctx: ExpressionContext) -> None:
    message = str(error_of('{{ $["Run tests"].data.names[5] }}', ctx))
    assert message == 'index 5 is out of range: $["Run tests"].data.names has 2 items'


def test_type_error_names_the_operation_and_the_types(ctx: ExpressionContext) -> None:
    error = error_of('{{ "cpu: " + $["Create Sandbox"].data.cpu }}', ctx)
    assert isinstance(error, ExpressionTypeError)
    assert str(error) == "cannot apply + to string and int"


def test_builtin_type_error_names_the_function_and_the_type(ctx: ExpressionContext) -> None:
    assert str(error_of("{{ upper(1) }}", ctx)) == "upper() expects string, got int"


def test_builtin_arity_error_shows_the_signature(ctx: ExpressionContext) -> None:
    assert str(error_of("{{ split('a') }}", ctx)) == "split(s, separator[, n]) takes 2 to 3 arguments, got 1"


def test_conditions_must_be_bools(ctx: ExpressionContext) -> None:
    message = str(error_of("{{ 1 ? 'a' : 'b' }}", ctx))
    assert message == "the condition of ?: must be a bool, got int (1)"


def test_in_on_a_string_points_to_contains(ctx: ExpressionContext) -> None:
    assert "(use contains for substrings)" in str(error_of("{{ 'a' in 'abc' }}", ctx))


def test_division_by_zero_is_an_error(ctx: ExpressionContext) -> None:
    assert "division by zero" in str(error_of("{{ 1 / 0 }}", ctx))


def test_previous_beyond_the_chain_and_missing_root_are_errors() -> None:
    empty = ExpressionContext([])
    assert str(error_of("{{ previous() }}", empty)) == "previous(1): only 0 nodes ran before this one"
    assert str(error_of("{{ root() }}", empty)) == "root(): this run has no root event"


def test_methods_exist_only_on_dates(ctx: ExpressionContext) -> None:
    message = str(error_of("{{ root().data.branch.Format('x') }}", ctx))
    assert message == (
        "cannot call Format() on string (root().data.branch); "
        "only dates, durations and time zones have methods"
    )


def test_errors_name_the_node_and_field_when_given(ctx: ExpressionContext) -> None:
    error = error_of("{{ previous().data.nope }}", ctx, node="Run tests", field="sandbox")
    assert str(error).startswith('node "Run tests" field "sandbox": previous().data has no field "nope"')
    assert (error.node, error.field) == ("Run tests", "sandbox")


def test_unbalanced_bracket_inside_a_template_is_reported_where_it_is(ctx: ExpressionContext) -> None:
    message = str(error_of("x {{ [1, 2 }} y", ctx))
    assert message.startswith("expected ']' to close the list of items, found end of expression (column 12)")


def test_a_node_whose_id_is_its_name_is_suggested_once() -> None:
    event = {"type": "daytona.sandbox", "data": {"id": "abc"}, "timestamp": "2026-01-19T12:00:00Z"}
    ctx = ExpressionContext([ChainEntry("Create Sandbox", "Create Sandbox", "daytona.createSandbox", event)])
    message = str(error_of('{{ $["Create Sandbx"].data.id }}', ctx))
    assert message.count('"Create Sandbox"') == 1
