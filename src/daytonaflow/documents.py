"""JSON and YAML documents from files and strings a user hands in, within bounded size and depth.

Every entry point that reads such a document (a canvas, the run input, an input file, the secrets
file, an expression context file) goes through here, so one set of limits holds everywhere:

* a file is read through a bounded read, at most :data:`MAX_DOCUMENT_BYTES` plus one byte
  whatever it is (a regular file, a pipe, ``/dev/zero``);
* the text must be UTF-8 and hold no lone surrogate (a ``\\ud800`` escape, or bytes that were
  not UTF-8 in a command-line argument);
* nesting is checked before the parser recurses: at most :data:`MAX_DEPTH` levels of objects and
  arrays, a depth the run store, pydantic and ``copy.deepcopy`` all handle with room to spare;
* a YAML document may use aliases, but what they expand to counts: at most
  :data:`MAX_YAML_NODES` nodes, and no alias inside the node it names ("billion laughs" and
  recursive documents are refused before anything is built).

Errors are :class:`DocumentError`, whose message starts with the document's name.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from daytonaflow.errors import DaytonaflowError

MIB = 1 << 20
#: The largest document read from a file or a string, in bytes.
MAX_DOCUMENT_BYTES = 16 * MIB
#: The deepest nesting of objects and arrays a document may have (a scalar alone is depth 0).
MAX_DEPTH = 100
#: The deepest payload a node may emit: room for a document of :data:`MAX_DEPTH` inside it (an
#: HTTP response's JSON body), still well under pydantic's serialization limit (about 255).
MAX_PAYLOAD_DEPTH = 2 * MAX_DEPTH
#: The most nodes a YAML document may hold once its aliases are expanded.
MAX_YAML_NODES = 1_000_000

_READ_CHUNK = 1 << 16
# A JSON string, escapes included, in the unrolled form that runs in linear time.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_JSON_BRACKETS = re.compile(r"[\[\]{}]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# libyaml's loader when PyYAML was built with it (many times faster), else the pure-Python one;
# both safe. The depth check runs first, so neither composer can recurse too deeply.
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DocumentError(DaytonaflowError):
    """A document cannot be read or parsed within the limits; the message names the document."""


def read_text(
    path: str | os.PathLike[str], *, source: str | None = None, limit: int = MAX_DOCUMENT_BYTES
) -> str:
    """The UTF-8 text of the file at ``path``, never reading more than ``limit`` + 1 bytes.

    ``source`` names the file in errors (default: the path). Missing files raise
    :class:`FileNotFoundError` so callers that treat them as empty can; other failures raise
    :class:`DocumentError`.
    """
    name = source or str(path)
    data = _read_bounded(Path(path), name, limit)
    return decode_text(data, source=name)


def decode_text(data: bytes, *, source: str) -> str:
    """``data`` as UTF-8 text, or a :class:`DocumentError` saying where it is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DocumentError(
            f"{source}: not UTF-8 text (invalid byte 0x{data[error.start]:02x} at offset {error.start})"
        ) from None


def check_text(text: str, *, source: str, limit: int = MAX_DOCUMENT_BYTES) -> None:
    """Refuse text that is too long or holds a lone surrogate (which no encoder can write)."""
    # A character is at most 4 bytes of UTF-8: count the bytes only when the length leaves doubt.
    if len(text) > limit or (len(text) * 4 > limit and len(text.encode("utf-8", "surrogatepass")) > limit):
        raise DocumentError(f"{source}: larger than the limit of {_size(limit)}")
    surrogate = _SURROGATE.search(text)
    if surrogate is not None:
        raise DocumentError(
            f"{source}: not valid UTF-8 text (a lone surrogate at character {surrogate.start()})"
        )


