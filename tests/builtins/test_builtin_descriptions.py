"""Each core component describes itself: docs page, JSON Schemas, manifest entry, example output."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from daytonaflow.builtins import BUILTIN_COMPONENTS, HttpRequest
from daytonaflow.component import Component

ROOT = Path(__file__).resolve().parents[2]
CORE = sorted(BUILTIN_COMPONENTS.values(), key=lambda component: component.name)


@pytest.mark.parametrize("component", CORE, ids=lambda component: component.name)
def test_the_example_output_matches_the_generated_payload_schema(component: type[Component]) -> None:
    example = component.example_output()
    schema = json.loads((ROOT / "schemas" / "payloads" / f"{example['type']}.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(example)
    component.payload_type.model_validate(example["data"])


@pytest.mark.parametrize("component", CORE, ids=lambda component: component.name)
def test_the_config_schema_is_valid_and_has_a_docs_page(component: type[Component]) -> None:
    schema = json.loads((ROOT / "schemas" / "config" / f"{component.name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    page = (ROOT / "docs" / "components" / f"{component.name}.md").read_text()
    assert page.startswith("<!-- Generated")
    assert f"(`{component.name}`)" in page


def test_the_manifest_lists_the_core_components_with_superplanes_channels_and_payload_types() -> None:
    manifest = json.loads((ROOT / "schemas" / "manifest.json").read_text())
    core = {
        entry["name"]: ([channel["name"] for channel in entry["channels"]], entry["payloadType"])
        for entry in manifest["components"]
        if entry["name"] in BUILTIN_COMPONENTS
    }
    assert core == {
        "http": (["success", "failure"], "http.request.finished"),
        "if": (["true", "false"], "if.executed"),
        "filter": (["default"], "filter.executed"),
        "merge": (["success", "timeout", "fail"], "merge.finished"),
        "wait": (["default"], "wait.finished"),
        "noop": (["default"], "noop.finished"),
        "schedule": (["default"], "scheduler.tick"),
        "webhook": (["default"], "webhook"),
    }
    for name in ("http.request.failed", "merge.stopped", "merge.timeout"):
        assert (ROOT / "schemas" / "payloads" / f"{name}.schema.json").exists()


def test_a_superplane_exported_http_node_validates_unchanged() -> None:
    # The HTTP node of SuperPlane's "Health Check Monitor" canvas template, as exported.
    config = {
        "method": "GET",
        "url": "https://status.example.com/health",
        "successCodes": "2xx",
        "timeoutSeconds": 10,
    }
    assert HttpRequest.validate_config(config, allow_expressions=True) == []
    superplane_retry = {"enabled": True, "strategy": "exponential", "maxAttempts": 5, "intervalSeconds": 15}
    assert HttpRequest.validate_config({**config, "retry": superplane_retry}, allow_expressions=True) == []
    older = {"url": config["url"], "timeoutStrategy": "exponential", "timeoutSeconds": 10, "retries": 3}
    assert HttpRequest.validate_config(older, allow_expressions=True) == []
