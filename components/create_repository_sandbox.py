"""daytona.createRepositorySandbox: a started sandbox with a repository cloned and bootstrapped."""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, NoReturn
from urllib.parse import urlsplit

from pydantic import Field as ModelField

from daytonaflow.component import DEFAULT_CHANNEL
from daytonaflow.components import _timing
from daytonaflow.components._component import DaytonaComponent
from daytonaflow.components._config import ConfigPart, SandboxCreationConfig, Spec
from daytonaflow.components._errors import DaytonaApiError, DaytonaError, DaytonaNotFoundError
from daytonaflow.components._fields import Option, When
from daytonaflow.components._git import (
    TOKEN_USERNAME,
    Repository,
    ResolvedCredentials,
    repository_name,
    repository_name_issues,
)
from daytonaflow.components._output import redact, tail
from daytonaflow.components._payloads import BootstrapOutcome, RepositorySandboxPayload, SecretInjection
from daytonaflow.components._sandbox_env import (
    HOME,
    STATE_DIR,
    ResolvedSecret,
    bash,
    resolve_secrets,
    with_sandbox_env,
    with_timeout,
)
from daytonaflow.components._step import Command, Outcome, Step
from daytonaflow.errors import ComponentError, ConfigIssue

DEFAULT_TIMEOUT_SECONDS = 300
DEFAULT_LOG_TAIL_BYTES = 16 * 1024
GITHUB_TOKEN = "GITHUB_TOKEN"

RELATIVE_PATH_PATTERN = r"^(?!/)(?!.*(?:^|/)\.\.(?:/|$)).+$"
_INLINE = (When("from", ("inline",)),)
_FILE = (When("from", ("file",)),)

