"""daytona.executeCommand: run a shell command in an existing sandbox, or start a background process."""

from __future__ import annotations

import json
import shlex
from typing import Annotated, ClassVar

from pydantic import Field as ModelField

from daytonaflow.component import FAILED_CHANNEL, SUCCESS_CHANNEL
from daytonaflow.components import _timing
from daytonaflow.components._component import DaytonaComponent
from daytonaflow.components._config import (
    DEFAULT_OUTPUT_LIMIT_BYTES,
    ComponentConfig,
    EnvVar,
    OutputLimit,
    SandboxRef,
    Spec,
)
from daytonaflow.components._fields import When
from daytonaflow.components._payloads import CommandExecutionPayload
from daytonaflow.components._sandbox_env import bash, with_sandbox_env, with_timeout
from daytonaflow.components._step import Command, CommandResult, Outcome, Step

DEFAULT_TIMEOUT_SECONDS = 60
#: A background process that is still alive this long after its start counts as running.
BACKGROUND_SETTLE_SECONDS = 0.5
PORT_PROBE_TIMEOUT_SECONDS = 5

DOCS = """
Runs a shell command in an existing Daytona sandbox.

## Use cases

- **Package installation**: install dependencies (`pip install`, `npm install`)
- **File operations**: create, move or delete files in the sandbox
- **System commands**: run any shell command in the isolated environment
- **Build processes**: run build scripts or compilers
- **Web servers**: start a long-running process in the background and wait until its port
  answers, then hand the sandbox to getPreviewUrl

## Configuration

- **Sandbox**: the sandbox ID (from createSandbox), e.g. `{{ $["daytona.createSandbox"].data.id }}`
- **Command**: the shell command (run by `bash`)
- **Working Directory**: optional directory to run in
- **Environment Variables**: optional name/value pairs exported before the command
- **Timeout**: seconds before the command is killed (default 60); for a background command,
  how long to wait for it to start (and for its port)
- **Run In Background**: start the command, return once it runs, leave it running
- **Wait For Port**: with background, return only once this port accepts connections
- **Output Limit**: largest output kept in the payload (default 1 MiB)

## Output

Routes to one of two channels with `daytona.command.response`:

- `success`: the exit code is 0 (or the background process runs, and its port answers)
- `failed`: the exit code is non-zero, or the command timed out

The payload includes `exitCode`, `timeout` (whether the command timed out and was killed; its
partial output is kept), `result` (the command's output, bounded) and, for a background start,
`background`, `sessionId`, `commandId` and `port` (no `exitCode` while it runs).

## Notes

- Create the sandbox first with createSandbox.
- The working directory and environment values are shell-quoted: they are never interpreted
  as shell syntax. Only a leading `~`, `$HOME` or `${HOME}` in the working directory (alone or
  followed by `/`) is expanded to the sandbox user's home (`~/app`, `$HOME/app`); `~user` is not
  expanded, and the rest of the path is always taken literally. The sandbox env file (secrets
  injected as environment variables) is sourced first.
- A timed-out command is killed inside the sandbox (its whole process group).
- The node follows the output through the toolbox's log stream, so it learns of the exit within
  milliseconds and the CLI shows the output as it comes (secret values masked); a server without
  the stream is polled instead, first after a few milliseconds.
- Values of secrets injected into the sandbox by createSandbox or createRepositorySandbox are
  masked (`[REDACTED]`) in the reported output.
- The command continues across an engine restart: the node resumes watching the same process.
  If the sandbox was found stopped instead (on the embedded backend its processes die with the
  runner process), the sandbox is started again and a command that had not been sent yet runs;
  one that had already started is not run a second time: the node fails, naming the command.
"""


class ExecuteCommandConfig(ComponentConfig):
    sandbox: SandboxRef
    command: Annotated[
        str, Spec("Command", "The shell command to run.", kind="text", placeholder="pip install requests")
    ]
    cwd: Annotated[
        str | None, Spec("Working Directory", "Directory to run the command in.", placeholder="/home/daytona")
    ] = None
    env: Annotated[
        list[EnvVar],
        Spec(
            "Environment Variables",
            "Name/value pairs exported before the command runs.",
            item=("variable", "Variable"),
        ),
    ] = ModelField(default_factory=list)
    timeout: Annotated[
        int,
        Spec(
            "Timeout (seconds)",
            "Seconds before the command is killed; "
            "for a background command, how long to wait for it to start.",
            minimum=1,
            maximum=86400,
        ),
    ] = DEFAULT_TIMEOUT_SECONDS
    background: Annotated[
        bool,
        Spec(
            "Run In Background",
            "Start a long-running process (a web server), return once it runs and leave it running.",
        ),
    ] = False
    wait_for_port: Annotated[
        int | None,
        Spec(
            "Wait For Port",
            "With background: return only once this sandbox port accepts connections.",
            placeholder="3000",
            togglable=True,
            minimum=1,
            maximum=65535,
            visible_when=(When("background", (True,)),),
        ),
    ] = None
    max_output_bytes: OutputLimit = DEFAULT_OUTPUT_LIMIT_BYTES