def parse_json(text: str, *, source: str, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value in ``text``, its size, text and nesting checked before the parser recurses."""
    check_text(text, source=source)
    _check_json_depth(text, source, max_depth)
    try:
        value = json.loads(text)
    except ValueError as error:
        raise DocumentError(f"{source}: not valid JSON: {error}") from None
    check_value(value, source=source, max_depth=max_depth)
    return value


def parse_yaml(text: str, *, source: str, max_depth: int = MAX_DEPTH) -> Any:
    """The YAML (or JSON) value in ``text``; depth and alias expansion are checked first."""
    check_text(text, source=source)
    try:
        _check_yaml_events(yaml.parse(text, Loader=_YAML_LOADER), source, max_depth)
        value = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as error:
        _name_marks(error, source)
        raise DocumentError(f"{source}: not valid YAML: {error}") from None
    check_value(value, source=source, max_depth=max_depth)
    return value


def _name_marks(error: yaml.YAMLError, source: str) -> None:
    """Make the error's marks say the document's name, not the parser's ``"<unicode string>"``
    (the text was handed over as a string, so the parser never knew the file)."""
    for attribute in ("context_mark", "problem_mark"):
        mark = getattr(error, attribute, None)
        if mark is not None:
            # libyaml's marks are read-only: an equal pure-Python mark takes the place of each.
            named = yaml.error.Mark(source, mark.index, mark.line, mark.column, None, 0)
            setattr(error, attribute, named)


def load_json_file(path: str | os.PathLike[str], *, source: str | None = None) -> Any:
    """The JSON value in the file at ``path`` (see :func:`read_text` and :func:`parse_json`)."""
    name = source or str(path)
    return parse_json(read_text(path, source=name), source=name)


def check_value(value: Any, *, source: str, max_depth: int = MAX_DEPTH) -> None:
    """Refuse a parsed value nested deeper than ``max_depth`` or holding a lone surrogate.

    Iterative, so it is safe on any value a parser could build.
    """
    for item, depth in _walk(value):
        if depth > max_depth:
            raise DocumentError(f"{source}: nested deeper than the limit of {max_depth} levels")
        if isinstance(item, str) and _SURROGATE.search(item):
            raise DocumentError(f"{source}: a string is not valid UTF-8 text (it holds a lone surrogate)")


def nesting_depth(value: Any, *, stop_above: int | None = None) -> int:
    """How deeply objects and arrays nest in ``value`` (0 for a scalar); iterative.

    With ``stop_above``, the walk ends as soon as the depth exceeds it.
    """
    deepest = 0
    for _, depth in _walk(value):
        deepest = max(deepest, depth)
        if stop_above is not None and deepest > stop_above:
            break
    return deepest


def _walk(value: Any) -> Iterator[tuple[Any, int]]:
    """Every value and key in ``value`` with the depth of the container holding it."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            yield item, depth + 1
            for key, child in item.items():
                yield key, depth + 1
                pending.append((child, depth + 1))
        elif isinstance(item, list | tuple):
            yield item, depth + 1
            pending.extend((child, depth + 1) for child in item)
        else:
            yield item, depth


def _read_bounded(path: Path, name: str, limit: int) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except OSError as error:
        raise DocumentError(f"{name}: cannot read the file: {error.strerror}") from None
    info = os.fstat(fd)
    if stat.S_ISDIR(info.st_mode):
        os.close(fd)
        raise DocumentError(f"{name}: is a directory, not a file")
    with os.fdopen(fd, "rb", buffering=0) as handle:
        if stat.S_ISREG(info.st_mode) and info.st_size > limit:
            raise DocumentError(f"{name}: the file is larger than the limit of {_size(limit)}")
        # Pipes and devices have no size to check first: read one byte past the limit, no more.
        chunks: list[bytes] = []
        total = 0
        try:
            while total <= limit:
                chunk = handle.read(min(_READ_CHUNK, limit + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
        except OSError as error:
            raise DocumentError(f"{name}: cannot read the file: {error.strerror}") from None
    if total > limit:
        raise DocumentError(f"{name}: larger than the limit of {_size(limit)}")
    return b"".join(chunks)


def _check_json_depth(text: str, source: str, max_depth: int) -> None:
    """Count bracket nesting outside strings, stopping at the first level past the limit."""
    depth = 0
    for match in _JSON_BRACKETS.finditer(_JSON_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            if depth > max_depth:
                raise DocumentError(f"{source}: nested deeper than the limit of {max_depth} levels")
        else:
            depth -= 1


def _check_yaml_events(events: Iterator[yaml.Event], source: str, max_depth: int) -> None:
    """Walk the parser's events (no recursion, nothing built) tracking depth and alias expansion.

    Each open collection keeps ``[anchor, nodes, height]``; an anchor closed records what it
    expands to, so an alias adds its whole size and height where it is used.
    """
    anchors: dict[str, tuple[int, int]] = {}
    stack: list[list[Any]] = []
    total = 0

    def count(nodes: int, height: int) -> None:
        nonlocal total
        total += nodes
        if total > MAX_YAML_NODES:
            raise DocumentError(
                f"{source}: expands to more than {MAX_YAML_NODES} nodes"
                " (an alias counts the whole node it names, each time it is used)"
            )
        if len(stack) + height > max_depth:
            raise DocumentError(f"{source}: nested deeper than the limit of {max_depth} levels")

    def close(nodes: int, height: int) -> None:
        if stack:
            stack[-1][1] += nodes
            stack[-1][2] = max(stack[-1][2], height)

    for event in events:
        if isinstance(event, yaml.ScalarEvent):
            count(1, 0)
            close(1, 0)
            if event.anchor:
                anchors[event.anchor] = (1, 0)
        elif isinstance(event, yaml.CollectionStartEvent):
            count(1, 1)
            stack.append([event.anchor, 1, 0])
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, nodes, height = stack.pop()
            if anchor:
                anchors[anchor] = (nodes, height + 1)
            close(nodes, height + 1)
        elif isinstance(event, yaml.AliasEvent):
            named = anchors.get(event.anchor or "")
            if named is None:
                if any(frame[0] == event.anchor for frame in stack):
                    raise DocumentError(f"{source}: the alias *{event.anchor} is inside the node it names")
                continue  # undefined: the composer reports it
            count(*named)
            close(*named)


def _size(limit: int) -> str:
    return f"{limit // MIB} MiB" if limit % MIB == 0 else f"{limit} bytes"
