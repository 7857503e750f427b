"""Turning the source of one expression into tokens."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    NUMBER = "number"
    STRING = "string"
    NAME = "name"
    OPERATOR = "operator"
    END = "end of expression"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str
    value: object
    offset: int


# Longest first, so "??" wins over "?" and "**" over "*".
_OPERATORS = (
    "?.",
    "??",
    "**",
    "==",
    "!=",
    "<=",
    ">=",
    "&&",
    "||",
    "..",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    "<",
    ">",
    "!",
    "=",
    "?",
    ":",
    ".",
    ",",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "|",
    ";",
    "#",
    "$",
)
_SIMPLE_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "`": "`",
    "0": "\0",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
}
INT64_MAX = 2**63 - 1


class SourceError(Exception):
    """A syntax problem at an offset of the expression source; the caller adds the caret."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


def tokenize(source: str) -> list[Token]:
    """All tokens of ``source``, ending with an END token."""
    tokens: list[Token] = []
    position = 0
    length = len(source)
    while True:
        while position < length and source[position] in " \t\r\n":
            position += 1
        if source.startswith("/*", position):
            end = source.find("*/", position + 2)
            if end == -1:
                raise SourceError("unterminated comment", position)
            position = end + 2
            continue
        if source.startswith("//", position):
            end = source.find("\n", position)
            position = length if end == -1 else end
            continue
        if position >= length:
            tokens.append(Token(Kind.END, "", None, length))
            return tokens
        char = source[position]
        if char.isdigit() or (char == "." and source[position + 1 : position + 2].isdigit()):
            token = _number(source, position)
        elif char in "\"'`":
            token = _string(source, position)
        elif char.isalpha() or char == "_":
            end = position + 1
            while end < length and (source[end].isalnum() or source[end] == "_"):
                end += 1
            token = Token(Kind.NAME, source[position:end], None, position)
        else:
            operator = next((op for op in _OPERATORS if source.startswith(op, position)), None)
            if operator is None:
                raise SourceError(f"unexpected character {char!r}", position)
            if operator == "?." and source[position + 2 : position + 3].isdigit():
                operator = "?"  # "a ?.5 : b" is a ternary with a float, not optional access
            token = Token(Kind.OPERATOR, operator, None, position)
        tokens.append(token)
        position = token.offset + len(token.text)


def _number(source: str, start: int) -> Token:
    position = start
    length = len(source)
    prefix = source[start : start + 2].lower()
    if prefix in ("0x", "0o", "0b"):
        position += 2
        while position < length and (source[position].isalnum() or source[position] == "_"):
            position += 1
        text = source[start:position]
        try:
            value: int | float = int(text.replace("_", ""), 0)
        except ValueError:
            raise SourceError(f"invalid number {text!r}", start) from None
    else:
        while position < length and (source[position].isdigit() or source[position] == "_"):
            position += 1
        is_float = False
        # "1..3" is a range: the dot belongs to the operator, not to the number.
        if source[position : position + 1] == "." and source[position + 1 : position + 2] != ".":
            is_float = True
            position += 1
            while position < length and (source[position].isdigit() or source[position] == "_"):
                position += 1
        if source[position : position + 1] in ("e", "E"):
            exponent = position + 1
            if source[exponent : exponent + 1] in ("+", "-"):
                exponent += 1
            if source[exponent : exponent + 1].isdigit():
                is_float = True
                position = exponent
                while position < length and source[position].isdigit():
                    position += 1
        text = source[start:position]
        digits = text.replace("_", "")
        try:
            value = float(digits) if is_float else int(digits)
        except ValueError:
            raise SourceError(f"invalid number {text!r}", start) from None
    if isinstance(value, int) and value > INT64_MAX:
        raise SourceError(f"integer {source[start:position]} is out of range (max {INT64_MAX})", start)
    return Token(Kind.NUMBER, source[start:position], value, start)


def _string(source: str, start: int) -> Token:
    quote = source[start]
    position = start + 1
    length = len(source)
    if quote == "`":
        end = source.find("`", position)
        if end == -1:
            raise SourceError("unterminated string", start)
        return Token(Kind.STRING, source[start : end + 1], source[position:end], start)
    chars: list[str] = []
    while position < length:
        char = source[position]
        if char == quote:
            return Token(Kind.STRING, source[start : position + 1], "".join(chars), start)
        if char == "\\":
            escape = source[position + 1 : position + 2]
            if escape in _SIMPLE_ESCAPES:
                chars.append(_SIMPLE_ESCAPES[escape])
                position += 2
                continue
            if escape in ("u", "x", "U"):
                width = {"x": 2, "u": 4, "U": 8}[escape]
                digits = source[position + 2 : position + 2 + width]
                try:
                    code = int(digits, 16) if len(digits) == width else -1
                    char = chr(code)
                except ValueError:
                    pass
                else:
                    # A surrogate half is no character (Go refuses it too); kept, it would make
                    # a string that no encoder can write.
                    if not 0xD800 <= code <= 0xDFFF:
                        chars.append(char)
                        position += 2 + width
                        continue
                    raise SourceError(
                        f"invalid escape sequence \\{escape}{digits}: a surrogate half is not a character",
                        position,
                    )
            raise SourceError(f"invalid escape sequence \\{escape}", position)
        chars.append(char)
        position += 1
    raise SourceError("unterminated string", start)
