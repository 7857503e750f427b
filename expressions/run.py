"""The state of one evaluation: what it reads and the budget it spends."""

from __future__ import annotations

from typing import Any

from daytonaflow.expressions.context import ExpressionContext
from daytonaflow.expressions.errors import ExpressionLimitError
from daytonaflow.expressions.limits import Limits


class Run:
    """One evaluation of one expression; ``steps`` counts the work done so far."""

    __slots__ = ("accumulator", "context", "index", "limits", "max_steps", "pointer", "steps", "variables")

    def __init__(self, context: ExpressionContext, limits: Limits) -> None:
        self.context = context
        self.limits = limits
        self.max_steps = limits.max_steps
        self.steps = 0
        # The element a predicate is looking at: what # reads; #index and #acc likewise.
        self.pointer: Any = None
        self.index = 0
        self.accumulator: Any = None
        # The values the enclosing lets bound; made by the first let (most expressions have none).
        self.variables: dict[str, Any] | None = None

    def charge(self, steps: int) -> None:
        """Spend ``steps`` of the budget (a builtin charges for each element it visits)."""
        self.steps += steps
        if self.steps > self.max_steps:
            raise ExpressionLimitError(f"the expression took more than {self.max_steps} evaluation steps")

    def sized(self, value: Any, operation: str) -> Any:
        """``value`` unchanged, once checked against the string and list size limits."""
        kind = type(value)
        if kind is str and len(value) > self.limits.max_string_length:
            raise ExpressionLimitError(
                f"{operation} would build a string of {len(value)} characters "
                f"(limit {self.limits.max_string_length})"
            )
        if (kind is list or kind is dict) and len(value) > self.limits.max_list_length:
            raise ExpressionLimitError(
                f"{operation} would build a {'list' if kind is list else 'map'} of {len(value)} items "
                f"(limit {self.limits.max_list_length})"
            )
        return value
