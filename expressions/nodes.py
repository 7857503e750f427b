"""The syntax tree of an expression. Every node keeps the source text it was parsed from,
so errors can name the part of the expression that failed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Node:
    text: str
    offset: int


@dataclass(frozen=True, slots=True)
class Literal(Node):
    value: object


@dataclass(frozen=True, slots=True)
class ArrayLiteral(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class MapLiteral(Node):
    entries: tuple[tuple[Node, Node], ...]


@dataclass(frozen=True, slots=True)
class NodeReference(Node):
    """``$["key"]`` or ``$.key``: the event of a node of the chain."""

    key: str


@dataclass(frozen=True, slots=True)
class Pointer(Node):
    """``#``: the element a predicate is looking at (``filter(xs, # > 1)``)."""


@dataclass(frozen=True, slots=True)
class ClosureVariable(Node):
    """``#index`` (the position of the element) or ``#acc`` (reduce's accumulator)."""

    name: str


@dataclass(frozen=True, slots=True)
class Variable(Node):
    """A name bound by ``let name = value; body``."""

    name: str


@dataclass(frozen=True, slots=True)
class Let(Node):
    name: str
    value: Node
    body: Node


@dataclass(frozen=True, slots=True)
class Closure(Node):
    """The predicate argument of ``filter``, ``map``, ``all``...: evaluated once per element."""

    body: Node


@dataclass(frozen=True, slots=True)
class Member(Node):
    """``target.name``, ``target?.name``, ``target[index]`` or ``target?.[index]``."""

    target: Node
    key: Node
    optional: bool


@dataclass(frozen=True, slots=True)
class Slice(Node):
    target: Node
    start: Node | None
    stop: Node | None


@dataclass(frozen=True, slots=True)
class Call(Node):
    function: str
    arguments: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class MethodCall(Node):
    """``target.Name(args)``: methods exist only on date values (``now().Format(...)``)."""

    target: Node
    method: str
    arguments: tuple[Node, ...]
    optional: bool


@dataclass(frozen=True, slots=True)
class Unary(Node):
    operator: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary(Node):
    operator: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Conditional(Node):
    condition: Node
    then: Node
    otherwise: Node


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-expressions of ``node``."""
    if isinstance(node, ArrayLiteral):
        return node.items
    if isinstance(node, MapLiteral):
        return tuple(part for entry in node.entries for part in entry)
    if isinstance(node, Member):
        return (node.target, node.key)
    if isinstance(node, Slice):
        return tuple(part for part in (node.target, node.start, node.stop) if part is not None)
    if isinstance(node, Call):
        return node.arguments
    if isinstance(node, MethodCall):
        return (node.target, *node.arguments)
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, Conditional):
        return (node.condition, node.then, node.otherwise)
    if isinstance(node, Closure):
        return (node.body,)
    if isinstance(node, Let):
        return (node.value, node.body)
    return ()


def walk(node: Node) -> list[tuple[Node, int]]:
    """Every node of the tree with its depth (the root is 1), without recursion."""
    found: list[tuple[Node, int]] = []
    pending = [(node, 1)]
    while pending:
        current, depth = pending.pop()
        found.append((current, depth))
        pending.extend((child, depth + 1) for child in children(current))
    return found
