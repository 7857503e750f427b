"""The builtin functions, over JSON values and dates. Each charges the run for the work it does."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daytonaflow.expressions.dates import parse_date
from daytonaflow.expressions.errors import ExpressionLimitError, ExpressionTypeError
from daytonaflow.expressions.lexer import INT64_MAX
from daytonaflow.expressions.run import Run
from daytonaflow.expressions.values import Date, is_number, render, to_json_value, type_name

Implementation = Callable[[Run, list[Any]], Any]


@dataclass(frozen=True, slots=True)
class Builtin:
    name: str
    min_arguments: int
    max_arguments: int
    implementation: Implementation
    signature: str


BUILTINS: dict[str, Builtin] = {}


def _builtin(
    signature: str, min_arguments: int, max_arguments: int | None = None
) -> Callable[[Implementation], Implementation]:
    def register(function: Implementation) -> Implementation:
        name = signature.split("(", 1)[0]
        top = min_arguments if max_arguments is None else max_arguments
        BUILTINS[name] = Builtin(name, min_arguments, top, function, signature)
        return function

    return register


def _expect(name: str, value: Any, *kinds: str) -> None:
    if type_name(value) not in kinds:
        raise ExpressionTypeError(f"{name}() expects {' or '.join(kinds)}, got {type_name(value)}")


def _string_arguments(name: str, arguments: list[Any]) -> None:
    for argument in arguments:
        _expect(name, argument, "string")


def _int_argument(name: str, value: Any) -> int:
    _expect(name, value, "int")
    return int(value)


# -- references ----------------------------------------------------------------------------------


@_builtin("previous([n])", 0, 1)
def _previous(run: Run, arguments: list[Any]) -> Any:
    steps = _int_argument("previous", arguments[0]) if arguments else 1
    return run.context.previous(steps)


@_builtin("root()", 0)
def _root(run: Run, arguments: list[Any]) -> Any:
    return run.context.root_event()


# -- strings -------------------------------------------------------------------------------------


@_builtin("len(v)", 1)
def _len(run: Run, arguments: list[Any]) -> Any:
    (value,) = arguments
    _expect("len", value, "string", "array", "map")
    return len(value)


@_builtin("upper(s)", 1)
def _upper(run: Run, arguments: list[Any]) -> Any:
    _string_arguments("upper", arguments)
    run.charge(len(arguments[0]) // 64)
    return run.sized(arguments[0].upper(), "upper()")


@_builtin("lower(s)", 1)
def _lower(run: Run, arguments: list[Any]) -> Any:
    _string_arguments("lower", arguments)
    run.charge(len(arguments[0]) // 64)
    return run.sized(arguments[0].lower(), "lower()")


@_builtin("trim(s[, chars])", 1, 2)
def _trim(run: Run, arguments: list[Any]) -> Any:
    _string_arguments("trim", arguments)
    return arguments[0].strip(arguments[1]) if len(arguments) == 2 else arguments[0].strip()


@_builtin("trimPrefix(s, prefix)", 2)
def _trim_prefix(run: Run, arguments: list[Any]) -> Any:
    _string_arguments("trimPrefix", arguments)
    return arguments[0].removeprefix(arguments[1])


@_builtin("trimSuffix(s, suffix)", 2)
def _trim_suffix(run: Run, arguments: list[Any]) -> Any:
    _string_arguments("trimSuffix", arguments)
    return arguments[0].removesuffix(arguments[1])


@_builtin("split(s, separator[, n])", 2, 3)
def _split(run: Run, arguments: list[Any]) -> Any:
    _string_arguments("split", arguments[:2])
    text, separator = arguments[0], arguments[1]
    limit = _int_argument("split", arguments[2]) if len(arguments) == 3 else -1
    if limit == 0:
        return []
    run.charge(len(text) // 16)
    if separator == "":
        # Go splits on "" into characters, the last one holding the rest when n is given.
        whole = limit < 0 or limit >= len(text)
        parts = list(text) if whole else [*text[: limit - 1], text[limit - 1 :]]
    else:
        parts = text.split(separator, limit - 1 if limit > 0 else -1)
    return run.sized(parts, "split()")


@_builtin("join(array[, separator])", 1, 2)
def _join(run: Run, arguments: list[Any]) -> Any:
    _expect("join", arguments[0], "array")
    separator = arguments[1] if len(arguments) == 2 else ""
    _expect("join", separator, "string")
    items = arguments[0]
    run.charge(len(items))
    for item in items:
        if type(item) is not str:
            raise ExpressionTypeError(f"join() expects an array of strings, found {type_name(item)} in it")
    total = sum(len(item) for item in items) + len(separator) * max(len(items) - 1, 0)
    if total > run.limits.max_string_length:
        raise ExpressionLimitError(
            f"join() would build a string of {total} characters (limit {run.limits.max_string_length})"
        )
    return separator.join(items)


@_builtin("replace(s, old, new)", 3)
def _replace(run: Run, arguments: list[Any]) -> Any:
    _string_arguments("replace", arguments)
    text, old, new = arguments
    count = text.count(old) if old else len(text) + 1
    if len(text) + count * (len(new) - len(old)) > run.limits.max_string_length:
        raise ExpressionLimitError(
            f"replace() would build a string over {run.limits.max_string_length} characters"
        )
    return text.replace(old, new)


@_builtin("repeat(s, n)", 2)
def _repeat(run: Run, arguments: list[Any]) -> Any:
    _expect("repeat", arguments[0], "string")
    times = _int_argument("repeat", arguments[1])
    if times < 0:
        raise ExpressionTypeError(f"repeat() needs a count of 0 or more, got {times}")
    if len(arguments[0]) * times > run.limits.max_string_length:
        raise ExpressionLimitError(
            f"repeat() would build a string of {len(arguments[0]) * times} characters "
            f"(limit {run.limits.max_string_length})"
        )
    return arguments[0] * times


@_builtin("indexOf(s, substring)", 2)
def _index_of(run: Run, arguments: list[Any]) -> Any:
    _string_arguments("indexOf", arguments)
    return arguments[0].find(arguments[1])


@_builtin("lastIndexOf(s, substring)", 2)
def _last_index_of(run: Run, arguments: list[Any]) -> Any:
    _string_arguments("lastIndexOf", arguments)
    return arguments[0].rfind(arguments[1])


@_builtin("hasPrefix(s, prefix)", 2)
def _has_prefix(run: Run, arguments: list[Any]) -> Any:
    _string_arguments("hasPrefix", arguments)
    return arguments[0].startswith(arguments[1])


@_builtin("hasSuffix(s, suffix)", 2)
def _has_suffix(run: Run, arguments: list[Any]) -> Any:
    _string_arguments("hasSuffix", arguments)
    return arguments[0].endswith(arguments[1])


# -- conversions ---------------------------------------------------------------------------------


@_builtin("int(v)", 1)
def _int(run: Run, arguments: list[Any]) -> Any:
    (value,) = arguments
    _expect("int", value, "int", "float", "string")
    if type(value) is str:
        try:
            return _in_range(int(value.strip().replace("_", "")), "int()")
        except ValueError:
            raise ExpressionTypeError(f"int() cannot convert {value!r} to an integer") from None
    if type(value) is float and not math.isfinite(value):
        raise ExpressionTypeError(f"int() cannot convert {value} to an integer")
    return _in_range(int(value), "int()")


def _in_range(value: int, operation: str) -> int:
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise ExpressionLimitError(f"{operation}: integer overflow (the range is 64-bit)")
    return value


@_builtin("float(v)", 1)
def _float(run: Run, arguments: list[Any]) -> Any:
    (value,) = arguments
    _expect("float", value, "int", "float", "string")
    try:
        result = float(value)
    except ValueError:
        raise ExpressionTypeError(f"float() cannot convert {value!r} to a number") from None
    if not math.isfinite(result):
        raise ExpressionTypeError(f"float() cannot convert {value!r} to a finite number")
    return result


@_builtin("string(v)", 1)
def _string(run: Run, arguments: list[Any]) -> Any:
    return run.sized(render(arguments[0]), "string()")


@_builtin("toJSON(v)", 1)
def _to_json(run: Run, arguments: list[Any]) -> Any:
    try:
        text = json.dumps(to_json_value(arguments[0]), ensure_ascii=False, separators=(",", ":"))
    except (ValueError, RecursionError) as error:
        raise ExpressionTypeError(f"toJSON() cannot encode the value: {error}") from None
    run.charge(len(text) // 64)
    return run.sized(text, "toJSON()")


@_builtin("fromJSON(s)", 1)
def _from_json(run: Run, arguments: list[Any]) -> Any:
    _string_arguments("fromJSON", arguments)
    text = arguments[0]
    run.charge(len(text) // 64)
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ExpressionLimitError("fromJSON(): the JSON nests too deeply") from None
    except ValueError as error:
        raise ExpressionTypeError(f"fromJSON(): invalid JSON: {error}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


@_builtin("toBase64(s)", 1)
def _to_base64(run: Run, arguments: list[Any]) -> Any:
    _string_arguments("toBase64", arguments)
    return run.sized(base64.b64encode(arguments[0].encode()).decode("ascii"), "toBase64()")


@_builtin("fromBase64(s)", 1)
def _from_base64(run: Run, arguments: list[Any]) -> Any:
    _string_arguments("fromBase64", arguments)
    try:
        return base64.b64decode(arguments[0], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as error:
        raise ExpressionTypeError(f"fromBase64(): {error}") from None


@_builtin("type(v)", 1)
def _type(run: Run, arguments: list[Any]) -> Any:
    return type_name(arguments[0])


# -- maps and arrays -----------------------------------------------------------------------------


@_builtin("keys(map)", 1)
def _keys(run: Run, arguments: list[Any]) -> Any:
    _expect("keys", arguments[0], "map")
    run.charge(len(arguments[0]))
    return list(arguments[0])


@_builtin("values(map)", 1)
def _values(run: Run, arguments: list[Any]) -> Any:
    _expect("values", arguments[0], "map")
    run.charge(len(arguments[0]))
    return list(arguments[0].values())


@_builtin("first(array)", 1)
def _first(run: Run, arguments: list[Any]) -> Any:
    _expect("first", arguments[0], "array")
    return arguments[0][0] if arguments[0] else None


@_builtin("last(array)", 1)
def _last(run: Run, arguments: list[Any]) -> Any:
    _expect("last", arguments[0], "array")
    return arguments[0][-1] if arguments[0] else None


@_builtin("get(v, key)", 2)
def _get(run: Run, arguments: list[Any]) -> Any:
    container, key = arguments
    if type(container) is dict:
        return container.get(key) if type(key) is str else None
    if type(container) is list and type(key) is int:
        return container[key] if -len(container) <= key < len(container) else None
    _expect("get", container, "array", "map")
    return None


# -- numbers -------------------------------------------------------------------------------------


def _numbers(name: str, arguments: list[Any], run: Run) -> list[Any]:
    values = arguments[0] if len(arguments) == 1 and type(arguments[0]) is list else arguments
    run.charge(len(values))
    if not values:
        raise ExpressionTypeError(f"{name}() needs at least one number")
    for value in values:
        if not is_number(value):
            raise ExpressionTypeError(f"{name}() expects numbers, got {type_name(value)}")
    return list(values)


@_builtin("abs(n)", 1)
def _abs(run: Run, arguments: list[Any]) -> Any:
    _expect("abs", arguments[0], "int", "float")
    return abs(arguments[0])


@_builtin("max(n, ...)", 1, 1_000)
def _max(run: Run, arguments: list[Any]) -> Any:
    return max(_numbers("max", arguments, run))


@_builtin("min(n, ...)", 1, 1_000)
def _min(run: Run, arguments: list[Any]) -> Any:
    return min(_numbers("min", arguments, run))


@_builtin("sum(array)", 1)
def _sum(run: Run, arguments: list[Any]) -> Any:
    _expect("sum", arguments[0], "array")
    if not arguments[0]:
        return 0
    return sum(_numbers("sum", arguments, run))


@_builtin("ceil(n)", 1)
def _ceil(run: Run, arguments: list[Any]) -> Any:
    _expect("ceil", arguments[0], "int", "float")
    return float(math.ceil(arguments[0]))


@_builtin("floor(n)", 1)
def _floor(run: Run, arguments: list[Any]) -> Any:
    _expect("floor", arguments[0], "int", "float")
    return float(math.floor(arguments[0]))


@_builtin("round(n)", 1)
def _round(run: Run, arguments: list[Any]) -> Any:
    _expect("round", arguments[0], "int", "float")
    value = arguments[0]
    # Half away from zero, as Go's math.Round (Python's round() rounds half to even).
    return float(math.floor(abs(value) + 0.5)) * (1.0 if value >= 0 else -1.0)


# -- dates ---------------------------------------------------------------------------------------


@_builtin("now()", 0)
def _now(run: Run, arguments: list[Any]) -> Any:
    return Date(run.context.clock())


@_builtin("date(s[, layout])", 1, 2)
def _date(run: Run, arguments: list[Any]) -> Any:
    if type(arguments[0]) is Date and len(arguments) == 1:
        return arguments[0]
    _string_arguments("date", arguments)
    try:
        return Date(parse_date(arguments[0], arguments[1] if len(arguments) == 2 else None))
    except ValueError as error:
        raise ExpressionTypeError(f"date(): {error}") from None


FUNCTION_NAMES = frozenset(BUILTINS)


def call_builtin(run: Run, name: str, arguments: list[Any]) -> Any:
    builtin = BUILTINS[name]
    if not builtin.min_arguments <= len(arguments) <= builtin.max_arguments:
        raise ExpressionTypeError(f"{builtin.signature} takes {_count(builtin)}, got {len(arguments)}")
    return builtin.implementation(run, arguments)


def _count(builtin: Builtin) -> str:
    low, high = builtin.min_arguments, builtin.max_arguments
    if low == high:
        return f"{low} argument{'s' if low != 1 else ''}"
    if high >= 1_000:
        return f"at least {low} argument{'s' if low != 1 else ''}"
    return f"{low} to {high} arguments"
