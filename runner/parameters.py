"""The start trigger's typed run parameters (SuperPlane's Manual Run ``templates[].parameters``).

A parameter ``{name, type, options?, defaultString | defaultNumber | defaultBoolean, title?,
placeholder?}`` names a key of the run input (``root().data.<name>``). A run's input is checked
against the parameters of the template it starts from: a missing key takes the parameter's
default (or is refused when it has none), and a value of the wrong type is refused, the error
naming the parameter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from daytonaflow.runner.errors import RunInputError

#: SuperPlane's parameter types; ``text`` is a multi-line string.
PARAMETER_TYPES = ("string", "text", "number", "boolean", "select")
_SETTINGS = (
    "name",
    "type",
    "options",
    "defaultString",
    "defaultNumber",
    "defaultBoolean",
    "title",
    "placeholder",
)
#: Which default setting each type reads.
_DEFAULT_KEY = {
    "string": "defaultString",
    "text": "defaultString",
    "select": "defaultString",
    "number": "defaultNumber",
    "boolean": "defaultBoolean",
}


def parameter_issues(template: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What is wrong with a template's ``parameters``, as (path below ``parameters``, problem)."""
    parameters = template.get("parameters")
    if parameters is None:
        return []
    if not isinstance(parameters, list):
        return [("", "must be a list of {name, type, ...}")]
    issues: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, parameter in enumerate(parameters):
        where = f".{index}"
        if not isinstance(parameter, Mapping):
            issues.append((where, "must be {name, type, ...}"))
            continue
        issues.extend(
            (f"{where}.{key}", "is not a setting of a parameter") for key in parameter if key not in _SETTINGS
        )
        name = parameter.get("name")
        if not isinstance(name, str) or not name.strip():
            issues.append((f"{where}.name", "is required"))
        elif name in seen:
            issues.append((f"{where}.name", f'"{name}" names another parameter too'))
        else:
            seen.add(name)
        kind = parameter.get("type", "string")
        if kind not in PARAMETER_TYPES:
            issues.append((f"{where}.type", f"must be one of {', '.join(PARAMETER_TYPES)}"))
            continue
        values = _option_values(parameter.get("options"))
        if kind == "select" and not values:
            issues.append((f"{where}.options", 'is required when type is "select": a list of {label, value}'))
        elif kind == "select" and values is not None and len(values) != len(parameter["options"]):
            issues.append((f"{where}.options", "must be a list of {label, value} with string values"))
        key = _DEFAULT_KEY[kind]
        if key in parameter:
            problem = _type_problem(kind, parameter[key], values)
            if problem is not None:
                issues.append((f"{where}.{key}", problem))
    return issues


def apply_parameters(template: Mapping[str, Any] | None, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with each parameter of ``template`` checked, its default filled in when absent."""
    parameters = (template or {}).get("parameters") or []
    result = dict(data)
    for parameter in parameters:
        name = parameter["name"]
        kind = parameter.get("type", "string")
        if name not in result:
            key = _DEFAULT_KEY[kind]
            if key not in parameter:
                raise RunInputError(f'parameter "{name}" is required (a {kind}; it has no default)')
            result[name] = parameter[key]
            continue
        problem = _type_problem(kind, result[name], _option_values(parameter.get("options")))
        if problem is not None:
            raise RunInputError(f'parameter "{name}" {problem}, got {_shown(result[name])}')
    return result


def _option_values(options: Any) -> list[str] | None:
    if not isinstance(options, list):
        return None
    return [o["value"] for o in options if isinstance(o, Mapping) and isinstance(o.get("value"), str)]


def _type_problem(kind: str, value: Any, options: list[str] | None) -> str | None:
    if kind in ("string", "text"):
        return None if isinstance(value, str) else "must be a string"
    if kind == "number":
        return None if isinstance(value, int | float) and not isinstance(value, bool) else "must be a number"
    if kind == "boolean":
        return None if isinstance(value, bool) else "must be true or false"
    choices = options or []
    if isinstance(value, str) and value in choices:
        return None
    return "must be one of " + ", ".join(json.dumps(choice) for choice in choices)


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
