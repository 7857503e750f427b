"""What the built-in components share: self-description from one field list, and their errors.

Each built-in lists its configuration once as :class:`~daytonaflow.components._fields.Field`
specs (the generic field machinery, which knows nothing of Daytona); the JSON Schema, the
canvas form, the setup-time validation and the defaults all come from that list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from daytonaflow.component import Component, ExecutionContext
from daytonaflow.components import _fields
from daytonaflow.components._fields import Field
from daytonaflow.errors import ComponentError, ConfigError, ConfigIssue


class ExpressionResultError(ComponentError):
    """A bare-expression field evaluated to something else than the component needs (a boolean)."""


class BuiltinComponent(Component):
    """A built-in component described by its ``fields``, its ``docs`` and ``<name>.example.json``."""

    fields: ClassVar[tuple[Field, ...]] = ()
    #: Markdown shown in the canvas UI and rendered into docs/components/.
    docs: ClassVar[str]

    @classmethod
    def documentation(cls) -> str:
        return cls.docs.strip() + "\n"

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        return _fields.config_schema(cls.name, cls.label, cls.description, cls.fields)

    @classmethod
    def example_output(cls) -> dict[str, Any]:
        return _fields.packaged_example("daytonaflow.builtins", cls.name)

    @classmethod
    def manifest(cls) -> dict[str, Any]:
        return {**super().manifest(), "fields": _fields.manifest_fields(cls.fields)}

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], *, allow_expressions: bool) -> list[ConfigIssue]:
        return _fields.validate_with_rules(
            cls.fields, config, cls.extra_rules, allow_expressions=allow_expressions
        )

    @classmethod
    def extra_rules(cls, config: Mapping[str, Any], *, allow_expressions: bool) -> list[ConfigIssue]:
        """Rules the field specs cannot say."""
        return []

    @classmethod
    def settings(cls, ctx: ExecutionContext) -> dict[str, Any]:
        """The resolved configuration, validated once more, with every default filled in."""
        issues = cls.validate_config(ctx.config, allow_expressions=False)
        if issues:
            raise ConfigError(issues, node=ctx.node_id)
        return _fields.apply_defaults(cls.fields, ctx.config)


def evaluate_condition(ctx: ExecutionContext, expression: str, field: str) -> bool:
    """A bare boolean expression of ``field``; anything but true or false fails the node, saying so."""
    value = ctx.evaluate(expression, field=field)
    if not isinstance(value, bool):
        shown = json.dumps(value, default=str)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        raise ExpressionResultError(
            f'node "{ctx.node_id}": field "{field}" must evaluate to true or false,'
            f" got {_kind(value)} {shown}"
        )
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a map"
    return type(value).__name__


def expression_field(name: str, label: str, description: str, *, required: bool = True) -> Field:
    """A bare expression (no ``{{ }}``): the component evaluates it; list it in ``literal_fields``."""
    return Field(
        name,
        "text",
        label,
        description,
        required=required,
        placeholder='$["Node Name"].data.status == "ok"',
        # The whole value is an expression already: the form offers no template insertion in it.
        expressions=False,
    )
