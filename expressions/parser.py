"""A Pratt parser for the expr-lang subset, with expr-lang's operator precedence."""

from __future__ import annotations

import difflib

from daytonaflow.expressions.lexer import Kind, SourceError, Token, tokenize
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

# Precedence and right-associativity, as in expr-lang's operator table.
BINARY_OPERATORS: dict[str, tuple[int, bool]] = {
    "|": (0, False),
    "or": (10, False),
    "||": (10, False),
    "and": (15, False),
    "&&": (15, False),
    "==": (20, False),
    "!=": (20, False),
    "<": (20, False),
    ">": (20, False),
    ">=": (20, False),
    "<=": (20, False),
    "in": (20, False),
    "matches": (20, False),
    "contains": (20, False),
    "startsWith": (20, False),
    "endsWith": (20, False),
    "..": (25, False),
    "+": (30, False),
    "-": (30, False),
    "*": (60, False),
    "/": (60, False),
    "%": (60, False),
    "**": (100, True),
    "^": (100, True),
    "??": (500, False),
}
UNARY_OPERATORS = {"not": 50, "!": 50, "-": 90, "+": 90}
_NEGATABLE = {"in", "matches", "contains", "startsWith", "endsWith"}
_CONSTANTS: dict[str, object] = {"true": True, "false": False, "nil": None, "null": None}
# Builtins whose second argument is a closure, evaluated per element with # bound to it,
# and how many arguments may follow the closure (sortBy's order, reduce's initial value).
CLOSURE_ARGUMENTS_AFTER = {
    "all": 0,
    "any": 0,
    "none": 0,
    "one": 0,
    "filter": 0,
    "map": 0,
    "count": 0,
    "find": 0,
    "findIndex": 0,
    "findLast": 0,
    "findLastIndex": 0,
    "groupBy": 0,
    "sortBy": 1,
    "reduce": 1,
    "sum": 0,
}
PREDICATE_FUNCTIONS = frozenset(CLOSURE_ARGUMENTS_AFTER)
# Closure functions that also take just an array: sum(xs) adds xs, sum(xs, #.n) adds what # gives.
_CLOSURE_OPTIONAL = frozenset({"sum"})
# SuperPlane functions that read its server's state, which a daytonaflow run does not have.
SERVER_ONLY = {
    "memory": "memory.find() and memory.findFirst() read SuperPlane's canvas memory (written by its "
    "addMemory components), which daytonaflow has no store for",
    "run": "run() describes a SuperPlane run (its id, URL and start time in SuperPlane's UI), "
    "which a daytonaflow run has no equivalent of",
    "app": "app() describes the SuperPlane app (canvas) hosting the run, "
    "which daytonaflow has no equivalent of",
    "order": "order() reads the SuperPlane work order driving the run, "
    "which daytonaflow has no equivalent of",
}
_CLOSURE_VARIABLES = ("acc", "index")
_KEYWORDS = frozenset({"let", "if", "else"})


def parse(source: str, *, functions: frozenset[str], max_depth: int) -> Node:
    """The syntax tree of ``source``; raises SourceError (with an offset) when it is not well formed."""
    parser = _Parser(source, tokenize(source), functions, max_depth)
    node = parser.expression(0)
    token = parser.peek()
    if token.kind is not Kind.END:
        raise SourceError(f"unexpected {_describe(token)} after the expression", token.offset)
    return node


def _describe(token: Token) -> str:
    if token.kind is Kind.END:
        return "end of expression"
    return f"{token.kind.value} {token.text!r}"


