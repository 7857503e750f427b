"""Configuration fields: the single source of truth for a component's form, schema and validation.

A component lists its :class:`Field` specs once. From them come the canvas UI's field list
(:func:`manifest_fields`), the JSON Schema draft 2020-12 of the configuration, including the
``if``/``then`` of required-when rules (:func:`config_schema`), setup-time validation with
messages that name the field path and the rule (:func:`validate`), and the defaults applied
before the typed config is built (:func:`apply_defaults`).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, cast

from daytonaflow._suggest import did_you_mean
from daytonaflow.errors import ConfigIssue
from daytonaflow.expressions import contains_template

FieldType = Literal["string", "text", "code", "number", "boolean", "select", "list", "object"]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID_BASE = "https://daytonaflow.dev/schemas"


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Option:
    """One choice of a select field."""

    value: str
    label: str


@dataclass(frozen=True)
class When:
    """A condition on a sibling field: its value (or its default) is one of ``values``."""

    field: str
    values: tuple[Any, ...]

    def describe(self, prefix: str) -> str:
        shown = ", ".join(json.dumps(value) for value in self.values)
        verb = "is" if len(self.values) == 1 else "is one of"
        return f"{prefix}{self.field} {verb} {shown}"


@dataclass(frozen=True)
class Field:
    """One configuration field, described for the form, the schema and the validator at once."""

    name: str
    type: FieldType
    label: str
    description: str = ""
    placeholder: str | None = None
    default: Any = MISSING
    required: bool = False
    sensitive: bool = False
    #: The form shows a switch; the field is absent from the configuration while switched off.
    togglable: bool = False
    options: tuple[Option, ...] = ()
    #: Values a select also accepts without offering them (aliases such as ``env-var``).
    aliases: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    #: Numbers only: whole numbers.
    integer: bool = True
    pattern: str | None = None
    #: Completes "must ..." when ``pattern`` does not match, e.g. "be a valid environment variable name".
    pattern_rule: str | None = None
    #: List fields: the shape of one item.
    item: Field | None = None
    #: Object fields: the nested fields.
    fields: tuple[Field, ...] = ()
    visible_when: tuple[When, ...] = ()
    required_when: tuple[When, ...] = ()
    #: Code fields: the editor's language.
    language: str | None = None
    #: Whether the form offers expression templates for this field.
    expressions: bool = True

    @property
    def has_default(self) -> bool:
        return self.default is not MISSING


# --- JSON Schema ------------------------------------------------------------------------------


def _value_schema(spec: Field) -> dict[str, Any]:
    schema: dict[str, Any] = {"title": spec.label}
    if spec.description:
        schema["description"] = spec.description
    if spec.type in ("string", "text", "code"):
        schema["type"] = "string"
        if spec.required or spec.required_when:
            schema["minLength"] = 1
        if spec.pattern:
            schema["pattern"] = spec.pattern
    elif spec.type == "select":
        schema["type"] = "string"
        schema["enum"] = [option.value for option in spec.options] + list(spec.aliases)
    elif spec.type == "number":
        schema["type"] = "integer" if spec.integer else "number"
        if spec.minimum is not None:
            schema["minimum"] = spec.minimum
        if spec.maximum is not None:
            schema["maximum"] = spec.maximum
    elif spec.type == "boolean":
        schema["type"] = "boolean"
    elif spec.type == "list":
        schema["type"] = "array"
        if spec.item is not None:
            schema["items"] = _value_schema(spec.item)
    elif spec.type == "object":
        schema.update(_object_schema(spec.fields))
    if spec.has_default:
        schema["default"] = spec.default
    return schema


def _object_schema(fields: Sequence[Field]) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {spec.name: _value_schema(spec) for spec in fields},
        "additionalProperties": False,
    }
    required = [spec.name for spec in fields if spec.required]
    if required:
        schema["required"] = required
    rules = [_required_when_rule(spec, fields) for spec in fields if spec.required_when]
    if rules:
        schema["allOf"] = rules
    return schema


def _required_when_rule(spec: Field, siblings: Sequence[Field]) -> dict[str, Any]:
    by_name = {sibling.name: sibling for sibling in siblings}
    properties: dict[str, Any] = {}
    must_be_present: list[str] = []
    for condition in spec.required_when:
        values = list(condition.values)
        properties[condition.field] = {"const": values[0]} if len(values) == 1 else {"enum": values}
        sibling = by_name[condition.field]
        # An absent field holds its default: the condition holds without it only if the default matches.
        if not (sibling.has_default and sibling.default in condition.values):
            must_be_present.append(condition.field)
    condition_schema: dict[str, Any] = {"properties": properties}
    if must_be_present:
        condition_schema["required"] = must_be_present
    return {"if": condition_schema, "then": {"required": [spec.name]}}


def config_schema(component: str, title: str, description: str, fields: Sequence[Field]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a component's configuration."""
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{SCHEMA_ID_BASE}/config/{component}.schema.json",
        "title": f"{title} configuration",
        "description": description,
        **_object_schema(fields),
    }


