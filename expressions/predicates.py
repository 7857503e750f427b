"""Predicate builtins (``filter``, ``map``, ``all``...): a body evaluated per element, ``#`` bound to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from daytonaflow.expressions.builtins import sorted_values, sum_numbers
from daytonaflow.expressions.errors import ExpressionTypeError
from daytonaflow.expressions.run import Run
from daytonaflow.expressions.values import Date, render, type_name

Evaluator = Callable[[Run], Any]


class Predicate:
    """A predicate body, applied to one element at a time with # bound to it."""

    __slots__ = ("body_of", "function", "text")

    def __init__(self, function: str, body_of: Evaluator, text: str) -> None:
        self.function = function
        self.body_of = body_of
        self.text = text

    def value(self, run: Run, item: Any, index: int) -> Any:
        run.pointer = item
        run.index = index
        run.charge(1)
        return self.body_of(run)

    def test(self, run: Run, item: Any, index: int) -> bool:
        result = self.value(run, item, index)
        if type(result) is not bool:
            raise ExpressionTypeError(
                f"the predicate of {self.function}() must give a bool, got {type_name(result)} ({self.text})"
            )
        return result


def _one(run: Run, items: list[Any], predicate: Predicate) -> bool:
    matches = 0
    for index, item in enumerate(items):
        if predicate.test(run, item, index):
            matches += 1
            if matches > 1:
                return False
    return matches == 1


def _find_index(items: list[Any], run: Run, predicate: Predicate, indexes: range) -> int:
    for index in indexes:
        if predicate.test(run, items[index], index):
            return index
    return -1


def _found(items: list[Any], index: int) -> Any:
    return items[index] if index >= 0 else None


def _group_by(run: Run, items: list[Any], predicate: Predicate) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = {}
    for index, item in enumerate(items):
        key = predicate.value(run, item, index)
        if type(key) is not str:
            if type(key) in (list, dict):
                raise ExpressionTypeError(
                    f"the closure of groupBy() must give a string, number or bool key, "
                    f"got {type_name(key)} ({predicate.text})"
                )
            # Maps here have string keys, as JSON's: 1 groups under "1", true under "true".
            key = key.iso() if type(key) is Date else render(key)
        groups.setdefault(key, []).append(item)
    return groups


def _sort_by(run: Run, items: list[Any], predicate: Predicate, extras: list[Any]) -> list[Any]:
    order = extras[0] if extras else "asc"
    if order not in ("asc", "desc"):
        shown = f'"{order}"' if type(order) is str else type_name(order)
        raise ExpressionTypeError(f'sortBy() sorts "asc" or "desc", got {shown}')
    keys = [predicate.value(run, item, index) for index, item in enumerate(items)]
    return sorted_values(run, "sortBy", items, keys, order == "desc")


def _reduce(run: Run, items: list[Any], predicate: Predicate, extras: list[Any]) -> Any:
    if extras:
        accumulator, start = extras[0], 0
    elif items:
        accumulator, start = items[0], 1
    else:
        return None
    for index in range(start, len(items)):
        run.accumulator = accumulator
        accumulator = predicate.value(run, items[index], index)
    return accumulator


def _sum(run: Run, items: list[Any], predicate: Predicate) -> Any:
    values = [predicate.value(run, item, index) for index, item in enumerate(items)]
    return sum_numbers(run, values)


def _plain(
    apply: Callable[[Run, list[Any], Predicate], Any],
) -> Callable[[Run, list[Any], Predicate, list[Any]], Any]:
    """A closure function that takes nothing after its closure (the parser has checked)."""
    return lambda run, items, predicate, extras: apply(run, items, predicate)


PREDICATES: dict[str, Callable[[Run, list[Any], Predicate, list[Any]], Any]] = {
    "all": _plain(
        lambda run, items, predicate: all(predicate.test(run, item, i) for i, item in enumerate(items))
    ),
    "any": _plain(
        lambda run, items, predicate: any(predicate.test(run, item, i) for i, item in enumerate(items))
    ),
    "none": _plain(
        lambda run, items, predicate: not any(predicate.test(run, item, i) for i, item in enumerate(items))
    ),
    "one": _plain(_one),
    "filter": _plain(
        lambda run, items, predicate: [item for i, item in enumerate(items) if predicate.test(run, item, i)]
    ),
    "map": _plain(
        lambda run, items, predicate: [predicate.value(run, item, i) for i, item in enumerate(items)]
    ),
    "count": _plain(
        lambda run, items, predicate: sum(1 for i, item in enumerate(items) if predicate.test(run, item, i))
    ),
    "find": _plain(
        lambda run, items, predicate: _found(items, _find_index(items, run, predicate, range(len(items))))
    ),
    "findIndex": _plain(lambda run, items, predicate: _find_index(items, run, predicate, range(len(items)))),
    "findLast": _plain(
        lambda run, items, predicate: _found(
            items, _find_index(items, run, predicate, range(len(items) - 1, -1, -1))
        )
    ),
    "findLastIndex": _plain(
        lambda run, items, predicate: _find_index(items, run, predicate, range(len(items) - 1, -1, -1))
    ),
    "groupBy": _plain(_group_by),
    "sortBy": _sort_by,
    "reduce": _reduce,
    "sum": _plain(_sum),
}
