"""daytona.executeCode: run Python, TypeScript or JavaScript code in an existing sandbox."""

from __future__ import annotations

import json
import shlex
from typing import ClassVar

from pydantic import Field as ModelField

from daytonaflow.components.base import ComponentConfig
from daytonaflow.components.client import DaytonaClient
from daytonaflow.components.common_fields import SANDBOX, output_limit
from daytonaflow.components.fields import Field, Option
from daytonaflow.components.output import bound_output
from daytonaflow.components.payloads import CodeExecutionPayload
from daytonaflow.components.sandbox_env import bash, with_sandbox_env, with_timeout
from daytonaflow.components.session_component import SessionCommandComponent
from daytonaflow.components.sessions import StepResult, StepState

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
- **Timeout**: optional limit in milliseconds; a run that exceeds it is killed inside the sandbox
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
"""


class ExecuteCodeConfig(ComponentConfig):
    sandbox: str
    code: str
    language: str
    timeout: int | None = None
    max_output_bytes: int = ModelField(alias="maxOutputBytes")


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


class ExecuteCode(SessionCommandComponent[ExecuteCodeConfig]):
    name: ClassVar[str] = "daytona.executeCode"
    label: ClassVar[str] = "Execute Code"
    description: ClassVar[str] = "Run Python, TypeScript or JavaScript code in a Daytona sandbox."
    icon: ClassVar[str] = "code"
    payload_type = CodeExecutionPayload
    config_model = ExecuteCodeConfig
    docs = DOCS
    session_purpose = "code"
    fields = (
        SANDBOX,
        Field(
            "code",
            "code",
            "Code",
            "The code to run (supports expressions).",
            placeholder='print("Hello, World!")',
            required=True,
            language="python",
        ),
        Field("language", "select", "Language", options=LANGUAGES, default="python", expressions=False),
        Field(
            "timeout",
            "number",
            "Timeout (ms)",
            "Optional execution timeout in milliseconds.",
            placeholder="30000",
            togglable=True,
            minimum=1,
            maximum=86_400_000,
        ),
        output_limit(),
    )

    def sandbox_of(self, config: ExecuteCodeConfig) -> str:
        return config.sandbox

    def timeout_seconds(self, config: ExecuteCodeConfig) -> float | None:
        return None if config.timeout is None else config.timeout / 1000

    @staticmethod
    def _code_path(config: ExecuteCodeConfig, step: StepState) -> str:
        return f"/tmp/{step.session}.{_EXTENSIONS[config.language]}"

    async def prepare(self, client: DaytonaClient, config: ExecuteCodeConfig, step: StepState) -> str:
        path = self._code_path(config, step)
        await client.upload_file(step.sandbox, path, config.code.encode("utf-8"))
        run = bash(with_sandbox_env(_interpreter(config.language, path)))
        return with_timeout(run, self.timeout_seconds(config))

    async def cleanup(self, client: DaytonaClient, config: ExecuteCodeConfig, step: StepState) -> None:
        await client.delete_file(step.sandbox, self._code_path(config, step))

    def describe(self, config: ExecuteCodeConfig) -> str:
        lines = config.code.strip().splitlines() or [""]
        excerpt = lines[0] if len(lines[0]) <= 120 else lines[0][:120] + "..."
        more = f" (first of {len(lines)} lines)" if len(lines) > 1 else ""
        return f"{config.language} code {json.dumps(excerpt)}{more}"

    def payload(self, config: ExecuteCodeConfig, result: StepResult) -> CodeExecutionPayload:
        output, truncated = bound_output(result.output, config.max_output_bytes)
        return CodeExecutionPayload(
            exit_code=result.exit_code if result.exit_code is not None else -1,
            result=output,
            timeout=True if result.timed_out else None,
            truncated=True if truncated else None,
        )