DOCS = """
Creates a Daytona sandbox, clones a repository into it and runs a bootstrap script.

## Use cases

- **Ephemeral dev environments**: spin up a fresh environment for a repository on demand
- **CI-like workflows**: clone code and run setup scripts before downstream tasks
- **Automated validation**: prepare repository state before executing tests or commands

## Configuration

- **Repository**: a URL (`https://github.com/org/repo.git`) or SCP-style address
  (`git@github.com:org/repo.git`); it is cloned into `/home/daytona/<name>`. A URL carrying a
  user or password (`https://user:token@host/...`) is refused: give the token as a secret named
  `GITHUB_TOKEN`
- **Branch**: optional branch or tag to clone
- **Bootstrap**: optional; `from: inline` runs the given **Script**, `from: file` runs the
  script at **Path** inside the repository; either runs with the repository as working directory
- **Snapshot**, **Target**, **Auto Stop Interval**, **Auto Archive Interval**, **Auto Delete
  Interval**, **CPU**, **Memory**, **Disk**, **Environment Variables**, **Secrets**, **Public
  Previews**, **Labels**, **Network**, **Network Allow List**, **Volumes**, **Preview Port**: as
  for createSandbox
- **Timeout**: seconds for the whole operation: start, clone and bootstrap (default 300)
- **Keep On Failure**: keep the sandbox when the clone or bootstrap fails, for inspection
  (it is then no longer reclaimed at the end of the run)
- **Log Tail**: how much of the end of the clone/bootstrap log to keep

## Output

Emits `daytona.repository.sandbox` on the default channel with `sandboxId`, `sandboxStartedAt`,
`repository`, `directory`, `bootstrap` (with the bootstrap's `exitCode` and the tail of its
`log`), `secrets` (the references, never values) and `timeout`; with a **Preview Port**, also
`previewUrl` and `previewToken` (as for createSandbox).

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


class Bootstrap(ConfigPart):
    from_: Annotated[
        Literal["inline", "file"],
        Spec(
            "Bootstrap From",
            options=(Option("inline", "Inline script"), Option("file", "File in the repository")),
            expressions=False,
        ),
    ] = ModelField("inline", alias="from")
    script: Annotated[
        str | None,
        Spec(
            "Script",
            "Shell script run with bash (taken literally, never as an expression).",
            kind="code",
            placeholder="npm ci",
            language="shell",
            visible_when=_INLINE,
            required_when=_INLINE,
            expressions=False,
        ),
    ] = None
    path: Annotated[
        str | None,
        Spec(
            "Path",
            "Script path relative to the repository root.",
            placeholder="scripts/bootstrap.sh",
            pattern=RELATIVE_PATH_PATTERN,
            pattern_rule="be a relative path inside the repository",
            visible_when=_FILE,
            required_when=_FILE,
        ),
    ] = None


class _RepositorySource(ConfigPart):
    """The fields the form shows first (a base listed last comes first in the model)."""

    repository: Repository
    branch: Annotated[
        str | None,
        Spec("Branch", "Branch or tag to clone (the default branch when empty).", placeholder="main"),
    ] = None
    bootstrap: Annotated[
        Bootstrap | None,
        Spec("Bootstrap", "Script run in the repository directory after the clone.", togglable=True),
    ] = None


class CreateRepositorySandboxConfig(SandboxCreationConfig, _RepositorySource):
    timeout: Annotated[
        int,
        Spec(
            "Timeout (seconds)",
            "Seconds for the whole operation: sandbox start, clone and bootstrap.",
            minimum=1,
            maximum=86400,
        ),
    ] = DEFAULT_TIMEOUT_SECONDS
    keep_on_failure: Annotated[
        bool, Spec("Keep On Failure", "Keep the sandbox when the clone or bootstrap fails (for inspection).")
    ] = False
    log_tail_bytes: Annotated[
        int,
        Spec(
            "Log Tail (bytes)",
            "How much of the end of the clone/bootstrap log to keep in the payload and errors.",
            minimum=256,
            maximum=1024 * 1024,
        ),
    ] = DEFAULT_LOG_TAIL_BYTES

    @property
    def directory(self) -> str:
        return f"{HOME}/{repository_name(self.repository)}"


def _clone_credential(secrets: list[ResolvedSecret]) -> str | None:
    """The value of the secret named ``GITHUB_TOKEN`` (as variable name, else as key), if any."""
    for item in secrets:
        if item.spec.kind == "env" and item.spec.target == GITHUB_TOKEN:
            return item.value
    for item in secrets:
        if item.spec.key == GITHUB_TOKEN:
            return item.value
    return None


class CreateRepositorySandbox(DaytonaComponent[CreateRepositorySandboxConfig]):
    name: ClassVar[str] = "daytona.createRepositorySandbox"
    label: ClassVar[str] = "Create Repository Sandbox"
    description: ClassVar[str] = "Create a sandbox, clone a repository into it and run a bootstrap script."
    icon: ClassVar[str] = "git-branch"
    channels = (DEFAULT_CHANNEL,)
    payload_type = RepositorySandboxPayload
    config_model = CreateRepositorySandboxConfig
    docs = DOCS
    creates_sandbox = True
    #: Shell scripts are full of ``<<`` heredocs: the script is never read as an expression.
    literal_fields = frozenset({"bootstrap.script"})

    @classmethod
    def extra_rules(cls, config: Mapping[str, Any], *, allow_expressions: bool) -> list[ConfigIssue]:
        return repository_name_issues(
            config.get("repository"),
            allow_expressions=allow_expressions,
            credentials_instead=f"give a token as a secret named {GITHUB_TOKEN} in secrets instead",
        )

    async def run(self, step: Step, config: CreateRepositorySandboxConfig) -> Outcome:
        sandbox_id = await step.create_sandbox(config, config.timeout, keep_on_failure=config.keep_on_failure)
        if step.get("sandboxStartedAt") is None:
            step.save(sandboxStartedAt=_timing.iso_utc(_timing.now()))
        deadline = float(step.get("startDeadline"))
        await self._clone(step, config, sandbox_id, deadline)
        bootstrap = None
        if config.bootstrap is not None:
            bootstrap = await self._bootstrap(step, config, config.bootstrap, sandbox_id, deadline)
        link = None
        if config.preview_port is not None:
            link = await step.client.get_preview_url(sandbox_id, config.preview_port)
        payload = RepositorySandboxPayload(
            sandbox_id=sandbox_id,
            sandbox_started_at=step.get("sandboxStartedAt"),
            repository=config.repository,
            directory=config.directory,
            bootstrap=bootstrap,
            secrets=[SecretInjection.model_validate(secret.reference()) for secret in config.secrets],
            timeout=config.timeout,
            preview_url=None if link is None else link.url,
            preview_token=None if link is None else link.token,
        )
        return Outcome(DEFAULT_CHANNEL.name, payload)

    async def _clone(
        self,
        step: Step,
        config: CreateRepositorySandboxConfig,
        sandbox_id: str,
        deadline: float,
    ) -> None:
        """Clone through Daytona's git API; a clone cut short by a restart starts over, from a clean
        directory (in the sandbox started again if the restart found it stopped)."""
        if step.get("cloned"):
            return
        # Resolved only for the clone: a bootstrap resumed later needs none of them.
        secrets = resolve_secrets(config.secret_specs(), step.ctx.secrets)
        try:
            if step.get("cloning"):
                # A restart an earlier attempt handed to the engine is carried on.
                if step.restarting(sandbox_id) or await step.is_stopped(sandbox_id):
                    await step.restart(sandbox_id)
                with contextlib.suppress(DaytonaNotFoundError):
                    await step.client.delete_file(sandbox_id, config.directory, recursive=True)
            step.save(cloning=True)
            token = _clone_credential(secrets)
            # Only HTTP(S) remotes take a token; SSH remotes authenticate with a key file secret.
            use_token = token is not None and urlsplit(config.repository).scheme in ("http", "https")
            await step.client.git_clone(
                sandbox_id,
                config.repository,
                config.directory,
                branch=config.branch,
                username=TOKEN_USERNAME if use_token else None,
                password=token if use_token else None,
                timeout_seconds=_remaining(deadline),
            )
        except DaytonaError as error:
            detail = error.message if isinstance(error, DaytonaApiError) else str(error)
            # The token in the encodings a remote or git may echo it in, and any URL's userinfo.
            detail = ResolvedCredentials(TOKEN_USERNAME, _clone_credential(secrets)).mask(detail)
            _fail(config, sandbox_id, f"clone of {config.repository} failed", detail, secrets)
        step.save(cloned=True)

    async def _bootstrap(
        self,
        step: Step,
        config: CreateRepositorySandboxConfig,
        bootstrap: Bootstrap,
        sandbox_id: str,
        deadline: float,
    ) -> BootstrapOutcome:
        inline = bootstrap.from_ == "inline"
        script_path = bootstrap.path or ""
        if inline:
            # Left in place, beside the sandbox env file: a sandbox kept on failure shows what ran.
            script_path = f"{STATE_DIR}/bootstrap-{step.ctx.execution_id}.sh"

        async def build() -> str:
            if inline:
                await step.client.create_folder(sandbox_id, STATE_DIR, "0700")
                await step.client.upload_file(sandbox_id, script_path, (bootstrap.script or "").encode())
            script = f"cd -- {shlex.quote(config.directory)} || exit 1\nbash -- {shlex.quote(script_path)}"
            return with_timeout(bash(with_sandbox_env(script)), _remaining(deadline))

        what = f"bootstrap of {config.repository}"
        command = Command(
            "bootstrap", sandbox_id, "repository", build, _remaining(deadline), config.log_tail_bytes, what
        )
        result = await step.run_command(command)
        log = result.output.tail()
        if not result.succeeded:
            how = "timed out" if result.timed_out else f"failed with exit code {result.exit_code}"
            _fail(config, sandbox_id, f"{what} {how}", log, [])
        return BootstrapOutcome(
            from_=bootstrap.from_,
            path=None if inline else bootstrap.path,
            script=bootstrap.script if inline else None,
            exit_code=result.exit_code,
            log=log,
        )


def _remaining(deadline: float) -> float:
    return max(1.0, round(deadline - _timing.now(), 3))


def _fail(
    config: CreateRepositorySandboxConfig,
    sandbox_id: str,
    message: str,
    output: str,
    secrets: list[ResolvedSecret],
) -> NoReturn:
    """Fail the node with the tail of the log; the step deletes the sandbox unless it is kept."""
    if config.keep_on_failure:
        message += f" (sandbox {sandbox_id} kept)"
    log = tail(redact(output, [item.value for item in secrets]), config.log_tail_bytes).strip()
    message += f"; log tail:\n{log}" if log else ""
    raise ComponentError(message)
