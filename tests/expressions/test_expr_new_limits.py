"""The functions and constructs added for SuperPlane parity stay inside the limits: a tiny
expression cannot allocate gigabytes, take exponential time or nest a value past what JSON holds."""

import pytest

from daytonaflow.expressions import (
    ExpressionContext,
    ExpressionLimitError,
    Limits,
    evaluate_expression,
    resolve,
)

SMALL_LISTS = Limits(max_list_length=10)


def test_a_huge_range_fails_before_allocating(ctx: ExpressionContext) -> None:
    with pytest.raises(ExpressionLimitError, match=r"1\.\.1000000000 would build a list of 1000000000 items"):
        resolve("{{ 1..1000000000 }}", ctx)


def test_sort_is_charged_its_comparisons(ctx: ExpressionContext) -> None:
    with pytest.raises(ExpressionLimitError, match="more than 1000 evaluation steps"):
        resolve("{{ sort(1..500) }}", ctx, limits=Limits(max_steps=1_000))


def test_sort_by_is_charged_its_comparisons(ctx: ExpressionContext) -> None:
    with pytest.raises(ExpressionLimitError, match="more than 2000 evaluation steps"):
        resolve("{{ sortBy(1..500, -#) }}", ctx, limits=Limits(max_steps=2_000))


def test_median_is_charged_its_sort(ctx: ExpressionContext) -> None:
    with pytest.raises(ExpressionLimitError, match="more than 1500 evaluation steps"):
        resolve("{{ median(1..500) }}", ctx, limits=Limits(max_steps=1_500))


def test_flatten_stops_at_the_list_limit(ctx: ExpressionContext) -> None:
    with pytest.raises(ExpressionLimitError, match="flatten\\(\\) would build a list of more than 10 items"):
        resolve("{{ flatten([1..5, [1..5, 1..5]]) }}", ctx, limits=SMALL_LISTS)


def test_concat_checks_the_total_before_building(ctx: ExpressionContext) -> None:
    with pytest.raises(ExpressionLimitError, match="concat\\(\\) would build a list of 16 items"):
        resolve("{{ concat(1..8, 1..8) }}", ctx, limits=SMALL_LISTS)


def test_split_after_stops_at_the_list_limit(ctx: ExpressionContext) -> None:
    with pytest.raises(
        ExpressionLimitError, match="splitAfter\\(\\) would build a list of more than 10 items"
    ):
        resolve("{{ splitAfter(repeat('a,', 20), ',') }}", ctx, limits=SMALL_LISTS)


def test_a_value_holding_one_array_many_times_cannot_leave_the_language(ctx: ExpressionContext) -> None:
    # Sixty doublings: a few hundred steps, 2**60 elements once written out.
    with pytest.raises(ExpressionLimitError, match="holds more than 1000000 items"):
        resolve("{{ reduce(1..60, [#acc, #acc], 0) }}", ctx)


def test_such_a_value_cannot_be_serialized_inside_either(ctx: ExpressionContext) -> None:
    with pytest.raises(ExpressionLimitError, match="holds more than 1000 items"):
        resolve(
            "{{ len(toJSON(reduce(1..12, [#acc, #acc], 0))) }}", ctx, limits=Limits(max_value_items=1_000)
        )


def test_let_cannot_multiply_a_value_past_the_limit(ctx: ExpressionContext) -> None:
    with pytest.raises(ExpressionLimitError, match="holds more than 1000000 items"):
        resolve("{{ let x = 1..1000; let y = map(1..1000, x); map(1..1000, y) }}", ctx)


def test_comparing_shared_values_is_charged_per_element(ctx: ExpressionContext) -> None:
    # 2**18 leaves each side: without a charge per pair this is a quarter million comparisons.
    with pytest.raises(ExpressionLimitError, match="evaluation steps"):
        resolve("{{ let x = reduce(1..18, [#acc, #acc], 0); x == x }}", ctx)


def test_membership_in_shared_values_is_charged_per_element(ctx: ExpressionContext) -> None:
    with pytest.raises(ExpressionLimitError, match="evaluation steps"):
        resolve("{{ let x = reduce(1..18, [#acc, #acc], 0); x in [x] }}", ctx)


def test_a_value_nested_by_reduce_past_what_can_be_written_is_a_limit_error(ctx: ExpressionContext) -> None:
    with pytest.raises(ExpressionLimitError, match="nests too deeply"):
        resolve("{{ reduce(1..30000, [#acc], 0) }}", ctx)


def test_a_bare_expression_keeps_the_same_value_limit(ctx: ExpressionContext) -> None:
    with pytest.raises(ExpressionLimitError, match="holds more than 1000000 items"):
        evaluate_expression("reduce(1..60, [#acc, #acc], 0)", ctx)


def test_a_duration_past_64_bit_nanoseconds_is_refused(ctx: ExpressionContext) -> None:
    with pytest.raises(ExpressionLimitError, match="overflows 64-bit nanoseconds"):
        resolve('{{ duration("2000000h") + duration("2000000h") + duration("2000000h") }}', ctx)


def test_a_date_moved_past_year_9999_is_refused(ctx: ExpressionContext) -> None:
    with pytest.raises(ExpressionLimitError, match="leaves the years 1 to 9999"):
        resolve('{{ date("9999-12-31").Add(duration("48h")) }}', ctx)


def test_reduce_that_grows_a_string_stops_at_the_string_limit(ctx: ExpressionContext) -> None:
    with pytest.raises(ExpressionLimitError, match="would build a string"):
        resolve("{{ reduce(1..40, #acc + #acc, 'ab') }}", ctx)
