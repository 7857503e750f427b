"""daytona.downloadFile: read a file of a sandbox into the payload, bounded in size."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Annotated, ClassVar, Literal

from daytonaflow.component import DEFAULT_CHANNEL
from daytonaflow.components._component import DaytonaComponent
from daytonaflow.components._config import ComponentConfig, SandboxRef, Spec
from daytonaflow.components._fields import Option
from daytonaflow.components._payloads import FileDownloadedPayload
from daytonaflow.components._sandbox_env import in_sandbox
from daytonaflow.components._step import Outcome, Step
from daytonaflow.errors import ComponentError

DEFAULT_MAX_BYTES = 1024 * 1024
MAX_MAX_BYTES = 16 * 1024 * 1024
#: The content as JSON (how the run database stores it) may take at most this many times maxBytes:
#: base64 takes 4/3, text 1 to 3 (non-ASCII is stored as \uXXXX), control characters 6 each.
SERIALIZED_FACTOR = 2
#: Characters that make valid UTF-8 a binary file for ``auto`` (all but tab, newline and CR).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

DOCS = """
Reads a file of an existing Daytona sandbox into the payload.

## Use cases

- **Results**: read back what a command wrote (a report, a JSON result, a coverage summary)
- **Artifacts**: pass a small binary file on to later nodes, as base64
- **Checks**: compare a file's `sha256` with an expected value in an `if` node

## Configuration

- **Sandbox**: the ID or name of the sandbox to read from
- **Path**: the file's path; a relative path is under the sandbox user's home (`/home/daytona`)
- **Max Bytes**: the largest file read (default 1 MiB, at most 16 MiB)
- **Encoding**: how the payload holds the content: `auto` (text when the file is valid UTF-8
  with no control characters but tab, newline and carriage return, and fits the payload bound
  below as text; base64 otherwise; the default), `text` (the file must be valid UTF-8) or `base64`

## Output

Emits `daytona.file.downloaded` on the default channel:

- `sandboxId`: the sandbox the file was read from
- `path`: the absolute path read
- `size`: the file's size in bytes
- `sha256`: the SHA-256 (hex) of the bytes read
- `encoding`: `text` or `base64`, how `content` holds them
- `content`: the whole file

## Notes

- A file larger than Max Bytes fails the node with its path, its size and the limit; nothing of
  it is put in a payload. The size is asked first, and the read stops at the limit even when the
  file grew in between, so a large file is never read into memory.
- The content as stored (JSON) is bounded too, to twice Max Bytes: text of many control or
  non-ASCII characters takes up to six bytes per byte there. `auto` then gives base64; `text`
  fails the node naming the path and the limit.
- A directory is not a file: use listFiles.
"""


class DownloadFileConfig(ComponentConfig):
    sandbox: SandboxRef
    path: Annotated[
        str,
        Spec("Path", "The file to read; a relative path is under /home/daytona.", placeholder="result.json"),
    ]
    max_bytes: Annotated[
        int,
        Spec(
            "Max Bytes",
            "The largest file read; a larger one fails the node.",
            minimum=1,
            maximum=MAX_MAX_BYTES,
        ),
    ] = DEFAULT_MAX_BYTES
    encoding: Annotated[
        Literal["auto", "text", "base64"],
        Spec(
            "Encoding",
            "How the payload holds the content: auto (text when valid UTF-8 without control characters, "
            "else base64), text or base64.",
            options=(Option("auto", "Auto"), Option("text", "Text"), Option("base64", "Base64")),
        ),
    ] = "auto"


class DownloadFile(DaytonaComponent[DownloadFileConfig]):
    name: ClassVar[str] = "daytona.downloadFile"
    label: ClassVar[str] = "Download File"
    description: ClassVar[str] = (
        "Read a file of a sandbox (bounded) into the payload, with its size and sha256."
    )
    icon: ClassVar[str] = "download"
    channels = (DEFAULT_CHANNEL,)
    payload_type = FileDownloadedPayload
    config_model = DownloadFileConfig
    docs = DOCS

    async def run(self, step: Step, config: DownloadFileConfig) -> Outcome:
        node = step.ctx.node_id
        path = in_sandbox(config.path)
        info = await step.client.file_info(config.sandbox, path)
        if info.is_dir:
            raise ComponentError(f'node "{node}": {path} is a directory, not a file (list it with listFiles)')
        if info.size > config.max_bytes:
            raise ComponentError(_too_large(node, path, f"{info.size} bytes", config.max_bytes))
        data = await step.client.download_file(config.sandbox, path, max_bytes=config.max_bytes)
        if len(data) > config.max_bytes:
            # It grew after its size was asked: the read stopped at the limit.
            raise ComponentError(
                _too_large(node, path, f"more than {config.max_bytes} bytes", config.max_bytes)
            )
        encoding, content = _encoded(data, config.encoding, node, path, SERIALIZED_FACTOR * config.max_bytes)
        payload = FileDownloadedPayload(
            sandbox_id=config.sandbox,
            path=path,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            encoding=encoding,
            content=content,
        )
        return Outcome(DEFAULT_CHANNEL.name, payload)


def _too_large(node: str, path: str, size: str, limit: int) -> str:
    return f'node "{node}": {path} is {size}, over the maxBytes limit of {limit} bytes (nothing is emitted)'


def _encoded(data: bytes, wanted: str, node: str, path: str, limit: int) -> tuple[str, str]:
    """The payload's encoding and content. Text's JSON form must fit in ``limit`` bytes; base64
    needs no check (4/3 of the bytes, and JSON adds nothing to it but its quotes)."""
    if wanted != "base64":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            if wanted == "text":
                raise ComponentError(
                    f'node "{node}": {path} is not valid UTF-8 text ({error.reason} at byte {error.start});'
                    ' use encoding "base64" or "auto"'
                ) from None
        else:
            if wanted == "text" or not _CONTROL.search(text):
                stored = _json_size(text)
                if stored <= limit:
                    return "text", text
                if wanted == "text":
                    raise ComponentError(
                        f'node "{node}": {path} as text takes {stored} bytes of JSON, over the limit of '
                        f'{limit} bytes (twice maxBytes); use encoding "base64" or "auto"'
                    )
    return "base64", base64.b64encode(data).decode("ascii")


def _json_size(text: str) -> int:
    """The length of ``json.dumps(text)``, measured a slice at a time (a whole 16 MiB at once
    could build 96 MiB just to be measured)."""
    step = 64 * 1024
    return 2 + sum(len(json.dumps(text[start : start + step])) - 2 for start in range(0, len(text), step))
