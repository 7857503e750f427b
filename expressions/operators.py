"""The binary operators: arithmetic, comparison, membership, string tests, ranges."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import re2  # type: ignore[import-untyped, unused-ignore]

from daytonaflow.expressions.dates import add_duration, between, checked_duration
from daytonaflow.expressions.errors import ExpressionLimitError, ExpressionSyntaxError, ExpressionTypeError
from daytonaflow.expressions.lexer import INT64_MAX
from daytonaflow.expressions.run import Run
from daytonaflow.expressions.values import Date, Duration, equal, is_number, type_name

_INT64_MIN = -INT64_MAX - 1


def _type_error(operator: str, left: Any, right: Any) -> ExpressionTypeError:
    return ExpressionTypeError(f"cannot apply {operator} to {type_name(left)} and {type_name(right)}")


def _checked_int(value: int, operator: str) -> int:
    if not _INT64_MIN <= value <= INT64_MAX:
        raise ExpressionLimitError(f"integer overflow in {operator} (integers are 64-bit)")
    return value


def _add(run: Run, operator: str, left: Any, right: Any) -> Any:
    if type(left) is int and type(right) is int:
        return _checked_int(left + right, operator)
    if is_number(left) and is_number(right):
        return _finite(left + right, operator)
    if type(left) is type(right) and type(left) in (str, list):
        joined: Any = left + right
        run.charge(len(joined) // 256)
        return run.sized(joined, "+")
    return _time_arithmetic(operator, left, right)


def _time_arithmetic(operator: str, left: Any, right: Any) -> Any:
    """expr-lang's date arithmetic: date +/- duration, date - date, duration +/- duration."""
    left_kind, right_kind = type(left), type(right)
    if operator == "+":
        if left_kind is Date and right_kind is Duration:
            return add_duration(left, right, "+")
        if left_kind is Duration and right_kind is Date:
            return add_duration(right, left, "+")
        if left_kind is Duration and right_kind is Duration:
            return checked_duration(left.nanoseconds + right.nanoseconds, "+")
    if operator == "-":
        if left_kind is Date and right_kind is Date:
            return between(left, right)
        if left_kind is Date and right_kind is Duration:
            return add_duration(left, Duration(-right.nanoseconds), "-")
        if left_kind is Duration and right_kind is Duration:
            return checked_duration(left.nanoseconds - right.nanoseconds, "-")
    raise _type_error(operator, left, right)


def _finite(value: float, operator: str) -> float:
    if not math.isfinite(value):
        raise ExpressionLimitError(f"{operator} overflowed the range of a float")
    return value


def _arithmetic(run: Run, operator: str, left: Any, right: Any) -> Any:
    if not (is_number(left) and is_number(right)):
        return _time_arithmetic(operator, left, right)
    if operator == "-":
        result = left - right
        return _checked_int(result, operator) if type(result) is int else _finite(result, operator)
    if operator == "*":
        result = left * right
        return _checked_int(result, operator) if type(result) is int else _finite(result, operator)
    if operator == "/":
        if right == 0:
            raise ExpressionTypeError(f"division by zero in {left} / {right}")
        return _finite(left / right, operator)
    if operator == "%":
        if type(left) is not int or type(right) is not int:
            raise _type_error(operator, left, right)
        if right == 0:
            raise ExpressionTypeError(f"modulo by zero in {left} % {right}")
        # Go's % truncates toward zero: the result takes the dividend's sign.
        remainder = abs(left) % abs(right)
        return -remainder if left < 0 else remainder
    try:
        return _finite(float(left) ** float(right), operator)
    except OverflowError:
        raise ExpressionLimitError(f"{left} {operator} {right} overflowed the range of a float") from None
    except ZeroDivisionError:
        raise ExpressionTypeError(f"{left} {operator} {right}: zero to a negative power") from None


