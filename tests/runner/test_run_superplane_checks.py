"""Load-time checks that name the slip: close names for unknown components and settings, and
payload fields read from an upstream node that its component never emits."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from pydantic import ConfigDict
from run_fakes import FAKE_COMPONENTS, Echo, ValuePayload, make_canvas

from daytonaflow.events import Payload
from daytonaflow.runner import ComponentRegistry, parse_canvas, validate_canvas

CREATE = {"id": "create", "name": "Create Sandbox", "component": "daytona.createSandbox"}


@pytest.fixture(scope="module")
def registry() -> ComponentRegistry:
    return ComponentRegistry.discover()


def messages(document: dict[str, Any], registry: Any) -> list[str]:
    return [str(issue) for issue in validate_canvas(parse_canvas(document), registry)]


def command_reading(template: str) -> dict[str, Any]:
    """start -> Create Sandbox -> Run, whose command is ``template``."""
    run = {
        "id": "run",
        "name": "Run",
        "component": "daytona.executeCommand",
        "configuration": {"sandbox": '{{ $["Create Sandbox"].data.id }}', "command": template},
    }
    return make_canvas([CREATE, run], [("start", "create"), ("create", "run")])


# --- close names ---------------------------------------------------------------------------------


def test_an_unknown_component_suggests_the_close_name_whatever_its_case(registry: ComponentRegistry) -> None:
    document = make_canvas([{**CREATE, "component": "daytona.createSandBox"}], [("start", "create")])
    assert messages(document, registry) == [
        'node "Create Sandbox" (id create) field "component": unknown component "daytona.createSandBox"; '
        'did you mean "daytona.createSandbox"?'
    ]


def test_an_unknown_component_with_no_close_name_lists_the_known_ones() -> None:
    document = make_canvas([{"id": "a", "component": "zzz"}], [("start", "a")])
    (message,) = messages(document, FAKE_COMPONENTS)
    assert 'unknown component "zzz" (known: ' in message and "test.echo" in message


def test_an_unknown_setting_suggests_the_close_name(registry: ComponentRegistry) -> None:
    document = make_canvas([{**CREATE, "configuration": {"autoStopIntervall": 5}}], [("start", "create")])
    assert messages(document, registry) == [
        'node "Create Sandbox" (id create) field "configuration.autoStopIntervall": is not a known field; '
        'did you mean "autoStopInterval"?'
    ]


def test_an_unknown_trigger_suggests_start() -> None:
    document = make_canvas([], [])
    document["spec"]["nodes"][0]["component"] = "Start"
    assert any(
        'unknown trigger "Start"; did you mean "start"?' in m for m in messages(document, FAKE_COMPONENTS)
    )


def test_a_start_trigger_setting_close_to_templates_is_named() -> None:
    document = make_canvas([], [])
    document["spec"]["nodes"][0]["configuration"] = {"template": []}
    assert messages(document, FAKE_COMPONENTS) == [
        'node "Manual Run" (id start) field "configuration.template": is not a setting of the start trigger; '
        'did you mean "templates"?'
    ]


def test_an_annotation_setting_close_to_color_is_named() -> None:
    document = make_canvas([], [])
    document["spec"]["nodes"].append(
        {"id": "n", "type": "TYPE_WIDGET", "component": "annotation", "configuration": {"colour": "red"}}
    )
    assert messages(document, FAKE_COMPONENTS) == [
        'node "n" field "configuration.colour": is not a setting of an annotation; did you mean "color"?'
    ]


# --- payload fields ------------------------------------------------------------------------------


def test_a_field_the_upstream_payload_lacks_is_reported_with_the_close_one(
    registry: ComponentRegistry,
) -> None:
    assert messages(command_reading('echo {{ $["Create Sandbox"].data.idd }}'), registry) == [
        'node "Run" (id run) field "configuration.command": $["Create Sandbox"].data.idd: '
        '"idd" is not a field of daytona.sandbox (did you mean "id"?)'
    ]


def test_a_field_with_no_close_name_lists_the_payload_fields(registry: ComponentRegistry) -> None:
    (message,) = messages(command_reading('{{ $["create"].data.zzz }}'), registry)
    fields = "id, state, previewUrl, previewToken"
    assert message.endswith(f'"zzz" is not a field of daytona.sandbox (its fields: {fields})')


def test_the_payload_fields_of_the_upstream_component_pass(registry: ComponentRegistry) -> None:
    template = (
        '{{ $["Create Sandbox"].data.id }} {{ $["create"].data.state }} {{ $["daytona.createSandbox"].type }}'
    )
    assert messages(command_reading(template), registry) == []


def test_optional_payload_fields_pass(registry: ComponentRegistry) -> None:
    later = {
        "id": "later",
        "component": "daytona.executeCommand",
        "configuration": {
            "sandbox": "x",
            "command": 'echo {{ $["Run"].data.exitCode }} {{ $["Run"].data.sessionId }}',
        },
    }
    document = command_reading("true")
    document["spec"]["nodes"].append({"type": "TYPE_ACTION", **later})
    document["spec"]["edges"].append({"sourceId": "run", "targetId": "later", "channel": "success"})
    assert messages(document, registry) == []


def repository_reading(template: str) -> dict[str, Any]:
    repo = {
        "id": "repo",
        "name": "Repo",
        "component": "daytona.createRepositorySandbox",
        "configuration": {"repository": "https://example.invalid/r.git"},
    }
    run = {
        "id": "run",
        "component": "daytona.executeCommand",
        "configuration": {"sandbox": "x", "command": template},
    }
    return make_canvas([repo, run], [("start", "repo"), ("repo", "run")])


def test_nested_models_and_list_items_are_followed(registry: ComponentRegistry) -> None:
    ok = '{{ $["Repo"].data.bootstrap.exitCode }} {{ $["Repo"].data.secrets[0].value.secret }}'
    assert messages(repository_reading(ok), registry) == []
    (message,) = messages(repository_reading('{{ $["Repo"].data.secrets[0].value.secrett }}'), registry)
    assert message.endswith(
        '$["Repo"].data.secrets[0].value.secrett: "secrett" is not a field of '
        'daytona.repository.sandbox secrets.0.value (did you mean "secret"?)'
    )


def test_any_typed_fields_stop_the_check() -> None:
    # test.echo's payload field ``value`` is Any: whatever is read below it may be there.
    document = make_canvas(
        [
            {"id": "a", "component": "test.echo", "configuration": {"value": {"x": 1}}},
            {
                "id": "b",
                "component": "test.echo",
                "configuration": {"value": '{{ $["a"].data.value.x.y[0] }}'},
            },
        ],
        [("start", "a"), ("a", "b")],
    )
    assert messages(document, FAKE_COMPONENTS) == []


def test_the_start_triggers_payload_is_free_form() -> None:
    document = make_canvas(
        [
            {
                "id": "a",
                "component": "test.echo",
                "configuration": {"value": '{{ $["Manual Run"].data.anything }}'},
            }
        ],
        [("start", "a")],
    )
    assert messages(document, FAKE_COMPONENTS) == []


def test_tolerant_reads_are_not_reported(registry: ComponentRegistry) -> None:
    template = '{{ $["Create Sandbox"].data.idd ?? "none" }} {{ $["Create Sandbox"].data?.idd }}'
    assert messages(command_reading(template), registry) == []


def test_a_name_shared_by_nodes_of_different_components_is_not_checked(registry: ComponentRegistry) -> None:
    document = command_reading('{{ $["Create Sandbox"].data.result }}')
    # Another node with the same name, of another component: which one answers is not certain.
    document["spec"]["nodes"].append(
        {
            "id": "other",
            "name": "Create Sandbox",
            "type": "TYPE_ACTION",
            "component": "daytona.executeCode",
            "configuration": {"sandbox": "x", "code": "print(1)"},
        }
    )
    document["spec"]["edges"].append({"sourceId": "start", "targetId": "other", "channel": "default"})
    assert not any("is not a field" in message for message in messages(document, registry))


def test_config_of_an_upstream_node_is_checked_against_its_settings(registry: ComponentRegistry) -> None:
    assert messages(command_reading('{{ $["Create Sandbox"].config.snapshot }}'), registry) == []
    (message,) = messages(command_reading('{{ $["Create Sandbox"].config.snapshott }}'), registry)
    assert message.endswith(
        '$["Create Sandbox"].config.snapshott: "snapshott" is not a setting of daytona.createSandbox '
        '(did you mean "snapshot"?)'
    )


class _OpenPayload(ValuePayload):
    """A payload that keeps whatever fields it is given (a pass-through component's)."""

    model_config = ConfigDict(extra="allow")
    event_type: ClassVar[str] = "test.open"


class _PassThrough(Echo):
    name: ClassVar[str] = "test.passThrough"
    payload_type: ClassVar[type[Payload]] = _OpenPayload


def test_a_payload_that_keeps_unknown_fields_is_not_checked() -> None:
    document = make_canvas(
        [
            {"id": "p", "component": "test.passThrough", "configuration": {"value": 1}},
            {"id": "b", "component": "test.echo", "configuration": {"value": '{{ $["p"].data.anything }}'}},
        ],
        [("start", "p"), ("p", "b")],
    )
    assert messages(document, {**FAKE_COMPONENTS, _PassThrough.name: _PassThrough}) == []


def test_a_closed_fake_payload_is_checked() -> None:
    # The same canvas against test.echo's closed payload: the slip is reported.
    document = make_canvas(
        [
            {"id": "p", "component": "test.echo", "configuration": {"value": 1}},
            {"id": "b", "component": "test.echo", "configuration": {"value": '{{ $["p"].data.valeu }}'}},
        ],
        [("start", "p"), ("p", "b")],
    )
    (message,) = messages(document, FAKE_COMPONENTS)
    assert message.endswith('"valeu" is not a field of test.value (did you mean "value"?)')


def test_a_field_compared_with_nil_may_be_missing_but_not_what_leads_to_it(
    registry: ComponentRegistry,
) -> None:
    # As in Expr: `x.idd == nil` is true for a missing idd; reading past a missing field is an error.
    assert messages(command_reading('{{ $["Create Sandbox"].data.idd == nil }}'), registry) == []
    (message,) = messages(command_reading('{{ nil != $["Create Sandbox"].data.idd.x }}'), registry)
    assert '"idd" is not a field of daytona.sandbox' in message
