"""The builtin functions, over JSON values and dates. Each charges the run for the work it does."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from daytonaflow.expressions.dates import from_unix, load_zone, parse_date, parse_duration
from daytonaflow.expressions.errors import ExpressionLimitError, ExpressionTypeError
from daytonaflow.expressions.lexer import INT64_MAX
from daytonaflow.expressions.run import Run
from daytonaflow.expressions.values import (
    Date,
    Duration,
    Zone,
    is_number,
    render,
    to_json_text,
    to_json_value,
    type_name,
)

Implementation = Callable[[Run, list[Any]], Any]


@dataclass(frozen=True, slots=True)
class Builtin:
    """A function expressions may call. ``implementation`` is None for the functions that take a
    closure (``filter``, ``sortBy``...): those run in predicates.py, never through call_builtin."""

    name: str
    min_arguments: int
    max_arguments: int
    implementation: Implementation | None
    signature: str


BUILTINS: dict[str, Builtin] = {}


def _closure_function(signature: str) -> None:
    """List a closure-taking function with the others (the UI's palette reads BUILTINS)."""
    name = signature.split("(", 1)[0]
    BUILTINS[name] = Builtin(name, 2, 3, None, signature)


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


@_builtin("splitAfter(s, separator[, n])", 2, 3)
def _split_after(run: Run, arguments: list[Any]) -> Any:
    _string_arguments("splitAfter", arguments[:2])
    text, separator = arguments[0], arguments[1]
    limit = _int_argument("splitAfter", arguments[2]) if len(arguments) == 3 else -1
    if limit == 0:
        return []
    run.charge(len(text) // 16)
    if separator == "":
        whole = limit < 0 or limit >= len(text)
        return run.sized(list(text) if whole else [*text[: limit - 1], text[limit - 1 :]], "splitAfter()")
    parts: list[str] = []
    start = 0
    while limit < 0 or len(parts) < limit - 1:
        found = text.find(separator, start)
        if found == -1:
            break
        parts.append(text[start : found + len(separator)])
        start = found + len(separator)
        if len(parts) >= run.limits.max_list_length:
            raise ExpressionLimitError(
                f"splitAfter() would build a list of more than {run.limits.max_list_length} items"
            )
    parts.append(text[start:])
    return run.sized(parts, "splitAfter()")


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
    return run.sized(render(arguments[0], run.limits.max_value_items), "string()")


@_builtin("toJSON(v)", 1)
def _to_json(run: Run, arguments: list[Any]) -> Any:
    try:
        text = json.dumps(
            to_json_value(arguments[0], run.limits.max_value_items), ensure_ascii=False, separators=(",", ":")
        )
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


@_builtin("take(array, n)", 2)
def _take(run: Run, arguments: list[Any]) -> Any:
    _expect("take", arguments[0], "array")
    count = _int_argument("take", arguments[1])
    if count < 0:
        raise ExpressionTypeError(f"take() needs a count of 0 or more, got {count}")
    run.charge(min(count, len(arguments[0])) // 64)
    return arguments[0][:count]


@_builtin("reverse(array)", 1)
def _reverse(run: Run, arguments: list[Any]) -> Any:
    _expect("reverse", arguments[0], "array")
    run.charge(len(arguments[0]) // 64)
    return arguments[0][::-1]


@_builtin("sort(array[, order])", 1, 2)
def _sort(run: Run, arguments: list[Any]) -> Any:
    _expect("sort", arguments[0], "array")
    descending = _order("sort", arguments[1] if len(arguments) == 2 else "asc")
    return sorted_values(run, "sort", arguments[0], list(arguments[0]), descending)


def _order(name: str, order: Any) -> bool:
    """Whether ``order`` (``"asc"`` or ``"desc"``) asks for descending order."""
    if order not in ("asc", "desc"):
        shown = f'"{order}"' if type(order) is str else type_name(order)
        raise ExpressionTypeError(f'{name}() sorts "asc" or "desc", got {shown}')
    return bool(order == "desc")


def sorted_values(run: Run, name: str, items: list[Any], keys: list[Any], descending: bool) -> list[Any]:
    """``items`` ordered by ``keys`` (numbers, strings or dates, all of one kind); a stable sort."""
    # The comparisons a sort makes: n log n, charged before they happen.
    run.charge(len(keys) * max(len(keys).bit_length(), 1))
    kinds = {_sort_kind(key) for key in keys}
    if None in kinds or len(kinds) > 1:
        found = sorted({type_name(key) for key in keys})
        raise ExpressionTypeError(
            f"{name}() compares numbers, strings or dates of one kind, got {' and '.join(found)}"
        )
    plain = [key.moment if type(key) is Date else key for key in keys]
    order = sorted(range(len(items)), key=plain.__getitem__, reverse=descending)
    return [items[index] for index in order]


def _sort_kind(value: Any) -> str | None:
    if is_number(value):
        return "number"
    if type(value) is str:
        return "string"
    return "date" if type(value) is Date else None


@_builtin("uniq(array)", 1)
def _uniq(run: Run, arguments: list[Any]) -> Any:
    _expect("uniq", arguments[0], "array")
    run.charge(len(arguments[0]))
    seen: set[Any] = set()
    kept: list[Any] = []
    for item in arguments[0]:
        identity = _identity(run, item)
        if identity not in seen:
            seen.add(identity)
            kept.append(item)
    return kept


def _identity(run: Run, value: Any) -> Any:
    """A hashable stand-in for ``value``: equal values (as uniq compares them) share it."""
    kind = type(value)
    if kind is list or kind is dict:
        text = to_json_text(value, max_items=run.limits.max_value_items)
        run.charge(len(text) // 64)
        return (kind.__name__, text)
    if kind is float and value.is_integer():
        return ("number", int(value))
    return ("number" if kind is int else kind.__name__, value)


@_builtin("concat(array, ...)", 1, 1_000)
def _concat(run: Run, arguments: list[Any]) -> Any:
    for argument in arguments:
        _expect("concat", argument, "array")
    total = sum(len(argument) for argument in arguments)
    if total > run.limits.max_list_length:
        raise ExpressionLimitError(
            f"concat() would build a list of {total} items (limit {run.limits.max_list_length})"
        )
    run.charge(total // 64)
    return [item for argument in arguments for item in argument]


@_builtin("flatten(array)", 1)
def _flatten(run: Run, arguments: list[Any]) -> Any:
    _expect("flatten", arguments[0], "array")
    flat: list[Any] = []
    # Depth first with an explicit stack: nesting as deep as the data goes, no recursion.
    pending: list[Any] = [iter(arguments[0])]
    while pending:
        item = next(pending[-1], _EXHAUSTED)
        if item is _EXHAUSTED:
            pending.pop()
            continue
        run.charge(1)
        if type(item) is list:
            pending.append(iter(item))
            continue
        flat.append(item)
        if len(flat) > run.limits.max_list_length:
            raise ExpressionLimitError(
                f"flatten() would build a list of more than {run.limits.max_list_length} items"
            )
    return flat


_EXHAUSTED = object()


@_builtin("toPairs(map)", 1)
def _to_pairs(run: Run, arguments: list[Any]) -> Any:
    _expect("toPairs", arguments[0], "map")
    run.charge(len(arguments[0]))
    return [[key, value] for key, value in arguments[0].items()]


@_builtin("fromPairs(array)", 1)
def _from_pairs(run: Run, arguments: list[Any]) -> Any:
    _expect("fromPairs", arguments[0], "array")
    run.charge(len(arguments[0]))
    result: dict[str, Any] = {}
    for pair in arguments[0]:
        if type(pair) is not list or len(pair) != 2:
            shown = f"an array of {len(pair)}" if type(pair) is list else type_name(pair)
            raise ExpressionTypeError(f"fromPairs() expects [key, value] pairs, found {shown}")
        key = pair[0]
        if type(key) is not str:
            raise ExpressionTypeError(f"fromPairs() needs string keys, found {type_name(key)}")
        result[key] = pair[1]
    return result


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


@_builtin("sum(array[, closure])", 1)
def _sum(run: Run, arguments: list[Any]) -> Any:
    _expect("sum", arguments[0], "array")
    return sum_numbers(run, arguments[0])


def sum_numbers(run: Run, values: list[Any]) -> Any:
    """The sum of ``values`` (0 for none): an int when all are ints, as in expr-lang."""
    if not values:
        return 0
    total = sum(_numbers("sum", [values], run))
    if type(total) is int:
        return _in_range(total, "sum()")
    return _finite_float(total, "sum()")


@_builtin("mean(array)", 1, 1_000)
def _mean(run: Run, arguments: list[Any]) -> Any:
    if _empty_array(arguments):
        return 0.0
    values = _numbers("mean", arguments, run)
    return _finite_float(math.fsum(values) / len(values), "mean()")


@_builtin("median(array)", 1, 1_000)
def _median(run: Run, arguments: list[Any]) -> Any:
    if _empty_array(arguments):
        return 0.0
    values = sorted(_numbers("median", arguments, run))
    run.charge(len(values) * max(len(values).bit_length(), 1))
    middle = len(values) // 2
    if len(values) % 2:
        return float(values[middle])
    return _finite_float((values[middle - 1] + values[middle]) / 2, "median()")


def _empty_array(arguments: list[Any]) -> bool:
    return len(arguments) == 1 and type(arguments[0]) is list and not arguments[0]


def _finite_float(value: float, operation: str) -> float:
    if not math.isfinite(value):
        raise ExpressionLimitError(f"{operation} overflowed the range of a float")
    return float(value)


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


@_builtin("date(v[, layout or zone[, zone]])", 1, 3)
def _date(run: Run, arguments: list[Any]) -> Any:
    value = arguments[0]
    layout, zone = _layout_and_zone(arguments[1:])
    try:
        if type(value) is Date and layout is None:
            return Date(value.moment if zone is None else value.moment.astimezone(zone.info))
        if is_number(value) and layout is None:
            return Date(from_unix(value, UTC if zone is None else zone.info))
        _expect("date", value, "string", "int", "float", "date")
        moment = parse_date(value.strip(), layout, UTC if zone is None else zone.info)
    except ValueError as error:
        raise ExpressionTypeError(f"date(): {error}") from None
    return Date(moment if zone is None else moment.astimezone(zone.info))


def _layout_and_zone(extra: list[Any]) -> tuple[str | None, Zone | None]:
    """date()'s optional arguments: a Go layout and a zone (expr-lang), or just a zone (SuperPlane)."""
    if not extra:
        return None, None
    last = extra[-1]
    if len(extra) == 2:
        _expect("date", extra[0], "string")
        return extra[0], _zone_argument(last)
    if type(last) is Zone:
        return None, last
    _expect("date", last, "string", "timezone")
    try:
        return None, load_zone(last)
    except ValueError:
        return last, None  # not a zone's name: a layout


def _zone_argument(value: Any) -> Zone:
    if type(value) is Zone:
        return value
    _expect("date", value, "string", "timezone")
    try:
        return load_zone(value)
    except ValueError as error:
        raise ExpressionTypeError(f"date(): {error}") from None


@_builtin("duration(s)", 1)
def _duration(run: Run, arguments: list[Any]) -> Any:
    _string_arguments("duration", arguments)
    try:
        return Duration(parse_duration(arguments[0].strip()))
    except ValueError as error:
        raise ExpressionTypeError(f"duration(): {error}") from None


@_builtin("timezone(name)", 1)
def _timezone(run: Run, arguments: list[Any]) -> Any:
    _string_arguments("timezone", arguments)
    try:
        return load_zone(arguments[0])
    except ValueError as error:
        raise ExpressionTypeError(f"timezone(): {error}") from None


# -- functions taking a closure (evaluated in predicates.py) ----------------------------------

for _signature in (
    "all(array, predicate)",
    "any(array, predicate)",
    "none(array, predicate)",
    "one(array, predicate)",
    "filter(array, predicate)",
    "map(array, closure)",
    "count(array, predicate)",
    "find(array, predicate)",
    "findIndex(array, predicate)",
    "findLast(array, predicate)",
    "findLastIndex(array, predicate)",
    "groupBy(array, closure)",
    "sortBy(array, closure[, order])",
    "reduce(array, closure[, initial])",
):
    _closure_function(_signature)


FUNCTION_NAMES = frozenset(BUILTINS)


def call_builtin(run: Run, name: str, arguments: list[Any]) -> Any:
    builtin = BUILTINS[name]
    if not builtin.min_arguments <= len(arguments) <= builtin.max_arguments:
        raise ExpressionTypeError(f"{builtin.signature} takes {_count(builtin)}, got {len(arguments)}")
    if builtin.implementation is None:
        # The parser turns every call of a closure function into a closure call; kept for safety.
        raise ExpressionTypeError(f"{builtin.signature} needs a closure, as in {name}(xs, # > 1)")
    return builtin.implementation(run, arguments)


def _count(builtin: Builtin) -> str:
    low, high = builtin.min_arguments, builtin.max_arguments
    if low == high:
        return f"{low} argument{'s' if low != 1 else ''}"
    if high >= 1_000:
        return f"at least {low} argument{'s' if low != 1 else ''}"
    return f"{low} to {high} arguments"
