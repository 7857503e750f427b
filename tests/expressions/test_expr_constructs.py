"""expr-lang's constructs beyond operators: let, if/else, pipes, closure variables, ranges, slices,
nil comparisons of missing fields, durations and date arithmetic. Each row: template, value."""

from typing import Any

import pytest

from daytonaflow.expressions import (
    ExpressionContext,
    ExpressionSyntaxError,
    ExpressionTypeError,
    MissingFieldError,
    evaluate_expression,
    resolve,
)

CASES: list[tuple[str, Any]] = [
    # let and if/else
    ("{{ let x = 2; x * 3 }}", 6),
    ("{{ let x = 2; let y = x + 1; [x, y] }}", [2, 3]),
    ('{{ let id = $["Create Sandbox"].data.id; id + "-" + id }}', "sb-123-sb-123"),
    ("{{ let x = 1; map([10, 20], let x = # + x; x) }}", [11, 21]),
    ('{{ if root().data.count > 2 { "many" } else { "few" } }}', "many"),
    ('{{ if false { "a" } else if true { "b" } else { "c" } }}', "b"),
    # pipes: the value on the left becomes the first argument
    ('{{ $["Run tests"].data.names | map(upper(#)) }}', ["A", "B"]),
    ('{{ $["Clone"].data.values | map(# * 10) | sum() }}', 60),
    ('{{ $["Clone"].data.values | sortBy(#, "desc") | first() }}', 3),
    ("{{ root().data.branch | upper() }}", "MAIN"),
    # closure variables
    ("{{ map(['a', 'b'], #index) }}", [0, 1]),
    ("{{ filter([5, 6, 7], #index > 0) }}", [6, 7]),
    ("{{ reduce([1, 2, 3], #acc * 10 + #) }}", 123),
    ("{{ reduce([], #acc + #) }}", None),
    ('{{ reduce(["a", "b"], #acc + # + string(#index), "") }}', "a0b1"),
    ("{{ sum([1, 2, 3], # * 2) }}", 12),
    ("{{ map([[1, 2], [3]], sum(#)) }}", [3, 3]),
    # ranges and slices
    ("{{ 1..5 }}", [1, 2, 3, 4, 5]),
    ("{{ 3..1 }}", []),
    ("{{ [1, 2, 3, 4][1:3] }}", [2, 3]),
    ("{{ [1, 2, 3][:2] }}", [1, 2]),
    ('{{ "hello"[1:] }}', "ello"),
    ("{{ (1..10)[-2:] }}", [9, 10]),
    # a missing field compared with nil is nil, as in expr-lang
    ('{{ $["Create Sandbox"].data.missing == nil }}', True),
    ('{{ $["Create Sandbox"].data.missing != nil }}', False),
    ('{{ nil == $["Create Sandbox"].data.missing }}', True),
    ('{{ $["Create Sandbox"].data.id == nil }}', False),
    ('{{ $["Nowhere"] == nil }}', True),
    ('{{ $["Clone"].data.nothing == nil }}', True),
    # the other new array and map functions
    ("{{ groupBy([1, 2, 3, 4], # % 2 == 0) }}", {"false": [1, 3], "true": [2, 4]}),
    ("{{ sortBy(['bb', 'a', 'ccc'], len(#)) }}", ["a", "bb", "ccc"]),
    ("{{ sort(['b', 'a']) }}", ["a", "b"]),
    ("{{ uniq([1, 1.0, 'a', 'a', [1], [1]]) }}", [1, "a", [1]]),
    ("{{ flatten([1, [2, [3, [4]]]]) }}", [1, 2, 3, 4]),
    ("{{ concat([1], [], [2, 3]) }}", [1, 2, 3]),
    ("{{ take([1, 2], 5) }}", [1, 2]),
    ("{{ median([4, 1, 3, 2]) }}", 2.5),
    ("{{ mean([]) }}", 0.0),
    ("{{ splitAfter('a,b,c', ',', 2) }}", ["a,", "b,c"]),
    ("{{ toPairs({}) }}", []),
    # durations and date arithmetic
    ('{{ duration("1h") + duration("30m") }}', "1h30m0s"),
    ('{{ duration("2h45m").Truncate(duration("1h")) }}', "2h0m0s"),
    ('{{ duration("1.5s") }}', "1.5s"),
    ('{{ duration("250ms") }}', "250ms"),
    ('{{ duration("-90s") }}', "-1m30s"),
    ('{{ duration("0") }}', "0s"),
    ('{{ duration("1h") > duration("59m") }}', True),
    ('{{ date("2026-03-05") + duration("36h") }}', "2026-03-06T12:00:00Z"),
    ('{{ date("2026-03-05") - duration("1h") }}', "2026-03-04T23:00:00Z"),
    ('{{ date("2026-03-06") - date("2026-03-05") }}', "24h0m0s"),
    ('{{ (now() - date($["Create Sandbox"].timestamp)).Minutes() }}', 7.1520576),
    ('{{ date("2026-03-05T10:00:00Z", "Europe/Zurich") }}', "2026-03-05T11:00:00+01:00"),
    ('{{ date("2026-03-05", "2006-01-02", "Asia/Tokyo") }}', "2026-03-05T00:00:00+09:00"),
    ('{{ date("2026-03-05", timezone("Asia/Tokyo")).UTC() }}', "2026-03-04T15:00:00Z"),
    ("{{ date(1772719629123) }}", "2026-03-05T14:07:09.123000Z"),
    ('{{ now().In("Asia/Tokyo").Hour() }}', 23),
    ('{{ date("2026-03-05").Equal(date("2026-03-05T01:00:00+01:00")) }}', True),
    ('{{ now().Round(duration("1m")) }}', "2026-03-05T14:07:00Z"),
    ("when: {{ duration('1m30s') }}", "when: 1m30s"),
]


