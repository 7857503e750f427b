"""Canvas files: open, save, import and export in SuperPlane's format, as the CLI reads them.

A canvas goes to the browser as its document (node fields the editor does not know travel along
untouched) and comes back the same way. Saving a canvas that is the same as the file's, field for
field, leaves the file as it is, comments included; a changed canvas keeps the file's leading
comment block. Only ``.yaml``, ``.yml`` and ``.json`` files are written, and never over a file that
is not a canvas.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from daytonaflow import documents
from daytonaflow.errors import DaytonaflowError
from daytonaflow.runner import Canvas, CanvasError, CanvasIssue, parse_canvas

Format = Literal["yaml", "json"]
CANVAS_SUFFIXES = (".yaml", ".yml", ".json")


class CanvasFileError(DaytonaflowError):
    """A canvas file cannot be read or written; the message names the file."""


@dataclass(frozen=True)
class OpenedCanvas:
    path: Path
    format: Format
    document: dict[str, Any]
    canvas: Canvas


def format_of(path: Path) -> Format:
    return "json" if path.suffix.lower() == ".json" else "yaml"


def open_canvas(path: Path) -> OpenedCanvas:
    """Read ``path``; raises :class:`CanvasError` (with the file name) when it holds no canvas."""
    source = str(path)
    _check_name(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            # A FIFO or a device would block the reader (the UI's one event loop) or never end.
            raise CanvasFileError(f"{source}: not a regular file")
        text = documents.read_text(path, source=source)
    except FileNotFoundError:
        raise CanvasFileError(f"{source}: no such file") from None
    except OSError as error:
        raise CanvasFileError(f"{source}: cannot read the file: {error.strerror}") from None
    return _from_text(text, format_of(path), source=source, path=path)


def import_canvas(text: str, format: Format | None = None) -> OpenedCanvas:
    """A canvas from pasted or uploaded text (JSON when it starts with ``{``, else YAML)."""
    chosen: Format = format or ("json" if text.lstrip().startswith("{") else "yaml")
    return _from_text(text, chosen, source="the imported text", path=None)


def export_canvas(document: Mapping[str, Any], format: Format) -> str:
    """The document as file text (checked to be a canvas first)."""
    parse_canvas(document, source="the canvas")
    return _dump(document, format)


def save_canvas(path: Path, document: Mapping[str, Any]) -> bool:
    """Write ``document`` to ``path``; False when the file already holds the same canvas (untouched).

    A symbolic link is followed (its target is written, the link stays); a file its owner made
    read-only is not replaced; a new file gets the usual mode (``0666`` less the umask).
    """
    source = str(path)
    _check_name(path)
    if not path.is_absolute():
        raise CanvasFileError(f"{source}: give the file's absolute path")
    new = parse_canvas(document, source=source)
    try:
        target = path.resolve()
        if not target.parent.is_dir():
            raise CanvasFileError(f"{source}: the folder {target.parent} does not exist")
        head = ""
        if target.exists():
            try:
                existing = open_canvas(target)
            except CanvasError:
                raise CanvasFileError(f"{source}: the file holds no canvas; not overwriting it") from None
            same_run = existing.canvas.to_document() == new.to_document()
            if same_run and _same_layout(existing.document, document):
                return False
            # The owner's read-only mark counts even for root, who may write anything.
            if not os.access(target, os.W_OK) or not target.stat().st_mode & stat.S_IWUSR:
                raise CanvasFileError(f"{source}: the file is read-only")
            head = _leading_comments(documents.read_text(target, source=source))
        text = _dump(document, format_of(path))
        if format_of(path) == "yaml":
            text = head + text
        _write_atomically(target, text)
    except OSError as error:
        raise CanvasFileError(f"{source}: cannot write the file: {error.strerror or error}") from None
    return True


def _check_name(path: Path) -> None:
    if "\0" in str(path):
        raise CanvasFileError("a file name cannot hold a NUL character")
    if path.suffix.lower() not in CANVAS_SUFFIXES:
        raise CanvasFileError(f"{path}: a canvas file ends in .yaml, .yml or .json")


def _from_text(text: str, format: Format, *, source: str, path: Path | None) -> OpenedCanvas:
    try:
        parse = documents.parse_json if format == "json" else documents.parse_yaml
        document = parse(text, source=source)
    except documents.DocumentError as error:
        problem = str(error).removeprefix(f"{source}: ")
        raise CanvasError([CanvasIssue("", "", problem)], source=source) from None
    canvas = parse_canvas(document, source=source)
    return OpenedCanvas(path or Path(), format, _editor_document(document, canvas), canvas)


def _editor_document(document: Mapping[str, Any], canvas: Canvas) -> dict[str, Any]:
    """The document with SuperPlane's other spellings of a node's component made plain strings
    (``component: {name: x}``, ``trigger: {name: x}``): the editor reads one spelling."""
    result = dict(document)
    spec = dict(document["spec"])
    nodes = []
    for raw, node in zip(spec.get("nodes") or [], canvas.spec.nodes, strict=True):
        plain = {key: value for key, value in raw.items() if key != "trigger"}
        plain["component"] = node.component
        plain["type"] = node.type.value
        nodes.append(plain)
    spec["nodes"] = nodes
    spec["edges"] = list(spec.get("edges") or [])
    result["spec"] = spec
    return result


def _same_layout(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    # Positions are part of the file (a moved node is a change), though not of the canvas's run.
    def positions(document: Mapping[str, Any]) -> list[Any]:
        return [node.get("position") for node in document["spec"].get("nodes") or []]

    return positions(old) == positions(new)


def _leading_comments(text: str) -> str:
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        lines.append(line)
    return "".join(lines)


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Block scalars for multi-line strings (scripts stay readable), keys in the document's order."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value and not any(line != line.rstrip() for line in value.splitlines()) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump(document: Mapping[str, Any], format: Format) -> str:
    if format == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return yaml.dump(dict(document), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)


def _write_atomically(path: Path, text: str) -> None:
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