# --- manifest -------------------------------------------------------------------------------


def _condition_entries(conditions: Sequence[When]) -> list[dict[str, Any]]:
    return [{"field": condition.field, "values": list(condition.values)} for condition in conditions]


def manifest_field(spec: Field) -> dict[str, Any]:
    """What a canvas UI needs to render and check one field."""
    entry: dict[str, Any] = {
        "name": spec.name,
        "label": spec.label,
        "type": spec.type,
        "description": spec.description,
        "required": spec.required,
        "sensitive": spec.sensitive,
        "togglable": spec.togglable,
        "supportsExpressions": spec.expressions,
    }
    if spec.placeholder is not None:
        entry["placeholder"] = spec.placeholder
    if spec.has_default:
        entry["default"] = spec.default
    if spec.options:
        entry["options"] = [{"value": option.value, "label": option.label} for option in spec.options]
    if spec.type == "number":
        entry["min"] = spec.minimum
        entry["max"] = spec.maximum
        entry["integer"] = spec.integer
    if spec.pattern:
        entry["pattern"] = spec.pattern
    if spec.language:
        entry["language"] = spec.language
    if spec.item is not None:
        entry["itemField"] = manifest_field(spec.item)
    if spec.fields:
        entry["fields"] = manifest_fields(spec.fields)
    if spec.visible_when:
        entry["visibleWhen"] = _condition_entries(spec.visible_when)
    if spec.required_when:
        entry["requiredWhen"] = _condition_entries(spec.required_when)
    return entry


def manifest_fields(fields: Sequence[Field]) -> list[dict[str, Any]]:
    return [manifest_field(spec) for spec in fields]


# --- defaults -------------------------------------------------------------------------------


