"""daytona.createRepositorySandbox: a started sandbox with a repository cloned and bootstrapped."""

from __future__ import annotations

import contextlib
import re
import shlex
from collections.abc import Mapping
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field as ModelField

from daytonaflow.component import DEFAULT_CHANNEL, ExecutionContext
from daytonaflow.components import outcome, sandbox_lifecycle, sandbox_restart, sessions, timing
from daytonaflow.components.base import ComponentConfig
from daytonaflow.components.client import DaytonaClient
from daytonaflow.components.common_fields import SANDBOX_CREATION_FIELDS
from daytonaflow.components.config_parts import SandboxCreationConfig
from daytonaflow.components.errors import DaytonaApiError, DaytonaError, DaytonaNotFoundError
from daytonaflow.components.fields import Field, Option, When
from daytonaflow.components.output import redact, tail
from daytonaflow.components.payloads import (
    BootstrapOutcome,
    RepositorySandboxPayload,
    SecretInjection,
)
from daytonaflow.components.sandbox_env import (
    HOME,
    STATE_DIR,
    ResolvedSecret,
    bash,
    inject_secrets,
    resolve_secrets,
    with_sandbox_env,
    with_timeout,
)
from daytonaflow.components.sandbox_lifecycle import SANDBOX_RESOURCE, SandboxCreatingComponent, StartState
from daytonaflow.components.sessions import StepResult, StepState
from daytonaflow.errors import ComponentError, ConfigIssue
from daytonaflow.expressions import contains_template

DEFAULT_TIMEOUT_SECONDS = 300
DEFAULT_LOG_TAIL_BYTES = 16 * 1024
GITHUB_TOKEN = "GITHUB_TOKEN"
GIT_TOKEN_USERNAME = "x-access-token"

REPOSITORY_PATTERN = r"^(?:(?:https?|ssh|git|file)://\S+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+)$"
RELATIVE_PATH_PATTERN = r"^(?!/)(?!.*(?:^|/)\.\.(?:/|$)).+$"
_NAME = re.compile(r"^[A-Za-z0-9._-]+$")

Phase = Literal["starting", "cloning", "bootstrapping"]

DOCS = """
Creates a Daytona sandbox, clones a repository into it and runs a bootstrap script.

## Use cases

- **Ephemeral dev environments**: spin up a fresh environment for a repository on demand
- **CI-like workflows**: clone code and run setup scripts before downstream tasks
- **Automated validation**: prepare repository state before executing tests or commands

## Configuration

- **Repository**: a URL (`https://github.com/org/repo.git`) or SCP-style address
  (`git@github.com:org/repo.git`); it is cloned into `/home/daytona/<name>`
- **Branch**: optional branch or tag to clone
- **Bootstrap**: optional; `from: inline` runs the given **Script**, `from: file` runs the
  script at **Path** inside the repository; either runs with the repository as working directory
- **Snapshot**, **Target**, **Auto Stop Interval**, **Environment Variables**, **Secrets**,
  **Public Previews**, **Labels**: as for createSandbox
- **Timeout**: seconds for the whole operation: start, clone and bootstrap (default 300)
- **Keep On Failure**: keep the sandbox when the clone or bootstrap fails, for inspection
  (it is then no longer reclaimed at the end of the run)
- **Log Tail**: how much of the end of the clone/bootstrap log to keep

## Output

Emits `daytona.repository.sandbox` on the default channel with `sandboxId`, `sandboxStartedAt`,
`repository`, `directory`, `bootstrap` (with the bootstrap's `exitCode` and the tail of its
`log`), `secrets` (the references, never values) and `timeout`.

## Notes

- The component waits for the sandbox to reach `started`, without blocking the engine.
- Clone and bootstrap run in sequence: the clone through Daytona's git API (so it works in
  sandboxes without a shell network), then the bootstrap in a session of the sandbox, with the
  sandbox env file sourced. An engine restart during the bootstrap resumes watching it.
- A secret named `GITHUB_TOKEN` (its variable name or its key) is also the clone credential for
  HTTPS repositories (sent to Daytona's git API, never written into a command).
- If the clone or bootstrap fails, the node fails with the tail of the log in its error, and
  the sandbox is deleted unless Keep On Failure is set. Secret values are masked in logs.
"""


class Bootstrap(ComponentConfig):
    from_: Literal["inline", "file"] = ModelField(alias="from")
    script: str | None = None
    path: str | None = None


