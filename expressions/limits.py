"""Bounds on the work one template may cause, so a hostile expression fails fast."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps applied while parsing and evaluating.

    ``max_expression_length`` counts the characters between one pair of delimiters;
    ``max_depth`` the nesting of the parsed expression (brackets, operators, member chains);
    ``max_steps`` the evaluation steps of one expression (each operation, each element a
    builtin visits); ``max_string_length`` and ``max_list_length`` the size of any value built;
    ``max_value_items`` the elements of a value leaving the language or serialized, nested
    arrays and maps counted in full (``let x = [1, 2]; [x, x]`` holds six).
    """

    max_expression_length: int = 10_000
    max_depth: int = 64
    max_steps: int = 100_000
    max_string_length: int = 1_000_000
    max_list_length: int = 100_000
    max_regex_length: int = 1_000
    max_value_items: int = 1_000_000


DEFAULT_LIMITS = Limits()