@pytest.mark.parametrize(("template", "expected"), CASES, ids=[case[0] for case in CASES])
def test_construct_resolves_to_its_value(ctx: ExpressionContext, template: str, expected: Any) -> None:
    assert resolve(template, ctx) == expected


def test_a_missing_field_outside_a_nil_comparison_is_still_an_error_with_suggestions(
    ctx: ExpressionContext,
) -> None:
    with pytest.raises(MissingFieldError, match='has no field "idd"; did you mean "id"'):
        resolve('{{ $["Create Sandbox"].data.idd }}', ctx)


def test_only_the_last_step_of_a_nil_comparison_forgives_a_missing_field(ctx: ExpressionContext) -> None:
    with pytest.raises(MissingFieldError, match='has no field "missing"'):
        resolve('{{ $["Create Sandbox"].data.missing.deeper == nil }}', ctx)


def test_a_let_variable_is_unknown_after_its_expression(ctx: ExpressionContext) -> None:
    with pytest.raises(ExpressionSyntaxError, match="unknown name 'x'"):
        resolve("{{ [let x = 1; x, x] }}", ctx)


def test_acc_outside_reduce_is_a_syntax_error_with_a_caret(ctx: ExpressionContext) -> None:
    with pytest.raises(ExpressionSyntaxError, match=r"#acc is the accumulator of reduce\(\)") as caught:
        resolve("{{ map([1], #acc) }}", ctx)
    assert caught.value.offset == 12


def test_if_without_else_names_what_is_missing(ctx: ExpressionContext) -> None:
    with pytest.raises(ExpressionSyntaxError, match="expected else after the if block"):
        resolve('{{ if true { "a" } }}', ctx)


def test_sort_refuses_values_of_mixed_kinds(ctx: ExpressionContext) -> None:
    with pytest.raises(
        ExpressionTypeError, match="sort\\(\\) compares numbers, strings or dates of one kind"
    ):
        resolve("{{ sort([1, 'a']) }}", ctx)


def test_sort_order_must_be_asc_or_desc(ctx: ExpressionContext) -> None:
    with pytest.raises(ExpressionTypeError, match='sorts "asc" or "desc", got "down"'):
        resolve('{{ sort([1], "down") }}', ctx)


def test_unknown_duration_unit_lists_the_units(ctx: ExpressionContext) -> None:
    with pytest.raises(
        ExpressionTypeError, match=r"unknown unit 'd' in duration '1d'.*units: ns, us, ms, s, m, h"
    ):
        resolve('{{ duration("1d") }}', ctx)


def test_unknown_time_zone_is_a_clear_error(ctx: ExpressionContext) -> None:
    with pytest.raises(ExpressionTypeError, match="timezone\\(\\): unknown time zone 'Mars/Olympus'"):
        resolve('{{ timezone("Mars/Olympus") }}', ctx)


def test_the_machine_local_zone_is_refused(ctx: ExpressionContext) -> None:
    with pytest.raises(ExpressionTypeError, match='"Local" zone is not supported'):
        resolve('{{ timezone("Local") }}', ctx)


def test_a_misspelt_duration_method_is_suggested(ctx: ExpressionContext) -> None:
    with pytest.raises(
        ExpressionTypeError, match=r"durations have no method Hour\(\); did you mean Hours\(\)\?"
    ):
        resolve('{{ duration("1h").Hour() }}', ctx)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ('memory.find("deploys", {env: "prod"})', "canvas memory"),
        ('memory.findFirst("deploys", {env: "prod"})', "canvas memory"),
        ("run().url", "describes a SuperPlane run"),
        ("app().name", "describes the SuperPlane app"),
        ("order().id", "work order"),
    ],
)
def test_superplane_server_functions_say_why_they_are_not_supported(
    ctx: ExpressionContext, expression: str, reason: str
) -> None:
    with pytest.raises(ExpressionSyntaxError, match=f"not supported here: .*{reason}"):
        resolve("{{ " + expression + " }}", ctx)


def test_bare_expressions_use_the_constructs_too(ctx: ExpressionContext) -> None:
    assert evaluate_expression('let n = len($["Run tests"].data.names); n > 1 && n < 5', ctx) is True


def test_every_function_is_listed_with_a_signature_for_the_palette() -> None:
    from daytonaflow.expressions.builtins import BUILTINS

    for name in ("sortBy", "groupBy", "reduce", "filter", "duration", "timezone", "splitAfter", "flatten"):
        assert BUILTINS[name].signature.startswith(name + "(")
