"""Splitting a string into literal text and ``{{ expr }}`` / ``<< expr >>`` templates."""

from __future__ import annotations

from dataclasses import dataclass

from daytonaflow.expressions.errors import ExpressionSyntaxError

OPENERS = {"{{": "}}", "<<": ">>"}
_ESCAPE = "\\"


@dataclass(frozen=True, slots=True)
class TemplatePart:
    """One expression of a template: its source, its column in the template and its delimiter."""

    source: str
    offset: int
    opener: str


def contains_template(text: str) -> bool:
    """Whether ``text`` holds an unescaped ``{{`` or ``<<``, i.e. whether resolving it evaluates anything.

    An opener without its closer still counts: resolving such a string is a syntax error
    (write ``\\{{`` or ``\\<<`` for the literal delimiters).
    """
    if "{{" not in text and "<<" not in text:
        return False
    return _next_opener(text, 0)[0] != -1


def _next_opener(text: str, start: int) -> tuple[int, str]:
    """Position and kind of the next unescaped opener at or after ``start``; ``(-1, "")`` when none."""
    position = start
    while True:
        brace = text.find("{{", position)
        angle = text.find("<<", position)
        candidates = [found for found in (brace, angle) if found != -1]
        if not candidates:
            return -1, ""
        found = min(candidates)
        if found > 0 and text[found - 1] == _ESCAPE:
            position = found + 2
            continue
        return found, text[found : found + 2]


def split_template(text: str) -> list[str | TemplatePart]:
    """The literal runs (escapes already applied) and expressions of ``text``, in order."""
    parts: list[str | TemplatePart] = []
    literal: list[str] = []
    position = 0
    while True:
        found, opener = _next_opener(text, position)
        stop = len(text) if found == -1 else found
        literal.append(_unescape(text[position:stop]))
        if found == -1:
            break
        closer = OPENERS[opener]
        body_start = found + 2
        end = _find_closer(text, body_start, closer)
        if end == -1:
            # Unbalanced brackets inside: end at the first closer so the parser names the real problem.
            end = text.find(closer, body_start)
        if end == -1:
            raise ExpressionSyntaxError.at(
                f"unterminated template: {opener} has no matching {closer} "
                f"(write \\{opener} for a literal {opener})",
                text,
                found,
            )
        if any(literal):
            parts.append("".join(literal))
        literal = []
        parts.append(TemplatePart(text[body_start:end], body_start, opener))
        position = end + 2
    if any(literal):
        parts.append("".join(literal))
    return parts


def _unescape(run: str) -> str:
    if _ESCAPE not in run:
        return run
    return run.replace("\\{{", "{{").replace("\\<<", "<<")


def _find_closer(text: str, start: int, closer: str) -> int:
    """Index of ``closer`` ending the expression that starts at ``start``, skipping string literals
    and bracketed parts (so ``{{ {"a": {"b": 1}} }}`` closes at the last ``}}``)."""
    depth = 0
    position = start
    length = len(text)
    while position < length:
        char = text[position]
        if char in "\"'`":
            end = _skip_string(text, position)
            if end == -1:
                raise ExpressionSyntaxError.at("unterminated string in the template", text, position)
            position = end
            continue
        if depth == 0 and text.startswith(closer, position):
            return position
        if char in "([{":
            depth += 1
        elif char in ")]}" and depth > 0:
            depth -= 1
        position += 1
    return -1


def _skip_string(text: str, start: int) -> int:
    quote = text[start]
    position = start + 1
    while position < len(text):
        char = text[position]
        if char == "\\" and quote != "`":
            position += 2
            continue
        if char == quote:
            return position + 1
        position += 1
    return -1
