"""What the six git components share: the repository address (with createRepositorySandbox) and
path fields, credentials from secrets, failures that say which git operation failed where, with the
credentials masked, and the push and pull of the current branch.

Credentials are resolved from the secrets provider only for the request that needs them and are
never saved in the step's metadata, emitted or logged; a failure's message is masked of them
(Daytona's toolbox may echo a remote URL, and a remote may echo what it was sent).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Protocol
from urllib.parse import quote, urlsplit

from daytonaflow.components._config import ConfigPart, SecretValueRef, Spec
from daytonaflow.components._errors import DaytonaApiError, DaytonaError
from daytonaflow.components._output import redact
from daytonaflow.components._step import Step
from daytonaflow.errors import ComponentError, ConfigIssue, SecretNotFoundError
from daytonaflow.expressions import contains_template

#: The username GitHub (and most hosts) accept with a token as the password.
TOKEN_USERNAME = "x-access-token"
REPOSITORY_PATTERN = r"^(?:(?:https?|ssh|git|file)://\S+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+)$"
_NAME = re.compile(r"^[A-Za-z0-9._-]+$")

Repository = Annotated[
    str,
    Spec(
        "Repository",
        "Repository to clone, as a URL or an SCP-style address.",
        placeholder="https://github.com/superplanehq/example-app.git",
        pattern=REPOSITORY_PATTERN,
        pattern_rule="be a repository URL (https://host/org/repo.git) or an SCP-style address "
        "(git@host:org/repo.git)",
    ),
]

RepositoryPath = Annotated[
    str,
    Spec(
        "Repository Path",
        "The repository's directory in the sandbox: absolute, or relative to the sandbox user's home.",
        placeholder='{{ $["daytona.createRepositorySandbox"].data.directory }}',
    ),
]


def repository_name(repository: str) -> str:
    """``example-app`` from ``https://github.com/org/example-app.git`` or ``git@host:org/example-app.git``."""
    text = repository.strip().rstrip("/")
    path = urlsplit(text).path if "://" in text else text.partition(":")[2]
    # A working tree's ``.../app/.git`` names ``app``.
    path = path.rstrip("/").removesuffix("/.git")
    return path.rsplit("/", 1)[-1].removesuffix(".git")


def repository_name_issues(
    repository: object, *, allow_expressions: bool, hint: str = ""
) -> list[ConfigIssue]:
    """A repository whose address ends in no usable directory name (``hint`` says what else to do);
    an expression is judged once it has a value."""
    if not isinstance(repository, str) or (allow_expressions and contains_template(repository)):
        return []
    name = repository_name(repository)
    if not _NAME.match(name) or name in (".", ".."):
        return [ConfigIssue("repository", f"must end with a repository name (…/<name>.git){hint}")]
    return []


class GitCredentials(ConfigPart):
    username: Annotated[
        str,
        Spec(
            "Username",
            "The user to authenticate as; with a token, any non-empty name (GitHub: x-access-token).",
            placeholder=TOKEN_USERNAME,
        ),
    ] = TOKEN_USERNAME
    password: Annotated[
        SecretValueRef,
        Spec(
            "Password or Token",
            "Which secret and which of its keys holds the password or access token.",
            expressions=False,
        ),
    ]


Credentials = Annotated[
    GitCredentials | None,
    Spec(
        "Credentials",
        "For an HTTPS remote that needs them: a username and a password or token from a secret. "
        "The value is sent to Daytona's git API only, never shown in payloads, logs or errors.",
        togglable=True,
    ),
]


@dataclass(frozen=True)
class ResolvedCredentials:
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        return f"ResolvedCredentials(username={self.username!r}, password=<hidden>)"

    @property
    def secrets(self) -> tuple[str, ...]:
        """What a message must not show: the password as given and as a URL quotes it."""
        return (self.password, quote(self.password, safe="")) if self.password else ()


def resolve_credentials(step: Step, credentials: GitCredentials | None) -> ResolvedCredentials:
    """The credentials' values, or a failure naming the secret that is missing."""
    if credentials is None:
        return ResolvedCredentials()
    reference = credentials.password
    try:
        password = step.ctx.secrets.get(reference.secret, reference.key)
    except SecretNotFoundError as error:
        raise ComponentError(f"credentials.password: cannot resolve the secret: {error}") from None
    return ResolvedCredentials(credentials.username, password)


async def sandbox_id_of(step: Step, sandbox: str) -> str:
    """The ID of the sandbox named by ID or name (payloads carry the ID)."""
    with git_failure(f"looking up sandbox {sandbox!r}"):
        return (await step.client.get_sandbox(sandbox)).id


@contextlib.contextmanager
def git_failure(what: str, credentials: ResolvedCredentials | None = None) -> Iterator[None]:
    """A Daytona error inside becomes a node failure saying ``what`` failed and Daytona's reason,
    with the credentials' values masked."""
    try:
        yield
    except DaytonaError as error:
        reason = error.message if isinstance(error, DaytonaApiError) else str(error)
        masked = redact(f"{what} failed: {reason}", credentials.secrets if credentials else ())
        raise ComponentError(masked) from None


async def current_branch(step: Step, sandbox_id: str, path: str, operation: str) -> str:
    """The branch checked out at ``path``; a detached HEAD fails ``operation`` saying so."""
    with git_failure(f"git status of {path}"):
        branch = (await step.client.git_status(sandbox_id, path)).current_branch
    if not branch:
        raise ComponentError(f"{operation} in {path}: HEAD is detached, check out a branch first")
    return branch


class BranchTransferConfig(Protocol):
    """What gitPush and gitPull are configured with (each declares its own fields)."""

    @property
    def sandbox(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def credentials(self) -> GitCredentials | None: ...
    @property
    def timeout(self) -> int: ...


class RemoteCall(Protocol):
    """The client's call that pushes or pulls the current branch."""

    async def __call__(
        self,
        sandbox_id: str,
        path: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout_seconds: float | None = None,
    ) -> None: ...


async def transfer_branch(
    step: Step, config: BranchTransferConfig, operation: str, call: RemoteCall
) -> tuple[str, str]:
    """Push or pull (``call``) the current branch of the repository at ``config.path``, with the
    credentials only in the request: the sandbox's ID and the branch."""
    sandbox_id = await sandbox_id_of(step, config.sandbox)
    credentials = resolve_credentials(step, config.credentials)
    branch = await current_branch(step, sandbox_id, config.path, operation)
    with git_failure(f"{operation} of {branch} in {config.path}", credentials):
        await call(
            sandbox_id,
            config.path,
            username=credentials.username,
            password=credentials.password,
            timeout_seconds=config.timeout,
        )
    return sandbox_id, branch
