"""The fixed field paths templates read from node events: ``$["Create Sandbox"].data.id`` is
(``Create Sandbox``, ``data``, ``id``). Load-time checks compare them with what nodes emit."""

from __future__ import annotations

from dataclasses import dataclass
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


def _paths_in(tree: Node) -> list[FieldPath]:
    found: list[FieldPath] = []
    #: (node, whether a missing field there is tolerated)
    pending: list[tuple[Node, bool]] = [(tree, False)]
    while pending:
        node, tolerated = pending.pop()
        if isinstance(node, Member):
            chain = _member_chain(node)
            base = chain[0].target
            if isinstance(base, NodeReference):
                path = _path_of(base, chain)
                if path is not None and not tolerated:
                    found.append(path)
            else:
                pending.append((base, tolerated))
            # Computed keys hold expressions of their own: $["A"].data[$["B"].data.name]
            pending.extend((member.key, False) for member in chain)
        elif isinstance(node, Binary) and node.operator == "??":
            pending.append((node.left, True))
            pending.append((node.right, tolerated))
        else:
            pending.extend((child, tolerated) for child in children(node))
    return sorted(found, key=lambda path: path.offset)


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
