"""The palette: every registered component's own manifest, the start trigger and the annotation widget."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from daytonaflow.component import Component
from daytonaflow.runner import ANNOTATION_COLORS, ANNOTATION_WIDGET, START_TRIGGER
from daytonaflow.runner.preview import expression_functions


def _field(name: str, label: str, kind: str, description: str = "", **extra: Any) -> dict[str, Any]:
    # The shape of the components' own field definitions (see schemas/manifest.json).
    return {
        "name": name,
        "label": label,
        "type": kind,
        "description": description,
        "required": False,
        "sensitive": False,
        "togglable": False,
        "supportsExpressions": False,
        **extra,
    }


_START = {
    "name": START_TRIGGER,
    "label": "Manual Run",
    "description": "Start a run by hand, with an input that later nodes read as root().data.",
    "icon": "play",
    "color": "#3B82F6",
    "documentation": "Starts a run when you press Run (or `daytonaflow run`). The run input is the"
    " event's `data`; without one, the payload of the first template.",
    "channels": [{"name": "default", "label": "Default", "description": "Emitted when the run starts."}],
    "payloadType": "manual.run",
    "exampleOutput": {"type": "manual.run", "data": {}, "timestamp": "2026-01-19T12:00:00Z"},
    "fields": [
        _field(
            "templates",
            "Input Templates",
            "list",
            "Named example inputs; the first is the input of a run started without one.",
            itemField=_field(
                "template",
                "Template",
                "object",
                fields=[
                    _field("name", "Name", "string", required=True),
                    _field("payload", "Payload", "json", "A JSON object: the run's root().data."),
                    _field(
                        "parameters",
                        "Parameters",
                        "json",
                        "SuperPlane's typed run parameters, a list of {name, type (string, text, number,"
                        " boolean, select), options, defaultString | defaultNumber | defaultBoolean}: each"
                        " names a key of the run input, checked and defaulted when a run starts.",
                    ),
                ],
            ),
        )
    ],
}

_ANNOTATION = {
    "name": ANNOTATION_WIDGET,
    "label": "Annotation",
    "description": "A sticky note on the canvas (markdown); it does not run.",
    "icon": "sticky-note",
    "color": "#F5D76E",
    "documentation": "Notes for the people reading the canvas. Annotations have no inputs or outputs.",
    "channels": [],
    "fields": [
        _field("text", "Text", "text", "Markdown shown on the note.", required=True),
        _field(
            "color",
            "Color",
            "select",
            default="yellow",
            options=[{"value": color, "label": color.capitalize()} for color in ANNOTATION_COLORS],
        ),
    ],
}


def palette(registry: Mapping[str, type[Component]]) -> dict[str, Any]:
    manifests = [registry[name] for name in sorted(registry)]
    broken = dict(getattr(registry, "broken", {}))
    return {
        "components": [component.manifest() for component in manifests if not component.trigger],
        # The schedule and webhook triggers after the manual one; `daytonaflow up` keeps them armed.
        "triggers": [_START, *(component.manifest() for component in manifests if component.trigger)],
        "widgets": [_ANNOTATION],
        "functions": [
            {"name": function.name, "signature": function.signature} for function in expression_functions()
        ],
        "broken": broken,
    }
