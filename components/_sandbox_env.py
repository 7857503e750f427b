"""Secrets inside a sandbox, and the shell preamble every execute step runs with.

Secrets are written after the sandbox starts, never passed in the create request (Daytona
stores and shows a sandbox's ``env``). A ``file`` secret becomes a file of mode 600 at its
path. An ``env`` secret becomes an ``export NAME='value'`` line of the sandbox env file
:data:`ENV_FILE` (mode 600, in a mode 700 folder); executeCommand, executeCode and the
repository bootstrap source that file first, so later steps in the same sandbox see the
variables.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from daytonaflow.component import SecretsProvider
from daytonaflow.components._errors import DaytonaApiError, DaytonaError, DaytonaNotFoundError
from daytonaflow.components.client import DaytonaClient
from daytonaflow.errors import ComponentError, SecretNotFoundError

#: Sandbox label listing the injected secrets' references (never values), so that later steps
#: can mask those values in the output they report.
SECRET_REFS_LABEL = "daytonaflow.io/secret-refs"
HOME = "/home/daytona"
STATE_DIR = f"{HOME}/.daytonaflow"
ENV_FILE = f"{STATE_DIR}/env"
PRIVATE_FILE_MODE = "0600"
PRIVATE_DIR_MODE = "0700"


def in_sandbox(path: str | None) -> str:
    """``path`` as the absolute path it names in a sandbox: a relative one is under :data:`HOME`
    (where Daytona's toolbox resolves it too), none is :data:`HOME` itself."""
    if not path:
        return HOME
    return posixpath.normpath(path if path.startswith("/") else f"{HOME}/{path}")


@dataclass(frozen=True)
class SecretSpec:
    """One configured secret reference; ``target`` is the variable name or the file path."""

    kind: str  # "env" or "file"
    target: str
    secret: str
    key: str


@dataclass(frozen=True)
class ResolvedSecret:
    spec: SecretSpec
    value: str

    def __repr__(self) -> str:
        return f"ResolvedSecret(spec={self.spec!r}, value=<hidden>)"


def resolve_secrets(specs: Sequence[SecretSpec], provider: SecretsProvider) -> list[ResolvedSecret]:
    """Every secret's value, or a ComponentError naming each missing secret and key."""
    resolved: list[ResolvedSecret] = []
    missing: list[str] = []
    for spec in specs:
        try:
            resolved.append(ResolvedSecret(spec, provider.get(spec.secret, spec.key)))
        except SecretNotFoundError as error:
            missing.append(str(error))
    if missing:
        raise ComponentError("cannot resolve secrets: " + "; ".join(missing))
    return resolved


def encode_secret_refs(specs: Sequence[SecretSpec]) -> str:
    """``[["secret", "key"], ...]`` as compact JSON, the value of :data:`SECRET_REFS_LABEL`."""
    pairs = sorted({(spec.secret, spec.key) for spec in specs})
    return json.dumps([list(pair) for pair in pairs], separators=(",", ":"))


async def injected_secret_values(
    client: DaytonaClient, sandbox_id: str, provider: SecretsProvider
) -> list[str]:
    """Values of the secrets injected into the sandbox, to mask them in reported output.

    A sandbox that is gone, a label that is not ours, or a secret the provider no longer holds
    masks nothing more. A sandbox that cannot be read (Daytona failing after retries) is an
    error: reporting output that may hold unmasked secrets would be worse than failing the node.
    """
    try:
        labels = (await client.get_sandbox(sandbox_id)).labels
    except DaytonaNotFoundError:
        return []
    except DaytonaError as error:
        raise ComponentError(
            f"cannot read which secrets sandbox {sandbox_id} holds, to mask them in its output: {error}"
        ) from None
    try:
        pairs = json.loads(labels.get(SECRET_REFS_LABEL, "[]"))
    except ValueError:
        return []
    values: list[str] = []
    for pair in pairs if isinstance(pairs, list) else []:
        if isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair):
            with contextlib.suppress(SecretNotFoundError):
                values.append(provider.get(pair[0], pair[1]))
    return values


def env_file_content(secrets: Sequence[ResolvedSecret]) -> str:
    lines = [
        f"export {item.spec.target}={shlex.quote(item.value)}" for item in secrets if item.spec.kind == "env"
    ]
    return "".join(line + "\n" for line in lines)


async def inject_secrets(client: DaytonaClient, sandbox_id: str, secrets: Sequence[ResolvedSecret]) -> None:
    """Write the secrets into the sandbox: env ones into :data:`ENV_FILE`, file ones at their paths."""
    if not secrets:
        return
    await client.create_folder(sandbox_id, STATE_DIR, PRIVATE_DIR_MODE)
    env_content = env_file_content(secrets)
    if env_content:
        await _write_private(client, sandbox_id, ENV_FILE, env_content.encode())
    for item in secrets:
        if item.spec.kind == "file":
            parent = posixpath.dirname(item.spec.target) or "/"
            await client.create_folder(sandbox_id, parent, PRIVATE_DIR_MODE)
            await _write_private(client, sandbox_id, item.spec.target, item.value.encode())


async def _write_private(client: DaytonaClient, sandbox_id: str, path: str, content: bytes) -> None:
    await client.upload_file(sandbox_id, path, content)
    try:
        await client.set_permissions(sandbox_id, path, PRIVATE_FILE_MODE)
    except DaytonaApiError as error:
        # Toolboxes without the permissions endpoint (404/405/501): chmod inside the sandbox instead.
        if error.status not in (404, 405, 501):
            raise
        command = f"chmod {PRIVATE_FILE_MODE} -- {shlex.quote(path)}"
        answer = await client.execute(sandbox_id, command, timeout_seconds=30, idempotent=True)
        if answer.exit_code != 0:
            raise ComponentError(f"cannot make {path} private (chmod exited {answer.exit_code})") from None


def with_sandbox_env(script: str) -> str:
    """``script`` preceded by sourcing the sandbox env file when it exists."""
    quoted = shlex.quote(ENV_FILE)
    return f"if [ -r {quoted} ]; then . {quoted}; fi\n{script}"


def bash(script: str) -> str:
    """A command running ``script`` in its own bash, so ``exit`` or ``cd`` cannot leak into the session."""
    return "bash -c " + shlex.quote(script)


def with_timeout(command: str, seconds: float | None, kill_after: int = 5) -> str:
    """``command`` under coreutils ``timeout``, which kills its whole process group inside the sandbox."""
    if seconds is None:
        return command
    return f"timeout -k {kill_after} {seconds:g} {command}"