def _compare(run: Run, operator: str, left: Any, right: Any) -> Any:
    comparable = (
        (is_number(left) and is_number(right))
        or (type(left) is str and type(right) is str)
        or (type(left) is Date and type(right) is Date)
        or (type(left) is Duration and type(right) is Duration)
    )
    if not comparable:
        raise _type_error(operator, left, right)
    if type(left) is Date:
        left, right = left.moment, right.moment
    elif type(left) is Duration:
        left, right = left.nanoseconds, right.nanoseconds
    if operator == "<":
        return left < right
    if operator == ">":
        return left > right
    if operator == "<=":
        return left <= right
    return left >= right


def _equality(run: Run, operator: str, left: Any, right: Any) -> Any:
    same = _charged_equal(run, left, right)
    return same if operator == "==" else not same


def _charged_equal(run: Run, left: Any, right: Any) -> bool:
    """expr-lang equality, charging a step per pair of elements compared: a value built with
    ``let`` can hold one array many times over, and comparing it must not take exponential time."""
    if type(left) is not list and type(left) is not dict:
        return equal(left, right)
    pending: list[tuple[Any, Any]] = [(left, right)]
    while pending:
        a, b = pending.pop()
        run.charge(1)
        if type(a) is list and type(b) is list:
            if len(a) != len(b):
                return False
            pending.extend(zip(a, b, strict=True))
        elif type(a) is dict and type(b) is dict:
            if a.keys() != b.keys():
                return False
            pending.extend((a[key], b[key]) for key in a)
        elif not equal(a, b):
            return False
    return True


def _membership(run: Run, operator: str, left: Any, right: Any) -> Any:
    if type(right) is list:
        run.charge(len(right))
        return any(_charged_equal(run, left, item) for item in right)
    if type(right) is dict:
        return type(left) is str and left in right
    hint = " (use contains for substrings)" if type(right) is str else ""
    raise ExpressionTypeError(f"in needs an array or a map on its right, got {type_name(right)}{hint}")


def _string_test(run: Run, operator: str, left: Any, right: Any) -> Any:
    if type(left) is not str or type(right) is not str:
        raise _type_error(operator.removeprefix("not "), left, right)
    name = operator.removeprefix("not ")
    if name == "contains":
        return right in left
    if name == "startsWith":
        return left.startswith(right)
    if name == "endsWith":
        return left.endswith(right)
    if len(right) > run.limits.max_regex_length:
        raise ExpressionLimitError(f"the pattern of matches is over {run.limits.max_regex_length} characters")
    run.charge(1 + len(left) // 64)
    return _regex(right).search(left) is not None


@lru_cache(maxsize=256)
def _regex(pattern: str) -> Any:
    """A compiled RE2 pattern: Go's regexp syntax, matched in linear time (no catastrophic backtracking)."""
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 8 << 20
    try:
        return re2.compile(pattern, options)
    except re2.error as error:
        reason = error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else str(error)
        raise ExpressionSyntaxError(f"invalid regular expression {pattern!r}: {reason}") from None


def _range(run: Run, operator: str, left: Any, right: Any) -> Any:
    if type(left) is not int or type(right) is not int:
        raise _type_error(operator, left, right)
    size = right - left + 1
    if size > run.limits.max_list_length:
        raise ExpressionLimitError(
            f"{left}..{right} would build a list of {size} items (limit {run.limits.max_list_length})"
        )
    run.charge(max(size, 0))
    return list(range(left, right + 1))


OPERATIONS: dict[str, Callable[[Run, str, Any, Any], Any]] = {
    "+": _add,
    "-": _arithmetic,
    "*": _arithmetic,
    "/": _arithmetic,
    "%": _arithmetic,
    "**": _arithmetic,
    "^": _arithmetic,
    "<": _compare,
    ">": _compare,
    "<=": _compare,
    ">=": _compare,
    "==": _equality,
    "!=": _equality,
    "in": _membership,
    "contains": _string_test,
    "startsWith": _string_test,
    "endsWith": _string_test,
    "matches": _string_test,
    "..": _range,
}
