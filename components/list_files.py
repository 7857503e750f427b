"""daytona.listFiles: the entries of a directory in a sandbox, bounded in number."""

from __future__ import annotations

import posixpath
from typing import Annotated, ClassVar

from daytonaflow.component import DEFAULT_CHANNEL
from daytonaflow.components._component import DaytonaComponent
from daytonaflow.components._config import ComponentConfig, SandboxRef, Spec
from daytonaflow.components._payloads import FileEntry, FilesListedPayload
from daytonaflow.components._sandbox_env import in_sandbox
from daytonaflow.components._step import Outcome, Step
from daytonaflow.components._wire import FileInfo

DEFAULT_MAX_ENTRIES = 1000
MAX_MAX_ENTRIES = 100_000

DOCS = """
Lists the files and directories in a directory of an existing Daytona sandbox.

## Use cases

- **Find results**: see which files a command produced before downloading them
- **Branching**: route on whether a file exists with an `if` node over `files`
- **Inspection**: report a directory's content in a notification

## Configuration

- **Sandbox**: the ID or name of the sandbox
- **Path**: the directory to list (default: the sandbox user's home, `/home/daytona`); a relative
  path is under the home
- **Max Entries**: the most entries put in the payload (default 1000)

## Output

Emits `daytona.files.listed` on the default channel:

- `sandboxId`: the sandbox listed
- `path`: the absolute path of the directory
- `files`: one entry per file or directory: `name`, `path` (absolute), `isDir`, `size` (bytes),
  `mode` (permissions in octal, e.g. `0644`) and `modifiedAt` (RFC 3339)
- `truncated`: whether the directory had more entries than Max Entries (then `files` holds the
  first Max Entries of them)

## Notes

- One level is listed; list a subdirectory with another listFiles node.
- The listing is read as it arrives and no further than Max Entries (code in a sandbox can make
  a directory of millions of files); a listing whose first entries take over 64 MiB fails the
  node saying so.
"""


class ListFilesConfig(ComponentConfig):
    sandbox: SandboxRef
    path: Annotated[
        str | None,
        Spec(
            "Path",
            "The directory to list; /home/daytona when empty, a relative path is under it.",
            placeholder="/home/daytona",
        ),
    ] = None
    max_entries: Annotated[
        int,
        Spec(
            "Max Entries",
            "The most entries put in the payload; more are cut and truncated is true.",
            minimum=1,
            maximum=MAX_MAX_ENTRIES,
        ),
    ] = DEFAULT_MAX_ENTRIES


class ListFiles(DaytonaComponent[ListFilesConfig]):
    name: ClassVar[str] = "daytona.listFiles"
    label: ClassVar[str] = "List Files"
    description: ClassVar[str] = "List the files and directories of a sandbox directory."
    icon: ClassVar[str] = "folder"
    channels = (DEFAULT_CHANNEL,)
    payload_type = FilesListedPayload
    config_model = ListFilesConfig
    docs = DOCS

    async def run(self, step: Step, config: ListFilesConfig) -> Outcome:
        path = in_sandbox(config.path)
        # One past the limit says whether there are more; the rest of the listing is never read.
        found = await step.client.list_files(config.sandbox, path, most=config.max_entries + 1)
        payload = FilesListedPayload(
            sandbox_id=config.sandbox,
            path=path,
            files=[_entry(path, info) for info in found[: config.max_entries]],
            truncated=len(found) > config.max_entries,
        )
        return Outcome(DEFAULT_CHANNEL.name, payload)


def _entry(directory: str, info: FileInfo) -> FileEntry:
    return FileEntry(
        name=info.name,
        # Daytona's FileInfo has no path: the entry is in the directory listed.
        path=info.path or posixpath.join(directory, info.name),
        is_dir=info.is_dir,
        size=info.size,
        mode=info.permissions or info.mode,
        modified_at=info.modified_at or info.mod_time,
    )
