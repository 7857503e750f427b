"""daytona.uploadFile: write a file into a sandbox, from text or base64 content."""

from __future__ import annotations

import base64
import binascii
import hashlib
import posixpath
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from daytonaflow.component import DEFAULT_CHANNEL
from daytonaflow.components._component import DaytonaComponent
from daytonaflow.components._config import ComponentConfig, SandboxRef, Spec
from daytonaflow.components._fields import Option
from daytonaflow.components._payloads import FileUploadedPayload
from daytonaflow.components._sandbox_env import HOME, in_sandbox
from daytonaflow.components._step import Outcome, Step
from daytonaflow.errors import ConfigIssue
from daytonaflow.expressions import contains_template

DOCS = """
Writes a file into an existing Daytona sandbox.

## Use cases

- **Inputs for a run**: write a configuration file, a data set or a script before executeCommand
- **Reports**: save what earlier nodes produced (a test report, a summary) into the sandbox
- **Binary files**: write bytes given as base64 (an image, an archive)

## Configuration

- **Sandbox**: the ID or name of the sandbox to write into
- **Path**: the file's path; a relative path is under the sandbox user's home (`/home/daytona`)
- **Content**: what to write; expressions are resolved first (`{{ $["http"].data.body }}`)
- **Encoding**: `text` (written as UTF-8) or `base64` (decoded to bytes first; whitespace in it is
  ignored)
- **Mode**: optional permissions in octal, e.g. `0644` or `0755`
- **Create Directories**: create the missing parent directories first (default true)

## Output

Emits `daytona.file.uploaded` on the default channel:

- `sandboxId`: the sandbox the file was written into
- `path`: the absolute path written
- `size`: the number of bytes written
- `sha256`: the SHA-256 (hex) of the bytes written, to compare with `sha256sum` in the sandbox
- `mode`: the permissions set, when a mode was configured

## Notes

- An existing file is overwritten; a re-run writes the same bytes again.
- Content that is not valid base64 (with encoding `base64`) fails the node naming the field; nothing
  is written.
"""

_MODE_PATTERN = r"^0?[0-7]{3}$|^[0-7]{4}$"


class UploadFileConfig(ComponentConfig):
    sandbox: SandboxRef
    path: Annotated[
        str,
        Spec(
            "Path",
            "Where to write the file; a relative path is under /home/daytona.",
            placeholder="reports/summary.md",
        ),
    ]
    content: Annotated[
        str, Spec("Content", "What to write (text, or base64 with encoding base64).", kind="text")
    ] = ""
    encoding: Annotated[
        Literal["text", "base64"],
        Spec(
            "Encoding",
            "How the content is given: text (written as UTF-8) or base64 (decoded to bytes).",
            options=(Option("text", "Text"), Option("base64", "Base64")),
        ),
    ] = "text"
    mode: Annotated[
        str | None,
        Spec(
            "Mode",
            "Permissions of the file in octal (e.g. 0644); the server's default when empty.",
            placeholder="0644",
            pattern=_MODE_PATTERN,
            pattern_rule="be an octal permission such as 0644 or 755",
        ),
    ] = None
    create_directories: Annotated[
        bool, Spec("Create Directories", "Create missing parent directories before writing.")
    ] = True


class UploadFile(DaytonaComponent[UploadFileConfig]):
    name: ClassVar[str] = "daytona.uploadFile"
    label: ClassVar[str] = "Upload File"
    description: ClassVar[str] = "Write a file (text or base64 content) into a sandbox."
    icon: ClassVar[str] = "upload"
    channels = (DEFAULT_CHANNEL,)
    payload_type = FileUploadedPayload
    config_model = UploadFileConfig
    docs = DOCS

    @classmethod
    def extra_rules(cls, config: Mapping[str, Any], *, allow_expressions: bool) -> list[ConfigIssue]:
        # Checked on the resolved content before every run, and already when the canvas is checked
        # if the content is no expression: invalid base64 never reaches the sandbox.
        content, encoding = config.get("content"), config.get("encoding")
        if encoding != "base64" or not isinstance(content, str):
            return []
        if allow_expressions and contains_template(content):
            return []
        issue = _base64_issue(content)
        return [] if issue is None else [issue]

    async def run(self, step: Step, config: UploadFileConfig) -> Outcome:
        data = _content_bytes(config)
        path = in_sandbox(config.path)
        parent = posixpath.dirname(path)
        if config.create_directories and parent not in ("/", HOME):
            await step.client.create_folder(config.sandbox, parent)
        await step.client.upload_file(config.sandbox, path, data)
        if config.mode:
            await step.client.set_permissions(config.sandbox, path, config.mode)
        payload = FileUploadedPayload(
            sandbox_id=config.sandbox,
            path=path,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            mode=config.mode,
        )
        return Outcome(DEFAULT_CHANNEL.name, payload)


def _content_bytes(config: UploadFileConfig) -> bytes:
    if config.encoding == "text":
        return config.content.encode()
    # Valid: extra_rules checked the resolved content before the run (parse_config).
    return base64.b64decode("".join(config.content.split()), validate=True)


def _base64_issue(content: str) -> ConfigIssue | None:
    try:
        base64.b64decode("".join(content.split()), validate=True)
    except (binascii.Error, ValueError) as error:
        return ConfigIssue("content", f'is not valid base64 (encoding is "base64"): {error}')
    return None