class _Parser:
    def __init__(self, source: str, tokens: list[Token], functions: frozenset[str], max_depth: int) -> None:
        self.source = source
        self.tokens = tokens
        self.position = 0
        self.functions = functions
        self.max_depth = max_depth
        self.depth = 0
        self.predicates = 0
        # The closure functions being parsed, innermost last: #acc belongs to reduce only.
        self.closures: list[str] = []
        # Names bound by the enclosing lets, innermost last.
        self.variables: list[str] = []

    def peek(self, ahead: int = 0) -> Token:
        index = min(self.position + ahead, len(self.tokens) - 1)
        return self.tokens[index]

    def advance(self) -> Token:
        token = self.tokens[self.position]
        if token.kind is not Kind.END:
            self.position += 1
        return token

    def is_operator(self, text: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind is Kind.OPERATOR and token.text == text

    def expect(self, text: str, what: str) -> Token:
        token = self.peek()
        if token.kind is Kind.OPERATOR and token.text == text:
            return self.advance()
        raise SourceError(f"expected {text!r} {what}, found {_describe(token)}", token.offset)

    def span(self, start: int) -> str:
        end = self.tokens[self.position - 1]
        return self.source[start : end.offset + len(end.text)]

    def binary_operator(self) -> str | None:
        token = self.peek()
        if token.kind is Kind.OPERATOR and token.text in BINARY_OPERATORS:
            return token.text
        if token.kind is Kind.NAME and token.text in BINARY_OPERATORS:
            return token.text
        if token.kind is Kind.NAME and token.text == "not":
            following = self.peek(1)
            if following.kind is Kind.NAME and following.text in _NEGATABLE:
                return "not " + following.text
        return None

    def expression(self, min_precedence: int) -> Node:
        self.depth += 1
        if self.depth > self.max_depth:
            raise SourceError(f"expression nests deeper than {self.max_depth} levels", self.peek().offset)
        start = self.peek().offset
        left = self.unary()
        while True:
            operator = self.binary_operator()
            if operator is None:
                break
            precedence, right_associative = BINARY_OPERATORS[operator.removeprefix("not ")]
            if precedence < min_precedence:
                break
            operator_token = self.advance()
            if operator.startswith("not "):
                self.advance()
            if operator == "|":
                left = self.pipe(left, start, operator_token)
                continue
            right = self.expression(precedence if right_associative else precedence + 1)
            left = Binary(self.span(start), start, operator, left, right)
        if min_precedence == 0 and self.is_operator("?"):
            self.advance()
            then = self.expression(0)
            self.expect(":", "in the conditional (cond ? then : else)")
            otherwise = self.expression(0)
            left = Conditional(self.span(start), start, left, then, otherwise)
        self.depth -= 1
        return left

    def pipe(self, left: Node, start: int, operator_token: Token) -> Node:
        name = self.advance()
        if name.kind is not Kind.NAME or not self.is_operator("("):
            raise SourceError(
                "the pipe | must be followed by a function call, as in x | upper()", name.offset
            )
        call = self.call(name, piped=left)
        return Call(self.span(start), start, call.function, call.arguments)

    def unary(self) -> Node:
        token = self.peek()
        operator = token.text if token.kind in (Kind.OPERATOR, Kind.NAME) else ""
        if operator in UNARY_OPERATORS and (token.kind is Kind.OPERATOR or operator == "not"):
            self.advance()
            operand = self.expression(UNARY_OPERATORS[operator])
            if operator == "-" and isinstance(operand, Literal):
                value = operand.value
                if isinstance(value, int | float) and not isinstance(value, bool):
                    return Literal(self.span(token.offset), token.offset, -value)
            return Unary(self.span(token.offset), token.offset, operator, operand)
        return self.postfix(self.primary())

    def primary(self) -> Node:
        token = self.advance()
        start = token.offset
        if token.kind in (Kind.NUMBER, Kind.STRING):
            return Literal(token.text, start, token.value)
        if token.kind is Kind.NAME:
            if token.text in _CONSTANTS:
                return Literal(token.text, start, _CONSTANTS[token.text])
            if token.text == "let":
                return self.let(start)
            if token.text == "if" and not self.is_operator("("):
                return self.if_else(start)
            if token.text in self.variables:
                return Variable(token.text, start, token.text)
            if self.is_operator("("):
                return self.call(token)
            if token.text == "memory" and self.is_operator("."):
                raise SourceError(f"not supported here: {SERVER_ONLY['memory']}", start)
            raise SourceError(self.unknown_name(token.text), start)
        if token.kind is Kind.OPERATOR:
            if token.text == "(":
                inner = self.expression(0)
                self.expect(")", "to close (")
                return inner
            if token.text == "[":
                return self.array(start)
            if token.text == "{":
                return self.map(start)
            if token.text == "$":
                return self.node_reference(start)
            if token.text == "#" and self.predicates:
                following = self.peek()
                if following.kind is Kind.NAME and following.offset == start + 1:
                    return self.closure_variable(start, following)
                return Pointer("#", start)
            if token.text == "." and self.predicates and self.peek().kind is Kind.NAME:
                # ".Name" inside a predicate is shorthand for "#.Name", as in expr-lang.
                name = self.advance()
                return Member(
                    self.span(start),
                    start,
                    Pointer("#", start),
                    Literal(name.text, name.offset, name.text),
                    False,
                )
            if token.text == "#":
                raise SourceError("# is only defined inside a predicate, as in filter(xs, # > 1)", start)
        raise SourceError(f"unexpected {_describe(token)}", start)

    def closure_variable(self, start: int, name: Token) -> Node:
        if name.text not in _CLOSURE_VARIABLES:
            raise SourceError(
                f"unknown closure variable #{name.text}; closures have #, #index and #acc", start
            )
        if name.text == "acc" and self.closures[-1] != "reduce":
            raise SourceError("#acc is the accumulator of reduce(); it is not defined here", start)
        self.advance()
        return ClosureVariable(self.span(start), start, name.text)

    def let(self, start: int) -> Node:
        name = self.advance()
        if name.kind is not Kind.NAME or name.text in _KEYWORDS or name.text in _CONSTANTS:
            raise SourceError(f"let needs a variable name, found {_describe(name)}", name.offset)
        self.expect("=", "after the variable name (let x = value; expression)")
        value = self.expression(0)
        self.expect(";", "after the value of the variable (let x = value; expression)")
        self.variables.append(name.text)
        body = self.expression(0)
        self.variables.pop()
        return Let(self.span(start), start, name.text, value, body)

    def if_else(self, start: int) -> Node:
        condition = self.expression(0)
        then = self.braced("if")
        token = self.advance()
        if token.kind is not Kind.NAME or token.text != "else":
            raise SourceError(
                f"expected else after the if block (if c {{ a }} else {{ b }}), found {_describe(token)}",
                token.offset,
            )
        following = self.peek()
        if following.kind is Kind.NAME and following.text == "if":
            self.advance()
            otherwise = self.if_else(following.offset)
        else:
            otherwise = self.braced("else")
        return Conditional(self.span(start), start, condition, then, otherwise)

    def braced(self, keyword: str) -> Node:
        self.expect("{", f"to open the {keyword} block")
        inner = self.expression(0)
        self.expect("}", f"to close the {keyword} block")
        return inner

    def unknown_name(self, name: str) -> str:
        message = f"unknown name {name!r}"
        close = difflib.get_close_matches(name, sorted(self.functions), n=3)
        if close:
            return message + "; did you mean " + " or ".join(f"{match}()" for match in close) + "?"
        return message + ' (node events are read with $["Node name"], previous() or root())'

    def call(self, name: Token, piped: Node | None = None) -> Call:
        if name.text in SERVER_ONLY and name.text not in self.functions:
            raise SourceError(f"not supported here: {SERVER_ONLY[name.text]}", name.offset)
        if name.text not in self.functions:
            message = f"unknown function {name.text}()"
            close = difflib.get_close_matches(name.text, sorted(self.functions), n=3)
            if close:
                message += "; did you mean " + " or ".join(f"{match}()" for match in close) + "?"
            raise SourceError(message, name.offset)
        self.expect("(", "after the function name")
        if name.text in PREDICATE_FUNCTIONS:
            arguments = self.predicate_arguments(name, piped)
        else:
            arguments = ([] if piped is None else [piped]) + self.arguments(")")
        return Call(self.span(name.offset), name.offset, name.text, tuple(arguments))

    def predicate_arguments(self, name: Token, piped: Node | None) -> list[Node]:
        items = [self.expression(0) if piped is None else piped]
        if name.text in _CLOSURE_OPTIONAL and self.is_operator(")"):
            self.advance()
            return items
        if piped is None:
            self.expect(",", "between the array and the closure")
        start = self.peek().offset
        braced = self.is_operator("{")
        if braced:
            self.advance()
        self.predicates += 1
        self.closures.append(name.text)
        body = self.expression(0)
        self.closures.pop()
        self.predicates -= 1
        if braced:
            self.expect("}", "to close the closure")
        items.append(Closure(self.span(start), start, body))
        allowed = CLOSURE_ARGUMENTS_AFTER[name.text]
        while self.is_operator(",") and not self.is_operator(")", 1):
            comma = self.advance()
            if len(items) - 2 >= allowed:
                raise SourceError(
                    f"{name.text}() takes {allowed + 2} arguments at most (array, closure"
                    f"{', and one more' if allowed else ''})",
                    comma.offset,
                )
            items.append(self.expression(0))
        if self.is_operator(","):
            self.advance()  # a trailing comma, as the other calls allow
        self.expect(")", "to close the list of arguments")
        return items

    def arguments(self, closer: str) -> list[Node]:
        items: list[Node] = []
        while not self.is_operator(closer):
            items.append(self.expression(0))
            if not self.is_operator(","):
                break
            self.advance()
        self.expect(closer, f"to close the list of {'arguments' if closer == ')' else 'items'}")
        return items

    def array(self, start: int) -> Node:
        items = self.arguments("]")
        return ArrayLiteral(self.span(start), start, tuple(items))

    def map(self, start: int) -> Node:
        entries: list[tuple[Node, Node]] = []
        while not self.is_operator("}"):
            key_token = self.peek()
            if key_token.kind in (Kind.NAME, Kind.STRING, Kind.NUMBER):
                self.advance()
                key: Node = Literal(key_token.text, key_token.offset, _map_key(key_token))
            elif self.is_operator("("):
                self.advance()
                key = self.expression(0)
                self.expect(")", "to close the computed map key")
            else:
                raise SourceError(f"expected a map key, found {_describe(key_token)}", key_token.offset)
            self.expect(":", "after the map key")
            entries.append((key, self.expression(0)))
            if not self.is_operator(","):
                break
            self.advance()
        self.expect("}", "to close the map")
        return MapLiteral(self.span(start), start, tuple(entries))

    def node_reference(self, start: int) -> Node:
        if self.is_operator("["):
            self.advance()
            key = self.advance()
            if key.kind is not Kind.STRING:
                raise SourceError('a node reference takes a quoted name: $["Node name"]', key.offset)
            self.expect("]", 'to close $["..."]')
            return NodeReference(self.span(start), start, str(key.value))
        if self.is_operator("."):
            self.advance()
            name = self.advance()
            if name.kind is not Kind.NAME:
                raise SourceError(
                    'expected a node name after "$."; use $["Node name"] for names with spaces or dots',
                    name.offset,
                )
            return NodeReference(self.span(start), start, name.text)
        raise SourceError('"$" must be followed by ["Node name"] or .Name', self.peek().offset)

    def postfix(self, node: Node) -> Node:
        start = node.offset
        while True:
            token = self.peek()
            if token.kind is not Kind.OPERATOR or token.text not in (".", "?.", "["):
                return node
            self.advance()
            optional = token.text == "?."
            if token.text == "[" or (optional and self.is_operator("[")):
                if optional:
                    self.advance()
                node = self.index(node, start, optional)
                continue
            name = self.advance()
            if name.kind is not Kind.NAME:
                raise SourceError(
                    f"expected a field name after {token.text!r}, found {_describe(name)}", name.offset
                )
            if self.is_operator("("):
                self.advance()
                arguments = self.arguments(")")
                node = MethodCall(self.span(start), start, node, name.text, tuple(arguments), optional)
                continue
            node = Member(self.span(start), start, node, Literal(name.text, name.offset, name.text), optional)

    def index(self, target: Node, start: int, optional: bool) -> Node:
        lower: Node | None = None
        if not self.is_operator(":"):
            lower = self.expression(0)
        if self.is_operator(":"):
            self.advance()
            upper = None if self.is_operator("]") else self.expression(0)
            self.expect("]", "to close the slice")
            return Slice(self.span(start), start, target, lower, upper)
        self.expect("]", "to close the index")
        assert lower is not None
        return Member(self.span(start), start, target, lower, optional)


def _map_key(token: Token) -> object:
    if token.kind is Kind.NAME:
        return token.text
    return token.value if token.kind is Kind.STRING else token.text
