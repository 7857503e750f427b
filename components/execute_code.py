"""daytona.executeCode: run Python, TypeScript or JavaScript code in an existing sandbox."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from daytonaflow.component import FAILED_CHANNEL, SUCCESS_CHANNEL
from daytonaflow.components._component import DaytonaComponent
from daytonaflow.components._config import (
    DEFAULT_OUTPUT_LIMIT_BYTES,
    ComponentConfig,
    OutputLimit,
    SandboxRef,
    Spec,
)
from daytonaflow.components._fields import Option
from daytonaflow.components._payloads import CodeExecutionPayload
from daytonaflow.components._sandbox_env import bash, with_sandbox_env, with_timeout
from daytonaflow.components._step import Command, Outcome, Step, session_name
from daytonaflow.errors import ConfigIssue

LANGUAGES = (
    Option("python", "Python"),
    Option("typescript", "TypeScript"),
    Option("javascript", "JavaScript"),
)
_EXTENSIONS = {"python": "py", "typescript": "ts", "javascript": "js"}

DOCS = """
Runs code in an existing Daytona sandbox.

## Use cases

- **AI code execution**: run AI-generated code safely
- **Code testing**: execute untrusted code in isolation
- **Script automation**: run Python, TypeScript or JavaScript scripts
- **Data processing**: execute data transformation scripts

## Configuration

- **Sandbox**: the sandbox ID (from createSandbox), e.g. `{{ $["daytona.createSandbox"].data.id }}`
- **Code**: the code to run (supports expressions)
- **Language**: `python`, `typescript` or `javascript`
- **Timeout**: optional limit in milliseconds (as in SuperPlane's spec); a run that exceeds it is
  killed inside the sandbox and fails with `timed out after N ms`. A value under 1000 gets a
  validation warning (seconds were likely meant); the canvas still runs
- **Output Limit**: largest output kept in the payload (default 1 MiB)

## Output

Routes to `success` (exit code 0) or `failed` (non-zero exit code, or timed out) with
`daytona.execute.response`:

- `exitCode`: the process exit code (0 for success)
- `result`: what the code printed (stdout and stderr, bounded)
- `timeout`: present and `true` when the run was killed at its timeout (partial output kept)
- `truncated`: present and `true` when output was cut

## Notes

- Create the sandbox first with createSandbox.
- The code runs in a session of the sandbox with the sandbox env file sourced, so secrets
  injected as environment variables are visible. Python runs with `python3`, JavaScript with
  `node`, TypeScript with `ts-node`, `tsx` or Node's type stripping, whichever the sandbox has.
- The run continues across an engine restart: the node resumes watching the same process.
  If the sandbox was found stopped instead (on the embedded backend its processes die with the
  runner process), the sandbox is started again and code that had not been started yet runs;
  code that had already started is not run a second time: the node fails, saying so.
- Values of secrets injected into the sandbox are masked (`[REDACTED]`) in the reported output.
- The node follows the output through the toolbox's log stream, so it learns of the exit within
  milliseconds and the CLI shows the output as it comes (secret values masked); a server without
  the stream is polled instead, first after a few milliseconds.
"""


class ExecuteCodeConfig(ComponentConfig):
    sandbox: SandboxRef
    code: Annotated[
        str,
        Spec(
            "Code",
            "The code to run (supports expressions).",
            kind="code",
            placeholder='print("Hello, World!")',
            language="python",
        ),
    ]
    language: Annotated[str, Spec("Language", options=LANGUAGES, expressions=False)] = "python"
    timeout: Annotated[
        int | None,
        Spec(
            "Timeout (ms)",
            "Optional execution timeout in milliseconds.",
            placeholder="30000",
            togglable=True,
            minimum=1,
            maximum=86_400_000,
        ),
    ] = None
    max_output_bytes: OutputLimit = DEFAULT_OUTPUT_LIMIT_BYTES


#: Below this many milliseconds a timeout was most likely meant in seconds.
_LIKELY_SECONDS_BELOW_MS = 1000


def _interpreter(language: str, path: str) -> str:
    quoted = shlex.quote(path)
    if language == "python":
        return f"exec python3 {quoted}"
    if language == "javascript":
        return f"exec node {quoted}"
    return (
        f"if command -v ts-node >/dev/null 2>&1; then exec ts-node --transpile-only {quoted}; "
        f"elif command -v tsx >/dev/null 2>&1; then exec tsx {quoted}; "
        f"else exec node --experimental-strip-types --no-warnings {quoted}; fi"
    )


def _describe(config: ExecuteCodeConfig) -> str:
    lines = config.code.strip().splitlines() or [""]
    excerpt = lines[0] if len(lines[0]) <= 120 else lines[0][:120] + "..."
    more = f" (first of {len(lines)} lines)" if len(lines) > 1 else ""
    return f"{config.language} code {json.dumps(excerpt)}{more}"


class ExecuteCode(DaytonaComponent[ExecuteCodeConfig]):
    name: ClassVar[str] = "daytona.executeCode"
    label: ClassVar[str] = "Execute Code"
    description: ClassVar[str] = "Run Python, TypeScript or JavaScript code in a Daytona sandbox."
    icon: ClassVar[str] = "code"
    channels = (SUCCESS_CHANNEL, FAILED_CHANNEL)
    payload_type = CodeExecutionPayload
    config_model = ExecuteCodeConfig
    docs = DOCS

    @classmethod
    def extra_rules(cls, config: Mapping[str, Any], *, allow_expressions: bool) -> list[ConfigIssue]:
        timeout = config.get("timeout")
        # Only when the canvas is checked: a warning never stops a run.
        if allow_expressions and isinstance(timeout, int) and 0 < timeout < _LIKELY_SECONDS_BELOW_MS:
            seconds = "second" if timeout == 1 else "seconds"
            return [
                ConfigIssue(
                    "timeout",
                    f"is {timeout} milliseconds (the unit is ms, not seconds): for {timeout} {seconds},"
                    f" write {timeout * 1000}",
                    warning=True,
                )
            ]
        return []

    async def run(self, step: Step, config: ExecuteCodeConfig) -> Outcome:
        timeout = None if config.timeout is None else config.timeout / 1000
        name = session_name(step.ctx.run_id, step.ctx.execution_id, "code")
        path = f"/tmp/{name}.{_EXTENSIONS[config.language]}"

        async def build() -> str:
            await step.client.upload_file(config.sandbox, path, config.code.encode("utf-8"))
            return with_timeout(bash(with_sandbox_env(_interpreter(config.language, path))), timeout)

        step.on_end({"sandbox": config.sandbox, "file": path})
        command = Command(
            "command", config.sandbox, "code", build, timeout, config.max_output_bytes, _describe(config)
        )
        result = await step.run_command(command)
        output, truncated = result.output.bounded()
        payload = CodeExecutionPayload(
            exit_code=result.exit_code if result.exit_code is not None else -1,
            result=output,
            timeout=True if result.timed_out else None,
            truncated=True if truncated else None,
        ).held_to(None if config.timeout is None else f"{config.timeout} ms")
        if result.succeeded:
            return Outcome(SUCCESS_CHANNEL.name, payload)
        return Outcome(FAILED_CHANNEL.name, payload, succeeded=False)