def apply_defaults(fields: Sequence[Field], config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with every absent field that has a default filled in (nested too)."""
    result = dict(config)
    for spec in fields:
        if spec.name not in result:
            if spec.has_default:
                result[spec.name] = json.loads(json.dumps(spec.default))
            continue
        value = result[spec.name]
        if spec.type == "object" and isinstance(value, Mapping):
            result[spec.name] = apply_defaults(spec.fields, value)
        elif spec.type == "list" and spec.item is not None and isinstance(value, list):
            item = spec.item
            if item.type == "object":
                result[spec.name] = [
                    apply_defaults(item.fields, entry) if isinstance(entry, Mapping) else entry
                    for entry in value
                ]
    return result


# --- validation -----------------------------------------------------------------------------


class _Validator:
    def __init__(self, allow_expressions: bool) -> None:
        self.allow_expressions = allow_expressions
        self.issues: list[ConfigIssue] = []

    def is_template(self, value: Any) -> bool:
        return self.allow_expressions and isinstance(value, str) and contains_template(value)

    def fail(self, path: str, message: str) -> None:
        self.issues.append(ConfigIssue(path, message))

    def object(self, fields: Sequence[Field], value: Mapping[str, Any], prefix: str) -> None:
        by_name = {spec.name: spec for spec in fields}
        for key in value:
            if key not in by_name:
                hint = did_you_mean(str(key), by_name)
                self.fail(f"{prefix}{key}", "is not a known field" + (f"; {hint}" if hint else ""))
        for spec in fields:
            path = f"{prefix}{spec.name}"
            if spec.name in value and value[spec.name] is not None:
                self.value(spec, value[spec.name], path)
                continue
            if spec.required:
                self.fail(path, "is required")
            elif spec.required_when and self._conditions_hold(spec.required_when, by_name, value) is True:
                rule = " and ".join(condition.describe(prefix) for condition in spec.required_when)
                self.fail(path, f"is required when {rule}")

    def _conditions_hold(
        self, conditions: Sequence[When], siblings: Mapping[str, Field], value: Mapping[str, Any]
    ) -> bool | None:
        """True, False, or None when a template decides it (checked again after resolution)."""
        for condition in conditions:
            sibling = siblings[condition.field]
            current = value.get(condition.field)
            if current is None:
                current = sibling.default if sibling.has_default else None
            if self.is_template(current):
                return None
            if current not in condition.values:
                return False
        return True

    def value(self, spec: Field, value: Any, path: str) -> None:
        if self.is_template(value):
            return
        if spec.type in ("string", "text", "code"):
            self._string(spec, value, path)
        elif spec.type == "select":
            allowed = [option.value for option in spec.options]
            if not isinstance(value, str) or value not in (*allowed, *spec.aliases):
                shown = ", ".join(json.dumps(choice) for choice in allowed)
                self.fail(path, f"must be one of {shown}")
        elif spec.type == "number":
            self._number(spec, value, path)
        elif spec.type == "boolean":
            if not isinstance(value, bool):
                self.fail(path, "must be true or false")
        elif spec.type == "list":
            if not isinstance(value, list):
                self.fail(path, "must be a list")
            elif spec.item is not None:
                for index, item in enumerate(value):
                    self.value(spec.item, item, f"{path}.{index}")
        elif spec.type == "object":
            if not isinstance(value, Mapping):
                self.fail(path, "must be an object")
            else:
                self.object(spec.fields, value, f"{path}.")

    def _string(self, spec: Field, value: Any, path: str) -> None:
        if not isinstance(value, str):
            self.fail(path, "must be a string")
            return
        if not value and (spec.required or spec.required_when):
            self.fail(path, "must not be empty")
            return
        if spec.pattern and not re.search(spec.pattern, value):
            self.fail(path, f"must {spec.pattern_rule or 'match ' + spec.pattern}")

    def _number(self, spec: Field, value: Any, path: str) -> None:
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(path, "must be a whole number" if spec.integer else "must be a number")
            return
        if spec.integer and not whole:
            self.fail(path, "must be a whole number")
            return
        low, high = spec.minimum, spec.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            if low is not None and high is not None:
                self.fail(path, f"must be between {low} and {high}")
            elif low is not None:
                self.fail(path, f"must be at least {low}")
            else:
                self.fail(path, f"must be at most {high}")


def validate(
    fields: Sequence[Field], config: Mapping[str, Any], *, allow_expressions: bool
) -> list[ConfigIssue]:
    """Every broken rule of ``config`` against ``fields`` (empty when valid)."""
    validator = _Validator(allow_expressions)
    validator.object(fields, config, "")
    return validator.issues


def validate_with_rules(
    fields: Sequence[Field],
    config: Mapping[str, Any],
    extra_rules: Callable[..., list[ConfigIssue]],
    *,
    allow_expressions: bool,
) -> list[ConfigIssue]:
    """A component's whole validation: its field specs, then its own ``extra_rules(config, ...)``.

    Every broken rule at once, but one issue per field: a cross-field rule about a value the field
    specs already rejected would only repeat the problem.
    """
    if not isinstance(cast(object, config), Mapping):
        return [ConfigIssue("", "the configuration must be an object")]
    issues = validate(fields, config, allow_expressions=allow_expressions)
    reported = {issue.field for issue in issues}
    issues.extend(
        issue
        for issue in extra_rules(config, allow_expressions=allow_expressions)
        if issue.field not in reported
    )
    return issues


def packaged_example(package: str, name: str) -> dict[str, Any]:
    """A fresh copy (callers may change it) of ``<name>.example.json`` shipped in ``package``."""
    return copy.deepcopy(_packaged_example(package, name))


@functools.cache
def _packaged_example(package: str, name: str) -> dict[str, Any]:
    text = resources.files(package).joinpath(f"{name}.example.json").read_text("utf-8")
    document = json.loads(text)
    if not isinstance(document, dict):
        raise TypeError(f"example output of {name} is not a JSON object")
    return document
