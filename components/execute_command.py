"""daytona.executeCommand: run a shell command in an existing sandbox, or start a background process."""

from __future__ import annotations

import contextlib
import json
import shlex
from typing import ClassVar

from pydantic import Field as ModelField

from daytonaflow.component import FAILED_CHANNEL, SUCCESS_CHANNEL, ExecutionContext
from daytonaflow.components import outcome, sessions, timing
from daytonaflow.components.base import ComponentConfig
from daytonaflow.components.client import DaytonaClient
from daytonaflow.components.common_fields import SANDBOX, env_list, output_limit
from daytonaflow.components.config_parts import EnvVar
from daytonaflow.components.errors import DaytonaError
from daytonaflow.components.fields import Field, When
from daytonaflow.components.output import bound_output
from daytonaflow.components.payloads import CommandExecutionPayload
from daytonaflow.components.sandbox_env import bash, with_sandbox_env, with_timeout
from daytonaflow.components.session_component import SessionCommandComponent
from daytonaflow.components.sessions import StepResult, StepState
from daytonaflow.components.wire import SessionCommand

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
  as shell syntax. The sandbox env file (secrets injected as environment variables) is
  sourced first.
- A timed-out command is killed inside the sandbox (its whole process group).
- Values of secrets injected into the sandbox by createSandbox or createRepositorySandbox are
  masked (`[REDACTED]`) in the reported output.
- The command continues across an engine restart: the node resumes watching the same process.
  If the sandbox was found stopped instead (on the embedded backend its processes die with the
  runner process), the sandbox is started again and a command that had not been sent yet runs;
  one that had already started is not run a second time: the node fails, naming the command.
"""


class ExecuteCommandConfig(ComponentConfig):
    sandbox: str
    command: str
    cwd: str | None = None
    env: list[EnvVar] = ModelField(default_factory=list)
    timeout: int
    background: bool = False
    wait_for_port: int | None = ModelField(default=None, alias="waitForPort")
    max_output_bytes: int = ModelField(alias="maxOutputBytes")


def _excerpt(text: str, limit: int = 200) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters."""
    return json.dumps(text if len(text) <= limit else text[:limit] + "...")


def shell_script(config: ExecuteCommandConfig) -> str:
    """The script ``bash`` runs: sandbox env, quoted cwd and env, then the user's command verbatim."""
    lines = []
    if config.cwd:
        lines.append(f"cd -- {shlex.quote(config.cwd)} || exit 1")
    lines.extend(f"export {variable.name}={shlex.quote(variable.value)}" for variable in config.env)
    lines.append(config.command)
    return with_sandbox_env("\n".join(lines))


