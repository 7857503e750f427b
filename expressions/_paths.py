"""The fixed field paths templates read from node events: ``$["Create Sandbox"].data.id`` is
(``Create Sandbox``, ``data``, ``id``). Load-time checks compare them with what nodes emit."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

from daytonaflow.expressions.builtins import FUNCTION_NAMES
from daytonaflow.expressions.lexer import SourceError
from daytonaflow.expressions.limits import DEFAULT_LIMITS
from daytonaflow.expressions.nodes import Binary, Literal, Member, Node, NodeReference, children
from daytonaflow.expressions.parser import PREDICATE_FUNCTIONS, parse
from daytonaflow.expressions.template import TemplatePart, split_template

_FUNCTIONS = FUNCTION_NAMES | PREDICATE_FUNCTIONS


@dataclass(frozen=True, slots=True)
class FieldPath:
    """A node reference followed by the field names and indexes read from it, as written.

    ``texts[i]`` is the source text up to and including ``steps[i]`` (for messages). A path stops
    before the first step that is not a literal (``[key]``) or that is read with ``?.``, and is
    not listed when it sits on the left of ``??``: there a missing field is expected, not a slip.
    """

    key: str
    steps: tuple[str | int, ...]
    texts: tuple[str, ...]
    #: Where the reference starts in the expression.
    offset: int


@lru_cache(maxsize=4096)
def template_field_paths(text: str) -> tuple[FieldPath, ...]:
    """The field paths of every expression inside the template string ``text``, in order.

    A template that does not parse has none here (its syntax error is reported elsewhere).
    Each distinct text is parsed once: a large canvas repeats the same templates many times.
    """
    paths: list[FieldPath] = []
    for part in split_template(text):
        if isinstance(part, TemplatePart):
            paths.extend(expression_field_paths(part.source))
    return tuple(paths)


def expression_field_paths(source: str) -> list[FieldPath]:
    """The field paths of a bare expression (no delimiters); none when it does not parse."""
    try:
        tree = parse(source, functions=_FUNCTIONS, max_depth=DEFAULT_LIMITS.max_depth)
    except SourceError:
        return []
    return _paths_in(tree)


class _Tolerance(Enum):
    """How much of a chain may be missing without an error, where it stands."""

    NONE = "none"
    #: ``a.b.c == nil``: a missing ``c`` is nil (as in Expr), a missing ``b`` still an error.
    LAST_STEP = "last step"
    #: The left of ``??``: anything missing is nil.
    ALL = "all"


def _paths_in(tree: Node) -> list[FieldPath]:
    found: list[FieldPath] = []
    pending: list[tuple[Node, _Tolerance]] = [(tree, _Tolerance.NONE)]
    while pending:
        node, tolerance = pending.pop()
        if isinstance(node, Member):
            chain = _member_chain(node)
            base = chain[0].target
            checked = chain[:-1] if tolerance is _Tolerance.LAST_STEP and _is_named(chain[-1]) else chain
            if isinstance(base, NodeReference):
                path = _path_of(base, checked)
                if path is not None and tolerance is not _Tolerance.ALL:
                    found.append(path)
            else:
                pending.append((base, tolerance))
            # Computed keys hold expressions of their own: $["A"].data[$["B"].data.name]
            pending.extend((member.key, _Tolerance.NONE) for member in chain)
        elif isinstance(node, Binary) and node.operator == "??":
            pending.append((node.left, _Tolerance.ALL))
            pending.append((node.right, tolerance))
        elif isinstance(node, Binary) and node.operator in ("==", "!=") and _is_nil(node.right):
            pending.append((node.left, _compared_with_nil(tolerance)))
            pending.append((node.right, tolerance))
        elif isinstance(node, Binary) and node.operator in ("==", "!=") and _is_nil(node.left):
            pending.append((node.left, tolerance))
            pending.append((node.right, _compared_with_nil(tolerance)))
        else:
            pending.extend((child, tolerance) for child in children(node))
    return sorted(found, key=lambda path: path.offset)


def _compared_with_nil(tolerance: _Tolerance) -> _Tolerance:
    return _Tolerance.ALL if tolerance is _Tolerance.ALL else _Tolerance.LAST_STEP


def _is_nil(node: Node) -> bool:
    return isinstance(node, Literal) and node.value is None


def _is_named(member: Member) -> bool:
    """Whether ``member`` reads a field by name (``.c``, ``["c"]``), not an index."""
    return isinstance(member.key, Literal) and type(member.key.value) is str


def _member_chain(outermost: Member) -> list[Member]:
    """The members of ``a.b.c[0]`` from the innermost (``a.b``) to ``outermost``."""
    chain: list[Member] = []
    current: Node = outermost
    while isinstance(current, Member):
        chain.append(current)
        current = current.target
    chain.reverse()
    return chain


def _path_of(reference: NodeReference, chain: list[Member]) -> FieldPath | None:
    steps: list[str | int] = []
    texts: list[str] = []
    for member in chain:
        key = member.key
        if member.optional or not isinstance(key, Literal):
            break
        value = key.value
        if isinstance(value, bool) or not isinstance(value, str | int):
            break
        steps.append(value)
        texts.append(member.text)
    if not steps:
        return None
    return FieldPath(reference.key, tuple(steps), tuple(texts), reference.offset)
