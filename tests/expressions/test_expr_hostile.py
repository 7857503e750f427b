"""Hostile templates fail fast with a clear error instead of hanging, exhausting memory or escaping."""

import pytest

from daytonaflow.expressions import (
    ExpressionContext,
    ExpressionError,
    ExpressionLimitError,
    Limits,
    resolve,
)

HOSTILE: list[tuple[str, str]] = [
    ("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}", "nests deeper than"),
    ("{{ " + "[" * 500 + "]" * 500 + " }}", "nests deeper than"),
    ("{{ " + "-" * 3000 + "1 }}", "nests deeper than"),
    ("{{ " + "not " * 2000 + "true }}", "nests deeper than"),
    ("{{ root()" + ".data" * 1500 + " }}", "levels deep"),
    ("{{ " + "1 + " * 4000 + "1 }}", "characters long"),
    ("{{ 1..100000000 }}", "would build a list of 100000000 items"),
    ("{{ repeat('x', 100000000) }}", "would build a string of 100000000 characters"),
    ("{{ repeat('x', 600000) + repeat('y', 600000) }}", "would build a string of 1200000 characters"),
    ("{{ join(split(repeat('a', 900000), ''), 'bb') }}", "items"),
    ("{{ 'a' * 100000000 }}", "cannot apply * to string and int"),
    ("{{ 99999999999999999999999 }}", "out of range"),
    ("{{ 9223372036854775807 + 1 }}", "integer overflow"),
    ("{{ 3037000500 * 3037000500 }}", "integer overflow"),
    ("{{ 10 ** 400 }}", "overflowed the range of a float"),
    ("{{ fromJSON(repeat('[', 200000) + repeat(']', 200000)) }}", "nests too deeply"),
    ("{{ $.__class__ }}", 'no earlier node in this run is named "__class__"'),
    ("{{ root().__class__ }}", 'has no field "__class__"'),
    ("{{ 'x'.__class__ }}", 'cannot read field "__class__" of string'),
    ('{{ __import__("os") }}', "unknown function __import__()"),
    ('{{ eval("1") }}', "unknown function eval()"),
    ("{{ previous(1000000) }}", "previous(1000000): only 3 nodes ran before this one"),
    ("{{ replace(repeat('a', 1000), 'a', repeat('b', 5000)) }}", "replace() would build a string"),
    ("{{ map(1..1000, map(1..1000, #)) }}", "evaluation steps"),
    ("{{ filter([1], # + 1) }}", "the predicate of filter() must give a bool, got int (# + 1)"),
]


@pytest.mark.parametrize(("template", "message"), HOSTILE, ids=[f"hostile-{i}" for i in range(len(HOSTILE))])
def test_hostile_template_fails_fast_with_a_clear_error(
    ctx: ExpressionContext, template: str, message: str
) -> None:
    with pytest.raises(ExpressionError) as caught:
        resolve(template, ctx)
    assert message in str(caught.value)


def test_catastrophic_regex_is_matched_in_linear_time(ctx: ExpressionContext) -> None:
    # Backtracking engines take ages on (a+)+$ against "aaa...!"; RE2 answers at once.
    assert resolve("{{ repeat('a', 5000) + '!' matches '(a+)+$' }}", ctx) is False


def test_regex_backreferences_are_rejected_as_in_go(ctx: ExpressionContext) -> None:
    with pytest.raises(ExpressionError, match="invalid regular expression"):
        resolve("{{ 'aa' matches '(a)\\\\1' }}", ctx)


def test_step_limit_stops_long_evaluations(ctx: ExpressionContext) -> None:
    tight = Limits(max_steps=50)
    with pytest.raises(ExpressionLimitError, match="more than 50 evaluation steps"):
        resolve("{{ " + " + ".join(["1"] * 60) + " }}", ctx, limits=tight)


def test_step_limit_counts_the_elements_builtins_visit(ctx: ExpressionContext) -> None:
    with pytest.raises(ExpressionLimitError, match="evaluation steps"):
        resolve("{{ sum(1..90000) + sum(1..90000) }}", ctx, limits=Limits(max_steps=100_000))


def test_the_hostile_table_has_twenty_entries() -> None:
    assert len(HOSTILE) >= 20
