"""Resolving every template inside a configuration value, and listing the nodes templates reference."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from daytonaflow.expressions.builtins import FUNCTION_NAMES
from daytonaflow.expressions.context import ExpressionContext
from daytonaflow.expressions.errors import (
    ExpressionError,
    ExpressionLimitError,
    ExpressionSyntaxError,
)
from daytonaflow.expressions.evaluator import Evaluator, compile_node
from daytonaflow.expressions.lexer import SourceError
from daytonaflow.expressions.limits import DEFAULT_LIMITS, Limits
from daytonaflow.expressions.nodes import NodeReference, walk
from daytonaflow.expressions.parser import PREDICATE_FUNCTIONS, parse
from daytonaflow.expressions.run import Run
from daytonaflow.expressions.template import TemplatePart, split_template
from daytonaflow.expressions.values import render, to_json_value

_FUNCTIONS = FUNCTION_NAMES | PREDICATE_FUNCTIONS


@dataclass(frozen=True, slots=True)
class CompiledTemplate:
    """A template parsed once: its literal runs and compiled expressions, in order.

    ``single`` is set when the whole string is one template, whose value keeps its type.
    """

    text: str
    parts: tuple[str | Evaluator, ...]
    single: Evaluator | None
    keys: frozenset[str]
    uses_references: bool


@lru_cache(maxsize=4096)
def compile_template(text: str, limits: Limits = DEFAULT_LIMITS) -> CompiledTemplate:
    """``text`` parsed and compiled; each distinct (text, limits) pair is compiled once."""
    parts: list[str | Evaluator] = []
    keys: set[str] = set()
    uses_references = False
    for part in split_template(text):
        if isinstance(part, str):
            parts.append(part)
            continue
        evaluator, part_keys, part_calls = _compile_part(text, part, limits)
        parts.append(evaluator)
        keys |= part_keys
        uses_references = uses_references or bool(part_keys) or part_calls
    single = parts[0] if len(parts) == 1 and not isinstance(parts[0], str) else None
    return CompiledTemplate(text, tuple(parts), single, frozenset(keys), uses_references)


def _compile_part(text: str, part: TemplatePart, limits: Limits) -> tuple[Evaluator, set[str], bool]:
    source = part.source
    if len(source) > limits.max_expression_length:
        raise ExpressionLimitError(
            f"the expression at column {part.offset + 1} is {len(source)} characters long "
            f"(limit {limits.max_expression_length})"
        )
    if not source.strip():
        raise ExpressionSyntaxError.at(f"empty template {part.opener} {_closer(part)}", text, part.offset)
    try:
        tree = parse(source, functions=_FUNCTIONS, max_depth=limits.max_depth)
    except SourceError as error:
        raise ExpressionSyntaxError.at(error.message, text, part.offset + error.offset) from None
    nodes = walk(tree)
    deepest = max(depth for _, depth in nodes)
    if deepest > limits.max_depth:
        raise ExpressionLimitError(
            f"the expression at column {part.offset + 1} nests {deepest} levels deep "
            f"(limit {limits.max_depth})"
        )
    keys = {node.key for node, _ in nodes if isinstance(node, NodeReference)}
    return compile_node(tree), keys, True


def _closer(part: TemplatePart) -> str:
    return "}}" if part.opener == "{{" else ">>"


def evaluate_template(template: CompiledTemplate, context: ExpressionContext, limits: Limits) -> Any:
    """The value of one template string: native when it is a single template, else a string."""
    run = Run(context, limits)
    try:
        if template.single is not None:
            return to_json_value(template.single(run), limits.max_value_items)
        pieces: list[str] = []
        size = 0
        for part in template.parts:
            piece = part if isinstance(part, str) else render(part(run), limits.max_value_items)
            size += len(piece)
            if size > limits.max_string_length:
                raise ExpressionLimitError(f"the resolved text is over {limits.max_string_length} characters")
            pieces.append(piece)
        return "".join(pieces)
    except RecursionError:
        raise ExpressionLimitError("the expression nests too deeply to evaluate") from None


@lru_cache(maxsize=1024)
def _compile_expression(source: str, limits: Limits) -> Evaluator:
    # A bare expression (SuperPlane's expression fields) compiles like the inside of one template.
    return _compile_part(source, TemplatePart(source, 0, "{{"), limits)[0]


def evaluate_expression(
    source: str,
    ctx: ExpressionContext,
    *,
    node: str | None = None,
    field: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Any:
    """The value of a bare expression (no delimiters), e.g. an ``if`` node's ``$["Build"].data.ok``.

    Errors carry the caret under the expression and name ``node`` and ``field``, as templates do.
    """
    try:
        evaluator = _compile_expression(source, limits)
        run = Run(ctx, limits)
        try:
            return to_json_value(evaluator(run), limits.max_value_items)
        except RecursionError:
            raise ExpressionLimitError("the expression nests too deeply to evaluate") from None
    except ExpressionError as error:
        raise error.located(node=node, field=field) from None


def resolve(
    value: Any,
    ctx: ExpressionContext,
    *,
    node: str | None = None,
    field: str | None = None,
    literal_paths: Collection[str] = (),
    limits: Limits = DEFAULT_LIMITS,
) -> Any:
    """``value`` with every template string inside it (nested dicts and lists too) resolved.

    Strings under ``literal_paths`` (dotted paths relative to ``value``, list positions as numbers,
    ``*`` for any one segment) are kept verbatim, escapes included. Errors name ``node`` and the
    field: ``field`` itself, extended with the path inside ``value`` where the template sat.
    """
    patterns = [tuple(path.split(".")) for path in literal_paths]
    return _resolve(value, ctx, [], patterns, node, field, limits)


def _resolve(
    value: Any,
    ctx: ExpressionContext,
    path: list[str],
    patterns: list[tuple[str, ...]],
    node: str | None,
    field: str | None,
    limits: Limits,
) -> Any:
    if patterns and path and _is_literal(path, patterns):
        return value
    kind = type(value)
    if kind is str:
        if "{{" not in value and "<<" not in value:
            return value
        try:
            return evaluate_template(compile_template(value, limits), ctx, limits)
        except ExpressionError as error:
            raise error.located(node=node, field=_join(field, path)) from None
    if kind is dict:
        return {
            key: _resolve(item, ctx, [*path, str(key)], patterns, node, field, limits)
            for key, item in value.items()
        }
    if kind is list:
        return [
            _resolve(item, ctx, [*path, str(index)], patterns, node, field, limits)
            for index, item in enumerate(value)
        ]
    return value


def _is_literal(path: list[str], patterns: list[tuple[str, ...]]) -> bool:
    for pattern in patterns:
        if len(pattern) == len(path) and all(
            wanted in ("*", actual) for wanted, actual in zip(pattern, path, strict=True)
        ):
            return True
    return False


def _join(field: str | None, path: list[str]) -> str | None:
    parts = ([field] if field else []) + path
    return ".".join(parts) if parts else None


def referenced_keys(value: Any, *, literal_paths: Collection[str] = ()) -> set[str]:
    """Every node key (``$["key"]``, ``$.key``) a template inside ``value`` references.

    ``previous()`` and ``root()`` reference no key. Raises ExpressionSyntaxError for a template
    that does not parse, naming the field path where it sits.
    """
    patterns = [tuple(path.split(".")) for path in literal_paths]
    keys: set[str] = set()
    _visit_templates(value, [], patterns, lambda text: keys.update(compile_template(text).keys))
    return keys


def _visit_templates(
    value: Any, path: list[str], patterns: list[tuple[str, ...]], visit: Callable[[str], None]
) -> None:
    if patterns and path and _is_literal(path, patterns):
        return
    if type(value) is str:
        if "{{" in value or "<<" in value:
            try:
                visit(value)
            except ExpressionError as error:
                raise error.located(node=None, field=_join(None, path)) from None
    elif type(value) is dict:
        for key, item in value.items():
            _visit_templates(item, [*path, str(key)], patterns, visit)
    elif type(value) is list:
        for index, item in enumerate(value):
            _visit_templates(item, [*path, str(index)], patterns, visit)
