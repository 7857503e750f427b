"""Generate ``schemas/`` and ``docs/components/`` from the components' metadata.

``python -m daytonaflow.components._generate [ROOT]`` writes, under ROOT (default: the current
directory):

* ``schemas/config/<component>.schema.json``: JSON Schema of each configuration;
* ``schemas/payloads/<payload type>.schema.json``: JSON Schema of each emitted event envelope;
* ``schemas/manifest.json``: every component with fields, channels, docs and example output;
* ``docs/components/<component>.md`` and ``docs/components/README.md``: reference docs.

``--check`` writes nothing and exits 1 when a committed file differs from what the code says.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from daytonaflow.builtins import BUILTIN_COMPONENTS
from daytonaflow.component import Component
from daytonaflow.components import COMPONENTS as DAYTONA_COMPONENTS
from daytonaflow.components._fields import JSON_SCHEMA_DIALECT, SCHEMA_ID_BASE
from daytonaflow.events import Payload

MANIFEST_VERSION = 1
#: Every component that ships with daytonaflow: the Daytona ones, then the core ones.
COMPONENTS: tuple[type[Component], ...] = (*DAYTONA_COMPONENTS, *BUILTIN_COMPONENTS.values())


def _json(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def payload_schema(payload: type[Payload]) -> dict[str, Any]:
    """JSON Schema of the whole ``{type, data, timestamp}`` envelope carrying ``payload``."""
    data = payload.model_json_schema(by_alias=True, mode="validation")
    definitions = data.pop("$defs", {})
    schema: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{SCHEMA_ID_BASE}/payloads/{payload.event_type}.schema.json",
        "title": f"{payload.event_type} event",
        "type": "object",
        "properties": {
            "type": {"const": payload.event_type},
            "data": data,
            "timestamp": {"type": "string", "format": "date-time"},
        },
        "required": ["type", "data", "timestamp"],
        "additionalProperties": False,
    }
    if definitions:
        schema["$defs"] = definitions
    return schema


def manifest(components: Sequence[type[Component]] = COMPONENTS) -> dict[str, Any]:
    entries = []
    for component in components:
        entry = component.manifest()
        entry["configSchema"] = f"config/{component.name}.schema.json"
        entry["payloadSchema"] = f"payloads/{component.payload_type.event_type}.schema.json"
        entries.append(entry)
    return {"version": MANIFEST_VERSION, "components": entries}


def _field_rows(fields: list[dict[str, Any]], prefix: str = "") -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for field in fields:
        path = f"{prefix}{field['name']}"
        kind = field["type"]
        if kind == "select":
            kind = "one of " + ", ".join(f"`{option['value']}`" for option in field["options"])
        required = "yes" if field["required"] else ""
        if field.get("requiredWhen"):
            required = "when " + " and ".join(
                f"`{prefix}{rule['field']}` is " + " or ".join(f"`{value}`" for value in rule["values"])
                for rule in field["requiredWhen"]
            )
        default = f"`{json.dumps(field['default'])}`" if "default" in field else ""
        description = field["description"]
        if field["type"] == "number":
            description = f"{description} {_range(field.get('min'), field.get('max'))}".strip()
        rows.append(
            {
                "path": path,
                "type": kind,
                "required": required,
                "default": default,
                "description": description.replace("|", "\\|").replace("\n", " "),
            }
        )
        if field.get("fields"):
            rows.extend(_field_rows(field["fields"], f"{path}."))
        item = field.get("itemField")
        if item and item.get("fields"):
            rows.extend(_field_rows(item["fields"], f"{path}[]."))
    return rows


def _range(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"From {low} to {high}."
    if low is not None:
        return f"At least {low}."
    if high is not None:
        return f"At most {high}."
    return ""


def _environment() -> jinja2.Environment:
    def load(name: str) -> str:
        return resources.files("daytonaflow.components").joinpath(name).read_text("utf-8")

    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(load),
        autoescape=False,  # Markdown, not HTML
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    # The page title is the only level-1 heading: the component docs' sections go one level down.
    environment.filters["demote_headings"] = lambda text: (
        "\n".join("#" + line if line.startswith("#") else line for line in text.splitlines()) + "\n"
    )
    environment.filters["code"] = lambda value: f"`{value}`"
    return environment


def render_docs(components: Sequence[type[Component]] = COMPONENTS) -> dict[str, str]:
    environment = _environment()
    page = environment.get_template("component_doc.md.j2")
    documents: dict[str, str] = {}
    entries = []
    for component in components:
        entry = component.manifest()
        entries.append(entry)
        documents[f"docs/components/{component.name}.md"] = page.render(
            component=entry,
            fields=_field_rows(entry["fields"]),
            example=json.dumps(entry["exampleOutput"], indent=2, sort_keys=True),
        )
    documents["docs/components/README.md"] = environment.get_template("components_index.md.j2").render(
        components=entries
    )
    return documents


def render_all(components: Sequence[type[Component]] = COMPONENTS) -> dict[str, str]:
    """Every generated file: path relative to the repository root -> content."""
    files: dict[str, str] = {}
    for component in components:
        files[f"schemas/config/{component.name}.schema.json"] = _json(component.config_schema())
        for payload in _payload_types(component):
            files[f"schemas/payloads/{payload.event_type}.schema.json"] = _json(payload_schema(payload))
    files["schemas/manifest.json"] = _json(manifest(components))
    files.update(render_docs(components))
    return files


def _payload_types(component: type[Component]) -> tuple[type[Payload], ...]:
    """The payload type, and those a component emits beside it (``http.request.failed``)."""
    others: tuple[type[Payload], ...] = getattr(component, "other_payload_types", ())
    return (component.payload_type, *others)


GENERATED_DIRECTORIES = ("schemas/config", "schemas/payloads", "docs/components")


def stale_files(root: Path, files: dict[str, str]) -> list[str]:
    """Files under the generated directories that differ from ``files``, are missing, or are extra."""
    problems = [path for path, content in files.items() if _read(root / path) != content]
    for directory in GENERATED_DIRECTORIES:
        for existing in sorted((root / directory).glob("*")):
            relative = existing.relative_to(root).as_posix()
            if relative not in files:
                problems.append(relative)
    return problems


def _read(path: Path) -> str | None:
    try:
        return path.read_text("utf-8")
    except FileNotFoundError:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m daytonaflow.components._generate", description=__doc__)
    parser.add_argument("root", nargs="?", default=".", type=Path, help="repository root (default: .)")
    parser.add_argument("--check", action="store_true", help="only report files that are out of date")
    arguments = parser.parse_args(argv)
    root: Path = arguments.root
    files = render_all()
    if arguments.check:
        problems = stale_files(root, files)
        for problem in problems:
            print(f"out of date: {problem}", file=sys.stderr)
        return 1 if problems else 0
    for directory in GENERATED_DIRECTORIES:
        for existing in (root / directory).glob("*"):
            if existing.relative_to(root).as_posix() not in files:
                existing.unlink()
    for relative, content in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if _read(target) != content:
            target.write_text(content, "utf-8")
            print(f"wrote {relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
