"""Seed payloads round-trip through the typed models; committed schemas and docs match the code."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import jsonschema
import pytest

from daytonaflow.component import Component
from daytonaflow.components import COMPONENTS, PAYLOAD_TYPES
from daytonaflow.components._generate import main as generate_main
from daytonaflow.components._generate import render_all, stale_files
from daytonaflow.events import Event

ROOT = Path(__file__).resolve().parents[2]

#: The seed's six example events, verbatim.
SEED_EXAMPLES = {
    "daytona.createRepositorySandbox": {
        "data": {
            "bootstrap": {"from": "file", "path": "scripts/bootstrap.sh"},
            "directory": "/home/daytona/example-app",
            "repository": "https://github.com/superplanehq/example-app.git",
            "sandboxId": "sandbox-abc123def456",
            "sandboxStartedAt": "2026-01-19T12:00:00Z",
            "secrets": [
                {"name": "API_KEY", "type": "env", "value": {"key": "API_KEY", "secret": "api-key-secret"}}
            ],
            "timeout": 300,
        },
        "timestamp": "2026-01-19T12:00:00Z",
        "type": "daytona.repository.sandbox",
    },
    "daytona.createSandbox": {
        "data": {"id": "sandbox-abc123def456", "state": "started"},
        "timestamp": "2026-01-19T12:00:00Z",
        "type": "daytona.sandbox",
    },
    "daytona.deleteSandbox": {
        "data": {"deleted": True, "id": "sandbox-abc123def456"},
        "timestamp": "2026-01-19T12:00:00Z",
        "type": "daytona.delete.response",
    },
    "daytona.executeCode": {
        "data": {"exitCode": 0, "result": "Hello, World!\n"},
        "timestamp": "2026-01-19T12:00:00Z",
        "type": "daytona.execute.response",
    },
    "daytona.executeCommand": {
        "data": {"exitCode": 0, "result": "Successfully installed requests-2.31.0\n", "timeout": False},
        "timestamp": "2026-01-19T12:00:00Z",
        "type": "daytona.command.response",
    },
    "daytona.getPreviewUrl": {
        "data": {
            "expiresInSeconds": 3600,
            "port": 3000,
            "sandbox": "sandbox-abc123def456",
            "signed": True,
            "token": "signed-token-abc123",
            "url": "https://3000-signed-token-abc123.preview.daytona.app",
        },
        "timestamp": "2026-01-19T12:00:00Z",
        "type": "daytona.preview.response",
    },
}

BY_NAME: dict[str, type[Component]] = {component.name: component for component in COMPONENTS}


@pytest.mark.parametrize("name", sorted(SEED_EXAMPLES))
def test_the_seed_example_round_trips_unchanged_through_event_and_payload_model(name):
    example = SEED_EXAMPLES[name]
    component = BY_NAME[name]
    event = Event.model_validate(example)
    payload = component.payload_type.model_validate(event.data)
    assert payload.event_type == example["type"]
    again = Event.of(payload, timestamp=event.timestamp)
    assert again.model_dump(mode="json") == example


@pytest.mark.parametrize("name", sorted(SEED_EXAMPLES))
def test_the_example_output_is_the_seed_example(name):
    assert BY_NAME[name].example_output() == SEED_EXAMPLES[name]


@pytest.mark.parametrize("name", sorted(SEED_EXAMPLES))
def test_the_committed_payload_schema_accepts_the_seed_example(name):
    event_type = SEED_EXAMPLES[name]["type"]
    schema = json.loads((ROOT / "schemas" / "payloads" / f"{event_type}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(SEED_EXAMPLES[name])


def test_a_payload_schema_rejects_a_wrong_event_type():
    schema = json.loads((ROOT / "schemas" / "payloads" / "daytona.sandbox.schema.json").read_text())
    wrong = {**SEED_EXAMPLES["daytona.createSandbox"], "type": "daytona.other"}
    assert not jsonschema.Draft202012Validator(schema).is_valid(wrong)


def test_every_config_schema_is_a_valid_draft_2020_12_schema():
    for component in COMPONENTS:
        schema = json.loads((ROOT / "schemas" / "config" / f"{component.name}.schema.json").read_text())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema)


def test_there_is_one_payload_type_per_component():
    assert {component.payload_type for component in COMPONENTS} == set(PAYLOAD_TYPES)


def test_committed_schemas_manifest_and_docs_match_the_code():
    stale = stale_files(ROOT, render_all())
    assert stale == [], f"regenerate with `python -m daytonaflow.components._generate`: {stale}"


def test_the_generator_writes_a_tree_that_then_checks_clean(tmp_path, capsys):
    assert generate_main([str(tmp_path)]) == 0
    assert generate_main([str(tmp_path), "--check"]) == 0
    (tmp_path / "schemas" / "manifest.json").write_text("{}\n")
    assert generate_main([str(tmp_path), "--check"]) == 1
    assert "out of date: schemas/manifest.json" in capsys.readouterr().err


def test_the_manifest_lists_the_daytona_components_with_their_channels():
    manifest = json.loads((ROOT / "schemas" / "manifest.json").read_text())
    channels = {
        entry["name"]: [channel["name"] for channel in entry["channels"]]
        for entry in manifest["components"]
        if entry["name"].startswith("daytona.")
    }
    assert channels == {
        "daytona.createSandbox": ["default"],
        "daytona.createRepositorySandbox": ["default"],
        "daytona.executeCode": ["success", "failed"],
        "daytona.executeCommand": ["success", "failed"],
        "daytona.getPreviewUrl": ["default"],
        "daytona.deleteSandbox": ["default"],
        "daytona.gitClone": ["default"],
        "daytona.gitStatus": ["default"],
        "daytona.gitCheckout": ["default"],
        "daytona.gitCommit": ["default", "nothing"],
        "daytona.gitPush": ["default"],
        "daytona.gitPull": ["default"],
        # files and lifecycle
        "daytona.uploadFile": ["default"],
        "daytona.downloadFile": ["default"],
        "daytona.listFiles": ["default"],
        "daytona.getSandbox": ["default"],
        "daytona.listSandboxes": ["default"],
        "daytona.startSandbox": ["default"],
        "daytona.stopSandbox": ["default"],
        "daytona.archiveSandbox": ["default"],
        "daytona.listSnapshots": ["default"],
        "daytona.createVolume": ["default"],
        "daytona.deleteVolume": ["default"],
    }


def test_manifest_entries_describe_what_a_canvas_ui_renders():
    manifest = json.loads((ROOT / "schemas" / "manifest.json").read_text())
    for entry in manifest["components"]:
        assert {"label", "description", "icon", "color", "documentation", "fields", "payloadType"} <= set(
            entry
        )
        assert entry["exampleOutput"]["type"] == entry["payloadType"]
        assert (ROOT / "schemas" / entry["configSchema"]).exists()
    preview = next(entry for entry in manifest["components"] if entry["name"] == "daytona.getPreviewUrl")
    expires = next(field for field in preview["fields"] if field["name"] == "expiresInSeconds")
    assert (expires["default"], expires["min"], expires["max"]) == (60, 1, 86400)
    assert expires["visibleWhen"] == [{"field": "signed", "values": [True]}]


def test_the_entry_points_expose_the_six_component_classes():
    entry_points = importlib.metadata.entry_points(group="daytonaflow.components")
    loaded = {entry_point.name: entry_point.load() for entry_point in entry_points}
    daytona = {name: component for name, component in loaded.items() if name.startswith("daytona.")}
    assert daytona == {component.name: component for component in COMPONENTS}