class ExecuteCommand(SessionCommandComponent[ExecuteCommandConfig]):
    name: ClassVar[str] = "daytona.executeCommand"
    label: ClassVar[str] = "Execute Command"
    description: ClassVar[str] = "Run a shell command in a Daytona sandbox, or start a background process."
    icon: ClassVar[str] = "terminal"
    payload_type = CommandExecutionPayload
    config_model = ExecuteCommandConfig
    docs = DOCS
    session_purpose = "command"
    fields = (
        SANDBOX,
        Field(
            "command",
            "text",
            "Command",
            "The shell command to run.",
            placeholder="pip install requests",
            required=True,
        ),
        Field(
            "cwd",
            "string",
            "Working Directory",
            "Directory to run the command in.",
            placeholder="/home/daytona",
        ),
        env_list("Name/value pairs exported before the command runs."),
        Field(
            "timeout",
            "number",
            "Timeout (seconds)",
            "Seconds before the command is killed; "
            "for a background command, how long to wait for it to start.",
            default=DEFAULT_TIMEOUT_SECONDS,
            minimum=1,
            maximum=86400,
        ),
        Field(
            "background",
            "boolean",
            "Run In Background",
            "Start a long-running process (a web server), return once it runs and leave it running.",
            default=False,
        ),
        Field(
            "waitForPort",
            "number",
            "Wait For Port",
            "With background: return only once this sandbox port accepts connections.",
            placeholder="3000",
            togglable=True,
            minimum=1,
            maximum=65535,
            visible_when=(When("background", (True,)),),
        ),
        output_limit(),
    )

    def sandbox_of(self, config: ExecuteCommandConfig) -> str:
        return config.sandbox

    def timeout_seconds(self, config: ExecuteCommandConfig) -> float | None:
        return float(config.timeout)

    async def prepare(self, client: DaytonaClient, config: ExecuteCommandConfig, step: StepState) -> str:
        command = bash(shell_script(config))
        # A background process outlives the node; its timeout only bounds the wait for it to start.
        return command if config.background else with_timeout(command, self.timeout_seconds(config))

    def new_step(self, ctx: ExecutionContext, config: ExecuteCommandConfig) -> StepState:
        step = super().new_step(ctx, config)
        if config.background:
            step.session = sessions.session_name(ctx.run_id, ctx.execution_id, "background")
        return step

    def describe(self, config: ExecuteCommandConfig) -> str:
        return f"command {_excerpt(config.command)}"

    def payload(self, config: ExecuteCommandConfig, result: StepResult) -> CommandExecutionPayload:
        output, truncated = bound_output(result.output, config.max_output_bytes)
        return CommandExecutionPayload(
            exit_code=result.exit_code,
            result=output,
            timeout=result.timed_out,
            truncated=True if truncated else None,
        )

    # --- background ---------------------------------------------------------------------------

    async def check(self, ctx: ExecutionContext) -> None:
        config = self.parse_config(ctx)
        if not config.background:
            await super().check(ctx)
            return
        if await self.replayed_background(ctx):
            return
        step = StepState.from_json(ctx.metadata.get()["step"])
        client = self.client(ctx)
        status = await self.restarting(ctx, config, step, lambda: self._background_status(ctx, config, step))
        if status.exit_code is not None:
            # It ended while it was meant to keep running: report how, like a foreground command.
            await self.finish(ctx, config, step, await self._result(client, step, status.exit_code, False))
            return
        if await self._is_ready(client, config, step):
            result = await self.masked(ctx, step, await self._result(client, step, None, False))
            output, truncated = bound_output(result.output, config.max_output_bytes)
            payload = CommandExecutionPayload(
                result=output,
                timeout=False,
                truncated=True if truncated else None,
                background=True,
                session_id=step.session,
                command_id=step.command_id,
                port=config.wait_for_port,
            )
            outcome.emit(ctx, SUCCESS_CHANNEL.name, payload)
            return
        if step.deadline is not None and timing.now() >= step.deadline:
            result = await self.masked(ctx, step, await self._result(client, step, None, True))
            payload = self.payload(config, result)
            outcome.record_emit(ctx, FAILED_CHANNEL.name, payload)
            await sessions.kill(client, step)
            ctx.emit(FAILED_CHANNEL.name, payload)
            return
        self._reschedule(ctx, step)

    async def _background_status(
        self, ctx: ExecutionContext, config: ExecuteCommandConfig, step: StepState
    ) -> SessionCommand:
        if step.command_id is None:
            await self._start(ctx, config, step)
        assert step.command_id is not None
        return await self.client(ctx).get_session_command(step.sandbox, step.session, step.command_id)

    async def replayed_background(self, ctx: ExecutionContext) -> bool:
        """A background start that already ended is emitted again (its process is left alone:
        a success keeps it running, and a failure already stopped it)."""
        record = outcome.recorded(ctx)
        if record is None:
            return False
        if record.get("channel") == FAILED_CHANNEL.name:
            with contextlib.suppress(DaytonaError):
                await sessions.kill(self.client(ctx), StepState.from_json(ctx.metadata.get()["step"]))
        outcome.replay(ctx, record, self.payload_type)
        return True

    async def _is_ready(self, client: DaytonaClient, config: ExecuteCommandConfig, step: StepState) -> bool:
        if config.wait_for_port is None:
            return timing.now() >= step.started_at + BACKGROUND_SETTLE_SECONDS
        probe = bash(f"exec 3<>/dev/tcp/127.0.0.1/{config.wait_for_port}")
        answer = await client.execute(
            step.sandbox, probe + " 2>/dev/null", timeout_seconds=PORT_PROBE_TIMEOUT_SECONDS, idempotent=True
        )
        return answer.exit_code == 0

    @staticmethod
    async def _result(
        client: DaytonaClient, step: StepState, exit_code: int | None, timed_out: bool
    ) -> StepResult:
        assert step.command_id is not None
        logs = await client.get_session_command_logs(step.sandbox, step.session, step.command_id)
        return StepResult(exit_code, logs.output or (logs.stdout + logs.stderr), timed_out)
