"""The errors the expression language raises, each naming where it happened."""

from __future__ import annotations

from daytonaflow.errors import DaytonaflowError


class ExpressionError(DaytonaflowError):
    """A template could not be resolved.

    ``detail`` is the message without location; ``node`` and ``field`` say which node's
    configuration field held the template, and prefix the message as
    ``node "Run tests" field "sandbox": ...`` when given.
    """

    def __init__(self, detail: str, *, node: str | None = None, field: str | None = None) -> None:
        self.detail = detail
        self.node = node
        self.field = field
        super().__init__(_located(detail, node, field))

    def located(self, *, node: str | None, field: str | None) -> ExpressionError:
        """The same error, attributed to ``node`` and ``field`` (those already set win)."""
        clone = _copy_error(self)
        clone.node = self.node or node
        clone.field = self.field or field
        clone.args = (_located(self.detail, clone.node, clone.field),)
        return clone

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else self.detail


def _located(detail: str, node: str | None, field: str | None) -> str:
    where = []
    if node:
        where.append(f'node "{node}"')
    if field:
        where.append(f'field "{field}"')
    return f"{' '.join(where)}: {detail}" if where else detail


def with_caret(message: str, text: str, offset: int) -> str:
    """``message`` followed by the line of ``text`` holding ``offset`` and a caret under that column."""
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    line = text[line_start : len(text) if line_end == -1 else line_end]
    column = offset - line_start
    line_number = text.count("\n", 0, offset) + 1
    where = f" (line {line_number}, column {column + 1})" if "\n" in text else f" (column {column + 1})"
    return f"{message}{where}\n  {line}\n  {' ' * column}^"


def _copy_error(error: ExpressionError) -> ExpressionError:
    clone = error.__class__.__new__(error.__class__)
    clone.__dict__.update(error.__dict__)
    return clone


class ExpressionSyntaxError(ExpressionError):
    """The template or the expression inside it is not well formed."""

    #: Where in the template text the problem is (0-based), for editors that put a caret there.
    offset: int | None = None

    @classmethod
    def at(cls, message: str, text: str, offset: int) -> ExpressionSyntaxError:
        """The error ``message`` about ``text`` at ``offset``, its message showing the caret."""
        error = cls(with_caret(message, text, offset))
        error.offset = offset
        return error


class ReferenceNotFoundError(ExpressionError):
    """A ``$["key"]`` named no node of the chain, or ``previous(n)``/``root()`` has nothing to return."""


class AmbiguousReferenceError(ExpressionError):
    """A ``$["component"]`` key matched several nodes of the chain."""


class MissingFieldError(ExpressionError):
    """A member or index access found no such key or index."""


class ExpressionTypeError(ExpressionError):
    """An operation or builtin got a value of a type it does not accept."""


class ExpressionLimitError(ExpressionError):
    """Evaluation went over a size, depth or step limit."""
