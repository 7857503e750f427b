"""Predicate builtins (``filter``, ``map``, ``all``...): a body evaluated per element, ``#`` bound to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from daytonaflow.expressions.errors import ExpressionTypeError
from daytonaflow.expressions.run import Run
from daytonaflow.expressions.values import type_name

Evaluator = Callable[[Run], Any]


class Predicate:
    """A predicate body, applied to one element at a time with # bound to it."""

    __slots__ = ("body_of", "function", "text")

    def __init__(self, function: str, body_of: Evaluator, text: str) -> None:
        self.function = function
        self.body_of = body_of
        self.text = text

    def value(self, run: Run, item: Any) -> Any:
        run.pointer = item
        run.charge(1)
        return self.body_of(run)

    def test(self, run: Run, item: Any) -> bool:
        result = self.value(run, item)
        if type(result) is not bool:
            raise ExpressionTypeError(
                f"the predicate of {self.function}() must give a bool, got {type_name(result)} ({self.text})"
            )
        return result


def _one(run: Run, items: list[Any], predicate: Predicate) -> bool:
    matches = 0
    for item in items:
        if predicate.test(run, item):
            matches += 1
            if matches > 1:
                return False
    return matches == 1


def _find_index(items: list[Any], run: Run, predicate: Predicate, indexes: range) -> int:
    for index in indexes:
        if predicate.test(run, items[index]):
            return index
    return -1


def _found(items: list[Any], index: int) -> Any:
    return items[index] if index >= 0 else None


PREDICATES: dict[str, Callable[[Run, list[Any], Predicate], Any]] = {
    "all": lambda run, items, predicate: all(predicate.test(run, item) for item in items),
    "any": lambda run, items, predicate: any(predicate.test(run, item) for item in items),
    "none": lambda run, items, predicate: not any(predicate.test(run, item) for item in items),
    "one": _one,
    "filter": lambda run, items, predicate: [item for item in items if predicate.test(run, item)],
    "map": lambda run, items, predicate: [predicate.value(run, item) for item in items],
    "count": lambda run, items, predicate: sum(1 for item in items if predicate.test(run, item)),
    "find": lambda run, items, predicate: _found(
        items, _find_index(items, run, predicate, range(len(items)))
    ),
    "findIndex": lambda run, items, predicate: _find_index(items, run, predicate, range(len(items))),
    "findLast": lambda run, items, predicate: _found(
        items, _find_index(items, run, predicate, range(len(items) - 1, -1, -1))
    ),
    "findLastIndex": lambda run, items, predicate: _find_index(
        items, run, predicate, range(len(items) - 1, -1, -1)
    ),
}
