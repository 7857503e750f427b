"""What the six git components share: the repository address (with createRepositorySandbox) and
path fields, credentials from secrets, failures that say which git operation failed where, with the
credentials masked, and the push and pull of the current branch.

Credentials are resolved from the secrets provider only for the request that needs them and are
never saved in the step's metadata, emitted or logged; a failure's message is masked of them
(Daytona's toolbox may echo a remote URL, and a remote may echo what it was sent).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Protocol
from urllib.parse import quote, quote_plus, urlsplit

from daytonaflow.components._config import ConfigPart, SecretValueRef, Spec
from daytonaflow.components._errors import DaytonaApiError, DaytonaError
from daytonaflow.components._output import REDACTED
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

#: A shorter password is refused: masking it would blank out every match of a common word.
MIN_PASSWORD_LENGTH = 4
#: The userinfo of any URL in a message (``scheme://user:password@``, or a token as the user).
_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#]*@")

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
    repository: object,
    *,
    allow_expressions: bool,
    credentials_instead: str,
    name_needed: bool = True,
    hint: str = "",
) -> list[ConfigIssue]:
    """A repository address carrying credentials (``credentials_instead`` says where they go), or,
    when ``name_needed``, ending in no usable directory name (``hint`` says what else to do); an
    expression is judged once it has a value."""
    if not isinstance(repository, str) or (allow_expressions and contains_template(repository)):
        return []
    issue = repository_credentials_issue(repository, credentials_instead)
    if issue is not None:
        return [issue]
    if not name_needed:
        return []
    name = repository_name(repository)
    if not _NAME.match(name) or name in (".", ".."):
        return [ConfigIssue("repository", f"must end with a repository name (…/<name>.git){hint}")]
    return []


def repository_credentials_issue(repository: str, use_instead: str) -> ConfigIssue | None:
    """An issue when the repository URL carries credentials: a password in any URL, or any user
    in an HTTP(S) URL (where a token is often given as the user). The URL is kept in the canvas,
    in payloads, in errors and in the clone's ``.git/config``; credentials belong in a secret."""
    if "://" not in repository:
        return None  # An SCP-style address's user (git@host:...) is no secret.
    parts = urlsplit(repository.strip())
    userinfo, at, _ = parts.netloc.rpartition("@")
    if not at or (":" not in userinfo and parts.scheme.lower() not in ("http", "https")):
        return None
    return ConfigIssue(
        "repository", f"must not carry a user or password (scheme://user:password@host): {use_instead}"
    )


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
        "The value is sent to Daytona's git API only, never shown in payloads, logs or errors "
        f"(a password under {MIN_PASSWORD_LENGTH} characters is refused: it could not be masked).",
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
        """What a message must not show: the password as given and in every encoding a remote,
        git or Daytona's toolbox may echo it in (matched ignoring case: ``%2f`` as ``%2F``)."""
        if not self.password:
            return ()
        password = self.password
        basic = base64.b64encode(f"{self.username or ''}:{password}".encode()).decode().rstrip("=")
        json_text = json.dumps(password)[1:-1]
        forms = {
            password,
            quote(password, safe=""),
            quote(password),
            # Go's url.UserPassword leaves the sub-delimiters RFC 3986 allows in userinfo.
            quote(password, safe="$&+,;="),
            quote_plus(password),
            json_text,
            json_text.replace("/", "\\/"),
            basic,
        }
        return tuple(sorted(forms, key=len, reverse=True))

    def mask(self, text: str) -> str:
        """``text`` with the password's forms and the userinfo of every URL in it masked."""
        for form in self.secrets:
            text = re.sub(re.escape(form), REDACTED, text, flags=re.IGNORECASE)
        return _USERINFO.sub(rf"\1{REDACTED}@", text)


def resolve_credentials(step: Step, credentials: GitCredentials | None) -> ResolvedCredentials:
    """The credentials' values, or a failure naming the secret that is missing."""
    if credentials is None:
        return ResolvedCredentials()
    reference = credentials.password
    try:
        password = step.ctx.secrets.get(reference.secret, reference.key)
    except SecretNotFoundError as error:
        raise ComponentError(f"credentials.password: cannot resolve the secret: {error}") from None
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ComponentError(
            f"credentials.password: the value of secret {reference.secret!r} key {reference.key!r} is "
            f"under {MIN_PASSWORD_LENGTH} characters; a password that short cannot be masked in "
            "messages, so it is refused (use a token)"
        )
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
        masked = (credentials or ResolvedCredentials()).mask(f"{what} failed: {reason}")
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
