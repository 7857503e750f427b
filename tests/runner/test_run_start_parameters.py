"""The start trigger's typed run parameters (SuperPlane's Manual Run): checked at load, and the run
input checked against them, each error naming the parameter."""

from __future__ import annotations

from typing import Any

import pytest

from daytonaflow.runner import CanvasError, ComponentRegistry, RunInputError, check_canvas, parse_canvas
from daytonaflow.runner.hooks import manual_trigger_event

PARAMETERS = [
    {"name": "branch", "type": "string", "defaultString": "main"},
    {"name": "retries", "type": "number", "defaultNumber": 2},
    {"name": "dryRun", "type": "boolean", "defaultBoolean": False},
    {
        "name": "target",
        "type": "select",
        "options": [{"label": "Staging", "value": "staging"}, {"label": "Production", "value": "production"}],
        "defaultString": "staging",
    },
    {"name": "notes", "type": "text", "title": "Release notes"},
]


def canvas(parameters: list[dict[str, Any]], payload: dict[str, Any] | None = None) -> Any:
    template = {"name": "Deploy", "parameters": parameters, "payload": payload or {}}
    return parse_canvas(
        {
            "metadata": {"name": "deploy"},
            "spec": {
                "nodes": [
                    {
                        "id": "start",
                        "type": "TYPE_TRIGGER",
                        "component": "start",
                        "configuration": {"templates": [template]},
                    },
                    {"id": "done", "component": "noop"},
                ],
                "edges": [{"sourceId": "start", "targetId": "done"}],
            },
        }
    )


def data_of(run_input: Any, parameters: list[dict[str, Any]] = PARAMETERS) -> dict[str, Any]:
    result: dict[str, Any] = manual_trigger_event(canvas(parameters), run_input)["data"]
    return result


def test_absent_parameters_take_their_defaults() -> None:
    assert data_of({"notes": "first"}) == {
        "notes": "first",
        "branch": "main",
        "retries": 2,
        "dryRun": False,
        "target": "staging",
    }


def test_given_values_of_the_right_type_are_kept() -> None:
    given = {
        "branch": "dev",
        "retries": 0.5,
        "dryRun": True,
        "target": "production",
        "notes": "x",
        "extra": [1],
    }
    assert data_of(given) == given


def test_a_parameter_without_default_must_be_given() -> None:
    with pytest.raises(RunInputError, match=r'^parameter "notes" is required \(a text; it has no default\)$'):
        data_of({})


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("branch", 3, "must be a string, got 3"),
        ("retries", "3", 'must be a number, got "3"'),
        ("retries", True, "must be a number, got true"),
        ("dryRun", "yes", 'must be true or false, got "yes"'),
        ("target", "qa", 'must be one of "staging", "production", got "qa"'),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_naming_the_parameter(name: str, value: Any, rule: str) -> None:
    with pytest.raises(RunInputError) as caught:
        data_of({"notes": "n", name: value})
    assert str(caught.value) == f'parameter "{name}" {rule}'


def test_without_input_the_template_payload_is_checked_too() -> None:
    assert data_of(None, [{"name": "branch", "type": "string", "defaultString": "main"}]) == {
        "branch": "main"
    }
    with pytest.raises(RunInputError, match='parameter "n" must be a number'):
        manual_trigger_event(canvas([{"name": "n", "type": "number"}], {"n": "one"}), None)


def _problems(parameters: list[Any]) -> list[tuple[str, str, str]]:
    with pytest.raises(CanvasError) as caught:
        check_canvas(canvas(parameters), ComponentRegistry.discover(), source="deploy.yaml")
    return [(issue.node, issue.field, issue.message) for issue in caught.value.issues]


def test_bad_parameter_declarations_are_refused_at_load() -> None:
    where = "configuration.templates.0.parameters"
    assert _problems(
        [
            {"name": "a", "type": "date"},
            {"name": "b", "type": "select"},
            {"name": "c", "type": "number", "defaultNumber": "two"},
            {"name": "c", "type": "string"},
            {"type": "string", "size": 3},
            {"name": "d", "type": "select", "options": [{"label": "X", "value": "x"}], "defaultString": "y"},
        ]
    ) == [
        ("start", f"{where}.0.type", "must be one of string, text, number, boolean, select"),
        ("start", f"{where}.1.options", 'is required when type is "select": a list of {label, value}'),
        ("start", f"{where}.2.defaultNumber", "must be a number"),
        ("start", f"{where}.3.name", '"c" names another parameter too'),
        ("start", f"{where}.4.size", "is not a setting of a parameter"),
        ("start", f"{where}.4.name", "is required"),
        ("start", f"{where}.5.defaultString", 'must be one of "x"'),
    ]


def test_superplanes_parameter_declarations_load() -> None:
    assert check_canvas(canvas(PARAMETERS), ComponentRegistry.discover()) == []