class CreateRepositorySandboxConfig(SandboxCreationConfig):
    repository: str
    branch: str | None = None
    bootstrap: Bootstrap | None = None
    keep_on_failure: bool = ModelField(alias="keepOnFailure")
    log_tail_bytes: int = ModelField(alias="logTailBytes")

    @property
    def directory(self) -> str:
        return f"{HOME}/{repository_name(self.repository)}"


def repository_name(repository: str) -> str:
    """``example-app`` from ``https://github.com/org/example-app.git`` or ``git@host:org/example-app.git``."""
    text = repository.strip().rstrip("/")
    path = urlsplit(text).path if "://" in text else text.partition(":")[2]
    # A working tree's ``.../app/.git`` names ``app``.
    path = path.rstrip("/").removesuffix("/.git")
    return path.rsplit("/", 1)[-1].removesuffix(".git")


def _clone_credential(secrets: list[ResolvedSecret]) -> str | None:
    """The value of the secret named ``GITHUB_TOKEN`` (as variable name, else as key), if any."""
    for item in secrets:
        if item.spec.kind == "env" and item.spec.target == GITHUB_TOKEN:
            return item.value
    for item in secrets:
        if item.spec.key == GITHUB_TOKEN:
            return item.value
    return None


class CreateRepositorySandbox(SandboxCreatingComponent[CreateRepositorySandboxConfig]):
    name: ClassVar[str] = "daytona.createRepositorySandbox"
    label: ClassVar[str] = "Create Repository Sandbox"
    description: ClassVar[str] = "Create a sandbox, clone a repository into it and run a bootstrap script."
    icon: ClassVar[str] = "git-branch"
    channels = (DEFAULT_CHANNEL,)
    payload_type = RepositorySandboxPayload
    config_model = CreateRepositorySandboxConfig
    docs = DOCS
    #: Shell scripts are full of ``<<`` heredocs: the script is never read as an expression.
    literal_fields = frozenset({"bootstrap.script"})
    fields = (
        Field(
            "repository",
            "string",
            "Repository",
            "Repository to clone, as a URL or an SCP-style address.",
            placeholder="https://github.com/superplanehq/example-app.git",
            required=True,
            pattern=REPOSITORY_PATTERN,
            pattern_rule="be a repository URL (https://host/org/repo.git) or an SCP-style address "
            "(git@host:org/repo.git)",
        ),
        Field(
            "branch",
            "string",
            "Branch",
            "Branch or tag to clone (the default branch when empty).",
            placeholder="main",
        ),
        Field(
            "bootstrap",
            "object",
            "Bootstrap",
            "Script run in the repository directory after the clone.",
            togglable=True,
            fields=(
                Field(
                    "from",
                    "select",
                    "Bootstrap From",
                    options=(Option("inline", "Inline script"), Option("file", "File in the repository")),
                    default="inline",
                    expressions=False,
                ),
                Field(
                    "script",
                    "code",
                    "Script",
                    "Shell script run with bash (taken literally, never as an expression).",
                    placeholder="npm ci",
                    language="shell",
                    visible_when=(When("from", ("inline",)),),
                    required_when=(When("from", ("inline",)),),
                    expressions=False,
                ),
                Field(
                    "path",
                    "string",
                    "Path",
                    "Script path relative to the repository root.",
                    placeholder="scripts/bootstrap.sh",
                    pattern=RELATIVE_PATH_PATTERN,
                    pattern_rule="be a relative path inside the repository",
                    visible_when=(When("from", ("file",)),),
                    required_when=(When("from", ("file",)),),
                ),
            ),
        ),
        *SANDBOX_CREATION_FIELDS,
        Field(
            "timeout",
            "number",
            "Timeout (seconds)",
            "Seconds for the whole operation: sandbox start, clone and bootstrap.",
            default=DEFAULT_TIMEOUT_SECONDS,
            minimum=1,
            maximum=86400,
        ),
        Field(
            "keepOnFailure",
            "boolean",
            "Keep On Failure",
            "Keep the sandbox when the clone or bootstrap fails (for inspection).",
            default=False,
        ),
        Field(
            "logTailBytes",
            "number",
            "Log Tail (bytes)",
            "How much of the end of the clone/bootstrap log to keep in the payload and errors.",
            default=DEFAULT_LOG_TAIL_BYTES,
            minimum=256,
            maximum=1024 * 1024,
        ),
    )

    @classmethod
    def extra_rules(cls, config: Mapping[str, Any], *, allow_expressions: bool) -> list[ConfigIssue]:
        repository = config.get("repository")
        if not isinstance(repository, str) or (allow_expressions and contains_template(repository)):
            return []
        name = repository_name(repository)
        if not _NAME.match(name) or name in (".", ".."):
            return [ConfigIssue("repository", "must end with a repository name (…/<name>.git)")]
        return []

    # --- lifecycle ----------------------------------------------------------------------------

    async def execute(self, ctx: ExecutionContext) -> None:
        config = self.parse_config(ctx)
        if ctx.metadata.get().get("phase"):
            await self.check(ctx)  # resumed after an engine restart
            return
        integration = self.integration(ctx)
        state, sandbox = await sandbox_lifecycle.create(ctx, integration.client, config, integration.target)
        ctx.metadata.set({"phase": "starting", "start": state.to_json()})
        if await sandbox_lifecycle.wait_started(ctx, integration.client, sandbox):
            await self._prepare_and_clone(ctx, config)

    async def check(self, ctx: ExecutionContext) -> None:
        config = self.parse_config(ctx)
        if await self._replayed(ctx, config):
            return
        phase: Phase = ctx.metadata.get()["phase"]
        if phase == "starting":
            await self._check_start(ctx, config)
        elif phase == "cloning":
            # Only reached after a restart during the clone: start it over from a clean directory
            # (in a sandbox started again if the restart found it stopped: cloning again is safe).
            sandbox_id = StartState.from_json(ctx.metadata.get()["start"]).sandbox_id
            if await sandbox_restart.is_stopped(self.client(ctx), sandbox_id):
                await sandbox_restart.restart(self.client(ctx), sandbox_id)
            await self._clone_and_continue(ctx, config, retry=True)
        else:
            await self._check_bootstrap(ctx, config)

    async def _check_start(self, ctx: ExecutionContext, config: CreateRepositorySandboxConfig) -> None:
        if await sandbox_lifecycle.wait_started(ctx, self.client(ctx)):
            await self._prepare_and_clone(ctx, config)

    async def _prepare_and_clone(self, ctx: ExecutionContext, config: CreateRepositorySandboxConfig) -> None:
        client = self.client(ctx)
        metadata = ctx.metadata.get()
        sandbox_id = StartState.from_json(metadata["start"]).sandbox_id
        try:
            await inject_secrets(client, sandbox_id, self._resolve(ctx, config))
        except ComponentError as error:
            message = f"could not write secrets into sandbox {sandbox_id}: {error}"
            await sandbox_lifecycle.fail(ctx, client, sandbox_id, message)
        started_at = timing.iso_utc(timing.now())
        ctx.metadata.set({**metadata, "phase": "cloning", "startedAt": started_at})
        await self._clone_and_continue(ctx, config, retry=False)

    async def _clone_and_continue(
        self, ctx: ExecutionContext, config: CreateRepositorySandboxConfig, *, retry: bool
    ) -> None:
        """Clone through Daytona's git API, then start the bootstrap or emit."""
        client = self.client(ctx)
        metadata = ctx.metadata.get()
        start = StartState.from_json(metadata["start"])
        sandbox_id = start.sandbox_id
        secrets = self._resolve(ctx, config)
        try:
            if retry:
                with contextlib.suppress(DaytonaNotFoundError):
                    await client.delete_file(sandbox_id, config.directory, recursive=True)
            await self._clone(client, sandbox_id, config, secrets, start.deadline)
        except DaytonaError as error:
            detail = error.message if isinstance(error, DaytonaApiError) else str(error)
            await self._fail(ctx, config, sandbox_id, f"clone of {config.repository} failed", detail, secrets)
            return
        if config.bootstrap is None:
            outcome.emit(ctx, DEFAULT_CHANNEL.name, self._payload(ctx, config, sandbox_id, None, secrets))
            return
        step = StepState(
            sandbox=sandbox_id,
            session=sessions.session_name(ctx.run_id, ctx.execution_id, "repository"),
            index=0,
            started_at=timing.now(),
            deadline=start.deadline,
        )
        # Persisted before the command starts: a restart then finds it in the session.
        ctx.metadata.set({**metadata, "phase": "bootstrapping", "step": step.to_json()})
        await self._start_bootstrap(ctx, config, step)

    async def _start_bootstrap(
        self, ctx: ExecutionContext, config: CreateRepositorySandboxConfig, step: StepState
    ) -> None:
        client = self.client(ctx)

        def persist() -> None:
            ctx.metadata.set({**ctx.metadata.get(), "step": step.to_json()})

        await sessions.start(client, step, await self._bootstrap_command(client, step, config), persist)
        delay = step.next_check_delay()
        ctx.metadata.set({**ctx.metadata.get(), "step": step.to_json()})
        ctx.schedule_check(delay)

    async def _check_bootstrap(self, ctx: ExecutionContext, config: CreateRepositorySandboxConfig) -> None:
        client = self.client(ctx)
        metadata = ctx.metadata.get()
        step = StepState.from_json(metadata["step"])
        try:
            if step.command_id is None:
                # Restarted before the command's ID was saved: start() finds it in the session, or starts it.
                await self._start_bootstrap(ctx, config, step)
                return
            result = await sessions.poll(client, step)
        except DaytonaApiError:
            if not await sandbox_restart.is_stopped(client, step.sandbox):
                raise
            await self._bootstrap_after_stop(ctx, config, step)
            return
        if result is None:
            delay = step.next_check_delay()
            ctx.metadata.set({**metadata, "step": step.to_json()})
            ctx.schedule_check(delay)
            return
        secrets = self._resolve_for_masking(ctx, config)
        if result.exit_code != 0 or result.timed_out:
            how = "timed out" if result.timed_out else f"failed with exit code {result.exit_code}"
            await self._fail(
                ctx, config, step.sandbox, f"bootstrap of {config.repository} {how}", result.output, secrets
            )
            return
        payload = self._payload(ctx, config, step.sandbox, result, secrets)
        # Recorded before the session goes: a re-run after a crash replays it (see outcome).
        outcome.record_emit(ctx, DEFAULT_CHANNEL.name, payload)
        await self._end_bootstrap_session(ctx)
        ctx.emit(DEFAULT_CHANNEL.name, payload)

    async def _bootstrap_after_stop(
        self, ctx: ExecutionContext, config: CreateRepositorySandboxConfig, step: StepState
    ) -> None:
        """The sandbox was found stopped: start it and the bootstrap if that had not been sent, else
        fail (a bootstrap that had started died with the sandbox's processes; never run twice)."""
        if step.launched or step.command_id is not None:
            fate = "" if config.keep_on_failure else f"; sandbox {step.sandbox} is deleted"
            message = (
                f"bootstrap of {config.repository} was interrupted: sandbox {step.sandbox} was found"
                " stopped, so its processes, the bootstrap's among them, had died (on the embedded"
                " backend they die with the runner process); it had already started, so it is not run"
                f" again{fate}"
            )
            await self._fail(ctx, config, step.sandbox, message, "", self._resolve_for_masking(ctx, config))
        await sandbox_restart.restart(self.client(ctx), step.sandbox)
        await self._start_bootstrap(ctx, config, step)

    # --- clone and bootstrap ----------------------------------------------------------------------

    @staticmethod
    def _resolve(ctx: ExecutionContext, config: CreateRepositorySandboxConfig) -> list[ResolvedSecret]:
        return resolve_secrets(config.secret_specs(), ctx.secrets)

    @classmethod
    def _resolve_for_masking(
        cls, ctx: ExecutionContext, config: CreateRepositorySandboxConfig
    ) -> list[ResolvedSecret]:
        """The secrets to mask in logs; none when they cannot be resolved anymore (never fatal)."""
        try:
            return cls._resolve(ctx, config)
        except ComponentError:
            return []

    @staticmethod
    def _remaining(deadline: float | None) -> float | None:
        return None if deadline is None else max(1.0, round(deadline - timing.now(), 3))

    async def _clone(
        self,
        client: DaytonaClient,
        sandbox_id: str,
        config: CreateRepositorySandboxConfig,
        secrets: list[ResolvedSecret],
        deadline: float | None,
    ) -> None:
        token = _clone_credential(secrets)
        # Only HTTP(S) remotes take a token; SSH remotes authenticate with a key file secret.
        use_token = token is not None and urlsplit(config.repository).scheme in ("http", "https")
        await client.git_clone(
            sandbox_id,
            config.repository,
            config.directory,
            branch=config.branch,
            username=GIT_TOKEN_USERNAME if use_token else None,
            password=token if use_token else None,
            timeout_seconds=self._remaining(deadline),
        )

    async def _bootstrap_command(
        self, client: DaytonaClient, step: StepState, config: CreateRepositorySandboxConfig
    ) -> str:
        bootstrap = config.bootstrap
        assert bootstrap is not None
        if bootstrap.from_ == "inline":
            script_path = f"{STATE_DIR}/bootstrap-{step.session}.sh"
            await client.create_folder(step.sandbox, STATE_DIR, "0700")
            await client.upload_file(step.sandbox, script_path, (bootstrap.script or "").encode())
        else:
            script_path = bootstrap.path or ""
        script = f"cd -- {shlex.quote(config.directory)} || exit 1\nbash -- {shlex.quote(script_path)}"
        return with_timeout(bash(with_sandbox_env(script)), self._remaining(step.deadline))

    # --- outcomes -------------------------------------------------------------------------------

    @staticmethod
    def _log_tail(config: CreateRepositorySandboxConfig, output: str, secrets: list[ResolvedSecret]) -> str:
        return tail(redact(output, [item.value for item in secrets]), config.log_tail_bytes)

    def _payload(
        self,
        ctx: ExecutionContext,
        config: CreateRepositorySandboxConfig,
        sandbox_id: str,
        bootstrap_result: StepResult | None,
        secrets: list[ResolvedSecret],
    ) -> RepositorySandboxPayload:
        bootstrap = None
        if config.bootstrap is not None and bootstrap_result is not None:
            inline = config.bootstrap.from_ == "inline"
            bootstrap = BootstrapOutcome(
                from_=config.bootstrap.from_,
                path=None if inline else config.bootstrap.path,
                script=config.bootstrap.script if inline else None,
                exit_code=bootstrap_result.exit_code,
                log=self._log_tail(config, bootstrap_result.output, secrets),
            )
        return RepositorySandboxPayload(
            sandbox_id=sandbox_id,
            sandbox_started_at=ctx.metadata.get()["startedAt"],
            repository=config.repository,
            directory=config.directory,
            bootstrap=bootstrap,
            secrets=[SecretInjection.model_validate(secret.reference()) for secret in config.secrets],
            timeout=config.timeout,
        )

    async def _fail(
        self,
        ctx: ExecutionContext,
        config: CreateRepositorySandboxConfig,
        sandbox_id: str,
        message: str,
        output: str,
        secrets: list[ResolvedSecret],
    ) -> None:
        if config.keep_on_failure:
            message += f" (sandbox {sandbox_id} kept)"
        log = self._log_tail(config, output, secrets).strip()
        message += f"; log tail:\n{log}" if log else ""
        outcome.record_failure(ctx, message)
        await self._settle_failure(ctx, config, sandbox_id)
        raise ComponentError(message)

    async def _settle_failure(
        self, ctx: ExecutionContext, config: CreateRepositorySandboxConfig, sandbox_id: str
    ) -> None:
        """Delete the failed sandbox, or keep it (then the engine must not reclaim it at run end)."""
        client = self.client(ctx)
        await self._end_bootstrap_session(ctx)
        if config.keep_on_failure:
            ctx.resources.release(SANDBOX_RESOURCE, sandbox_id)
        else:
            await sandbox_lifecycle.discard(ctx, client, sandbox_id)

    async def _end_bootstrap_session(self, ctx: ExecutionContext) -> None:
        """End the bootstrap's session, if one was started (idempotent, never fatal)."""
        step = ctx.metadata.get().get("step")
        if step:
            with contextlib.suppress(DaytonaError):
                await sessions.kill(self.client(ctx), StepState.from_json(step))

    async def _replayed(self, ctx: ExecutionContext, config: CreateRepositorySandboxConfig) -> bool:
        """Whether the execution had already ended: its clean-up is repeated and its outcome replayed."""
        record = outcome.recorded(ctx)
        if record is None:
            return False
        metadata = ctx.metadata.get()
        if outcome.is_failure(record):
            await self._settle_failure(ctx, config, StartState.from_json(metadata["start"]).sandbox_id)
        else:
            await self._end_bootstrap_session(ctx)
        outcome.replay(ctx, record, self.payload_type)
        return True