def _excerpt(text: str, limit: int = 200) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters."""
    return json.dumps(text if len(text) <= limit else text[:limit] + "...")


#: How a working directory may name the sandbox user's home; only these are expanded.
_HOME_PREFIXES = ("~", "$HOME", "${HOME}")


def cd_target(cwd: str) -> str:
    """``cwd`` as a shell word: a leading ``~``, ``$HOME`` or ``${HOME}`` (alone or before a ``/``)
    becomes ``"$HOME"``, and the rest is quoted, never interpreted (spaces, quotes, ``$(...)``
    stay literal). ``~user`` is not expanded: it names a directory literally called so."""
    for prefix in _HOME_PREFIXES:
        if cwd == prefix:
            return '"$HOME"'
        if cwd.startswith(prefix + "/"):
            return '"$HOME"' + shlex.quote(cwd[len(prefix) :])
    return shlex.quote(cwd)


def shell_script(config: ExecuteCommandConfig) -> str:
    """The script ``bash`` runs: sandbox env, quoted cwd and env, then the user's command verbatim."""
    lines = []
    if config.cwd:
        lines.append(f"cd -- {cd_target(config.cwd)} || exit 1")
    lines.extend(f"export {variable.name}={shlex.quote(variable.value)}" for variable in config.env)
    lines.append(config.command)
    return with_sandbox_env("\n".join(lines))


class ExecuteCommand(DaytonaComponent[ExecuteCommandConfig]):
    name: ClassVar[str] = "daytona.executeCommand"
    label: ClassVar[str] = "Execute Command"
    description: ClassVar[str] = "Run a shell command in a Daytona sandbox, or start a background process."
    icon: ClassVar[str] = "terminal"
    channels = (SUCCESS_CHANNEL, FAILED_CHANNEL)
    payload_type = CommandExecutionPayload
    config_model = ExecuteCommandConfig
    docs = DOCS

    async def run(self, step: Step, config: ExecuteCommandConfig) -> Outcome:
        script = bash(shell_script(config))

        async def build() -> str:
            # A background process outlives the node; its timeout only bounds the wait for it to start.
            return script if config.background else with_timeout(script, config.timeout)

        command = Command(
            "command",
            config.sandbox,
            "background" if config.background else "command",
            build,
            float(config.timeout),
            config.max_output_bytes,
            f"command {_excerpt(config.command)}",
            background=config.background,
        )
        if not config.background:
            return _outcome(await step.run_command(command), config.timeout)

        async def ready() -> bool:
            if config.wait_for_port is None:
                started_at = float(step.get(command.key)["startedAt"])
                return _timing.now() >= started_at + BACKGROUND_SETTLE_SECONDS
            probe = bash(f"exec 3<>/dev/tcp/127.0.0.1/{config.wait_for_port}")
            answer = await step.client.execute(
                config.sandbox,
                probe + " 2>/dev/null",
                timeout_seconds=PORT_PROBE_TIMEOUT_SECONDS,
                idempotent=True,
            )
            return bool(answer.exit_code == 0)

        result = await step.run_command(command, ready)
        if result.exit_code is not None or result.timed_out:
            # It ended (or never became ready) while it was meant to keep running: report how.
            await step.end_command(command)
            return _outcome(result, config.timeout)
        state = step.get(command.key)
        output, truncated = result.output.bounded()
        payload = CommandExecutionPayload(
            result=output,
            timeout=False,
            truncated=True if truncated else None,
            background=True,
            session_id=state["session"],
            command_id=state["commandId"],
            port=config.wait_for_port,
        )
        return Outcome(SUCCESS_CHANNEL.name, payload)


def _outcome(result: CommandResult, timeout_seconds: int) -> Outcome:
    output, truncated = result.output.bounded()
    payload = CommandExecutionPayload(
        exit_code=result.exit_code,
        result=output,
        timeout=result.timed_out,
        truncated=True if truncated else None,
    ).held_to(f"{timeout_seconds} s")
    if result.succeeded:
        return Outcome(SUCCESS_CHANNEL.name, payload)
    return Outcome(FAILED_CHANNEL.name, payload, succeeded=False)
