"""daytonaflow.expressions: resolve ``{{ expr }}`` and ``<< expr >>`` templates against a run's chain.

A pure library: template and context in, JSON value out. See docs/expressions.md for the language.
"""

from daytonaflow.expressions.context import ChainEntry, EventChain, ExpressionContext
from daytonaflow.expressions.errors import (
    AmbiguousReferenceError,
    ExpressionError,
    ExpressionLimitError,
    ExpressionSyntaxError,
    ExpressionTypeError,
    MissingFieldError,
    ReferenceNotFoundError,
)
from daytonaflow.expressions.limits import DEFAULT_LIMITS, Limits
from daytonaflow.expressions.resolver import (
    CompiledTemplate,
    compile_template,
    evaluate_expression,
    referenced_keys,
    resolve,
)
from daytonaflow.expressions.template import contains_template

__all__ = [
    "DEFAULT_LIMITS",
    "AmbiguousReferenceError",
    "ChainEntry",
    "CompiledTemplate",
    "EventChain",
    "ExpressionContext",
    "ExpressionError",
    "ExpressionLimitError",
    "ExpressionSyntaxError",
    "ExpressionTypeError",
    "Limits",
    "MissingFieldError",
    "ReferenceNotFoundError",
    "compile_template",
    "contains_template",
    "evaluate_expression",
    "referenced_keys",
    "resolve",
]
