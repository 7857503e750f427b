"""Compiling a syntax tree into nested Python closures, then running them over JSON values.

Compiling once per distinct expression keeps evaluation to plain function calls: no
dispatch on node types at run time, and never Python's eval/exec/compile.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from daytonaflow.expressions.builtins import call_builtin
from daytonaflow.expressions.dates import DATE_METHODS, DURATION_METHODS, ZONE_METHODS
from daytonaflow.expressions.errors import (
    ExpressionTypeError,
    MissingFieldError,
    ReferenceNotFoundError,
)
from daytonaflow.expressions.lexer import INT64_MAX
from daytonaflow.expressions.nodes import (
    ArrayLiteral,
    Binary,
    Call,
    Closure,
    ClosureVariable,
    Conditional,
    Let,
    Literal,
    MapLiteral,
    Member,
    MethodCall,
    Node,
    NodeReference,
    Pointer,
    Slice,
    Unary,
    Variable,
)
from daytonaflow.expressions.operators import OPERATIONS
from daytonaflow.expressions.predicates import PREDICATES, Predicate
from daytonaflow.expressions.run import Run
from daytonaflow.expressions.values import Date, Duration, Zone, is_number, type_name

Evaluator = Callable[[Run], Any]

_INT64_MIN = -INT64_MAX - 1


def compile_node(node: Node, *, lenient: bool = False) -> Evaluator:
    """A function computing ``node``'s value. ``lenient`` (the left side of ``??``) turns a missing
    field, a missing node or a read of nil into nil instead of an error."""
    compiler = _COMPILERS[type(node)]
    return compiler(node, lenient)


def _literal(node: Node, lenient: bool) -> Evaluator:
    assert isinstance(node, Literal)
    value = node.value
    return lambda run: value


def _array(node: Node, lenient: bool) -> Evaluator:
    assert isinstance(node, ArrayLiteral)
    items = [compile_node(item, lenient=lenient) for item in node.items]

    def evaluate(run: Run) -> Any:
        run.charge(1)
        return [item(run) for item in items]

    return evaluate


def _map(node: Node, lenient: bool) -> Evaluator:
    assert isinstance(node, MapLiteral)
    entries = [(compile_node(key), compile_node(value, lenient=lenient)) for key, value in node.entries]

    def evaluate(run: Run) -> Any:
        run.charge(1)
        result: dict[str, Any] = {}
        for key_of, value_of in entries:
            key = key_of(run)
            if type(key) is not str:
                raise ExpressionTypeError(f"map keys must be strings, got {type_name(key)}")
            result[key] = value_of(run)
        return result

    return evaluate


def _node_reference(node: Node, lenient: bool) -> Evaluator:
    assert isinstance(node, NodeReference)
    key = node.key

    def evaluate(run: Run) -> Any:
        if lenient and not run.context.has(key):
            return None
        return run.context.lookup(key)

    return evaluate


def _member(node: Node, lenient: bool) -> Evaluator:
    assert isinstance(node, Member)
    target_of = compile_node(node.target, lenient=lenient)
    forgiving = lenient or node.optional or _follows_optional(node.target)
    target_text = node.target.text
    if isinstance(node.key, Literal) and type(node.key.value) is str:
        name: str = node.key.value

        def field(run: Run) -> Any:
            target = target_of(run)
            if type(target) is dict:
                try:
                    return target[name]
                except KeyError:
                    if forgiving:
                        return None
                    raise _missing_key(target_text, target, name) from None
            return _access(target, name, target_text, forgiving)

        return field

    key_of = compile_node(node.key)

    def index(run: Run) -> Any:
        target = target_of(run)
        run.charge(1)
        return _access(target, key_of(run), target_text, forgiving)

    return index


def _follows_optional(node: Node) -> bool:
    """Whether ``node`` is a chain holding a ``?.``: past it, a nil makes the whole chain nil."""
    while isinstance(node, Member | MethodCall | Slice):
        if isinstance(node, Member | MethodCall) and node.optional:
            return True
        node = node.target
    return False


def _access(target: Any, key: Any, target_text: str, forgiving: bool) -> Any:
    kind = type(target)
    if target is None:
        if forgiving:
            return None
        raise MissingFieldError(
            f"cannot read {_show_key(key)} of nil: {target_text} is nil (use ?. or ?? to allow nil)"
        )
    if kind is dict:
        if type(key) is not str:
            raise ExpressionTypeError(
                f"cannot index map {target_text} with {type_name(key)}; keys are strings"
            )
        if key in target:
            return target[key]
        if forgiving:
            return None
        raise _missing_key(target_text, target, key)
    if kind is list or kind is str:
        if type(key) is str:
            raise ExpressionTypeError(f"cannot read {_show_key(key)} of {type_name(target)} ({target_text})")
        if type(key) is not int:
            raise ExpressionTypeError(
                f"cannot index {type_name(target)} {target_text} with {type_name(key)} {_show_key(key)}; "
                "use an integer index"
            )
        if -len(target) <= key < len(target):
            return target[key]
        if forgiving:
            return None
        raise MissingFieldError(
            f"index {key} is out of range: {target_text} has {len(target)} "
            f"{'items' if kind is list else 'characters'}"
        )
    raise ExpressionTypeError(f"cannot read {_show_key(key)} of {type_name(target)} ({target_text})")


def _show_key(key: Any) -> str:
    return f'field "{key}"' if type(key) is str else f"index {key!r}"


def _missing_key(target_text: str, target: dict[str, Any], key: str) -> MissingFieldError:
    message = f'{target_text} has no field "{key}"'
    names = [str(name) for name in target]
    close = difflib.get_close_matches(key, names, n=3)
    if close:
        message += "; did you mean " + " or ".join(f'"{name}"' for name in close) + "?"
    if names:
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        message += f" (its fields: {shown})"
    else:
        message += " (it is an empty map)"
    return MissingFieldError(message)


def _slice(node: Node, lenient: bool) -> Evaluator:
    assert isinstance(node, Slice)
    target_of = compile_node(node.target, lenient=lenient)
    start_of = compile_node(node.start) if node.start is not None else None
    stop_of = compile_node(node.stop) if node.stop is not None else None
    target_text = node.target.text

    def evaluate(run: Run) -> Any:
        target = target_of(run)
        if type(target) is not list and type(target) is not str:
            raise ExpressionTypeError(f"cannot slice {type_name(target)} ({target_text})")
        bounds = []
        for bound_of in (start_of, stop_of):
            bound = None if bound_of is None else bound_of(run)
            if bound is not None and type(bound) is not int:
                raise ExpressionTypeError(f"slice bounds must be integers, got {type_name(bound)}")
            bounds.append(bound)
        run.charge(1 + len(target) // 64)
        return target[bounds[0] : bounds[1]]

    return evaluate


def _pointer(node: Node, lenient: bool) -> Evaluator:
    return lambda run: run.pointer


def _closure_variable(node: Node, lenient: bool) -> Evaluator:
    assert isinstance(node, ClosureVariable)
    if node.name == "index":
        return lambda run: run.index
    return lambda run: run.accumulator


def _variable(node: Node, lenient: bool) -> Evaluator:
    assert isinstance(node, Variable)
    name = node.name

    def evaluate(run: Run) -> Any:
        assert run.variables is not None  # the parser binds a variable only inside its let
        return run.variables[name]

    return evaluate


def _let(node: Node, lenient: bool) -> Evaluator:
    assert isinstance(node, Let)
    name = node.name
    value_of = compile_node(node.value, lenient=lenient)
    body_of = compile_node(node.body, lenient=lenient)
    unbound = object()

    def evaluate(run: Run) -> Any:
        value = value_of(run)
        run.charge(1)
        variables = run.variables
        if variables is None:
            variables = run.variables = {}
        outer = variables.get(name, unbound)
        variables[name] = value
        try:
            return body_of(run)
        finally:
            # A let inside a closure is evaluated per element: the outer binding comes back each time.
            if outer is unbound:
                del variables[name]
            else:
                variables[name] = outer

    return evaluate


def _call(node: Node, lenient: bool) -> Evaluator:
    assert isinstance(node, Call)
    name = node.function
    if len(node.arguments) > 1 and isinstance(node.arguments[1], Closure):
        return _predicate_call(node, lenient)
    arguments_of = [compile_node(argument) for argument in node.arguments]
    if lenient and name in ("previous", "root"):

        def forgiving(run: Run) -> Any:
            try:
                return call_builtin(run, name, [argument(run) for argument in arguments_of])
            except ReferenceNotFoundError:
                return None

        return forgiving

    def evaluate(run: Run) -> Any:
        run.charge(1)
        return call_builtin(run, name, [argument(run) for argument in arguments_of])

    return evaluate


def _predicate_call(node: Call, lenient: bool) -> Evaluator:
    array_of = compile_node(node.arguments[0], lenient=lenient)
    closure = node.arguments[1]
    assert isinstance(closure, Closure)
    body_of = compile_node(closure.body)
    extras_of = [compile_node(extra) for extra in node.arguments[2:]]
    name = node.function
    apply = PREDICATES[name]

    def evaluate(run: Run) -> Any:
        items = array_of(run)
        run.charge(1)
        if type(items) is not list:
            raise ExpressionTypeError(
                f"{name}() expects an array, got {type_name(items)} ({node.arguments[0].text})"
            )
        extras = [extra(run) for extra in extras_of]
        saved = (run.pointer, run.index, run.accumulator)
        try:
            return apply(run, items, Predicate(name, body_of, closure.text), extras)
        finally:
            run.pointer, run.index, run.accumulator = saved

    return evaluate


_METHODS: dict[type, tuple[str, dict[str, Callable[[Any, list[Any]], Any]]]] = {
    Date: ("dates", DATE_METHODS),
    Duration: ("durations", DURATION_METHODS),
    Zone: ("time zones", ZONE_METHODS),
}


def _method_call(node: Node, lenient: bool) -> Evaluator:
    assert isinstance(node, MethodCall)
    target_of = compile_node(node.target, lenient=lenient)
    arguments_of = [compile_node(argument) for argument in node.arguments]
    forgiving = lenient or node.optional or _follows_optional(node.target)
    target_text = node.target.text
    name = node.method

    def evaluate(run: Run) -> Any:
        target = target_of(run)
        run.charge(1)
        if target is None and forgiving:
            return None
        kind = _METHODS.get(type(target))
        if kind is None:
            raise ExpressionTypeError(
                f"cannot call {name}() on {type_name(target)} ({target_text}); "
                "only dates, durations and time zones have methods"
            )
        plural, methods = kind
        method = methods.get(name)
        if method is None:
            known = ", ".join(f"{known}()" for known in methods)
            close = difflib.get_close_matches(name, list(methods), n=1)
            hint = f"; did you mean {close[0]}()?" if close else ""
            raise ExpressionTypeError(f"{plural} have no method {name}(){hint} (their methods: {known})")
        return method(target, [argument(run) for argument in arguments_of])

    return evaluate


def _unary(node: Node, lenient: bool) -> Evaluator:
    assert isinstance(node, Unary)
    operand_of = compile_node(node.operand, lenient=lenient)
    operator = node.operator

    def evaluate(run: Run) -> Any:
        value = operand_of(run)
        run.charge(1)
        if operator in ("!", "not"):
            if type(value) is not bool:
                raise ExpressionTypeError(f"cannot apply {operator} to {type_name(value)}; it needs a bool")
            return not value
        if not is_number(value):
            raise ExpressionTypeError(f"cannot apply unary {operator} to {type_name(value)}")
        return -value if operator == "-" else value

    return evaluate


def _conditional(node: Node, lenient: bool) -> Evaluator:
    assert isinstance(node, Conditional)
    condition_of = compile_node(node.condition)
    then_of = compile_node(node.then, lenient=lenient)
    otherwise_of = compile_node(node.otherwise, lenient=lenient)
    condition_text = node.condition.text

    def evaluate(run: Run) -> Any:
        condition = condition_of(run)
        run.charge(1)
        if type(condition) is not bool:
            raise ExpressionTypeError(
                f"the condition of ?: must be a bool, got {type_name(condition)} ({condition_text})"
            )
        return then_of(run) if condition else otherwise_of(run)

    return evaluate


def _binary(node: Node, lenient: bool) -> Evaluator:
    assert isinstance(node, Binary)
    operator = node.operator
    if operator == "??":
        return _coalesce(node, lenient)
    if operator in ("==", "!=") and _is_nil(node.right):
        left_of = _compile_compared_with_nil(node.left, lenient)
    else:
        left_of = compile_node(node.left, lenient=lenient)
    if operator in ("==", "!=") and _is_nil(node.left):
        right_of = _compile_compared_with_nil(node.right, lenient)
    else:
        right_of = compile_node(node.right, lenient=lenient)
    if operator in ("and", "&&", "or", "||"):
        return _logical(operator, left_of, right_of)
    apply = OPERATIONS[operator.removeprefix("not ")]
    negate = operator.startswith("not ")

    def evaluate(run: Run) -> Any:
        left = left_of(run)
        right = right_of(run)
        run.charge(1)
        result = apply(run, operator, left, right)
        return (not result) if negate else result

    return evaluate


def _is_nil(node: Node) -> bool:
    return isinstance(node, Literal) and node.value is None


def _compile_compared_with_nil(node: Node, lenient: bool) -> Evaluator:
    """``node`` as the side of ``x == nil``: there, as in expr-lang, a field missing from its map
    (or a node missing from the run) is nil rather than an error. Only the last step forgives:
    in ``a.b.c == nil`` a missing ``b`` is still an error, as reading ``c`` of nil is in expr-lang."""
    if isinstance(node, NodeReference):
        key = node.key
        return lambda run: run.context.lookup(key) if run.context.has(key) else None
    if not (isinstance(node, Member) and isinstance(node.key, Literal) and type(node.key.value) is str):
        return compile_node(node, lenient=lenient)
    target_of = compile_node(node.target, lenient=lenient)
    name: str = node.key.value
    forgiving = lenient or node.optional or _follows_optional(node.target)
    target_text = node.target.text

    def field_or_nil(run: Run) -> Any:
        target = target_of(run)
        if type(target) is dict:
            return target.get(name)
        return _access(target, name, target_text, forgiving)

    return field_or_nil


def _coalesce(node: Binary, lenient: bool) -> Evaluator:
    left_of = compile_node(node.left, lenient=True)
    right_of = compile_node(node.right, lenient=lenient)

    def evaluate(run: Run) -> Any:
        left = left_of(run)
        run.charge(1)
        return right_of(run) if left is None else left

    return evaluate


def _logical(operator: str, left_of: Evaluator, right_of: Evaluator) -> Evaluator:
    is_and = operator in ("and", "&&")

    def evaluate(run: Run) -> Any:
        left = left_of(run)
        run.charge(1)
        if type(left) is not bool:
            raise ExpressionTypeError(f"cannot apply {operator} to {type_name(left)}; it needs bools")
        if left is not is_and:
            return left
        right = right_of(run)
        if type(right) is not bool:
            raise ExpressionTypeError(f"cannot apply {operator} to {type_name(right)}; it needs bools")
        return right

    return evaluate


_COMPILERS: dict[type[Node], Callable[[Node, bool], Evaluator]] = {
    Literal: _literal,
    ArrayLiteral: _array,
    MapLiteral: _map,
    NodeReference: _node_reference,
    Member: _member,
    Slice: _slice,
    Call: _call,
    Pointer: _pointer,
    ClosureVariable: _closure_variable,
    Variable: _variable,
    Let: _let,
    MethodCall: _method_call,
    Unary: _unary,
    Binary: _binary,
    Conditional: _conditional,
}
