"""Secrets providers: where a secret reference (secret name + key) gets its value at run time.

Configurations never hold secret values, only references such as
``{"secret": "api-key-secret", "key": "API_KEY"}``. A provider resolves them when a component
runs. Two providers cover local use and they chain:

* :class:`FileSecretsProvider` reads a JSON file ``{"secretName": {"key": "value"}}``
  (default ``~/.config/daytonaflow/secrets.json``, overridden by ``DAYTONAFLOW_SECRETS_FILE``);
* :class:`EnvSecretsProvider` reads ``DAYTONAFLOW_SECRET_<NAME>_<KEY>`` (upper-cased, every
  character that is not a letter or digit replaced by ``_``).

Errors name the secret and the key, never a value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from daytonaflow import documents
from daytonaflow.component import SecretsProvider
from daytonaflow.errors import DaytonaflowError, SecretNotFoundError

SECRETS_FILE_ENV = "DAYTONAFLOW_SECRETS_FILE"
ENV_PREFIX = "DAYTONAFLOW_SECRET_"
DEFAULT_SECRETS_FILE = Path("~/.config/daytonaflow/secrets.json")

__all__ = [
    "DEFAULT_SECRETS_FILE",
    "ENV_PREFIX",
    "SECRETS_FILE_ENV",
    "ChainedSecretsProvider",
    "EnvSecretsProvider",
    "FileSecretsProvider",
    "SecretsFileError",
    "default_secrets_provider",
    "env_variable_name",
]


class SecretsFileError(DaytonaflowError):
    """The secrets file exists but is not a JSON object of objects of strings."""


def _not_found(secret: str, key: str, where: str) -> SecretNotFoundError:
    return SecretNotFoundError(f'secret "{secret}" has no key "{key}" ({where})')


class FileSecretsProvider:
    """Secrets from a JSON file; a missing file simply holds no secrets.

    The file is read on every lookup so that edits apply to the next run without a restart;
    secrets files are small and lookups are rare (a few per node execution).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            # Errors name the file and a position, never its content.
            document = documents.load_json_file(self.path, source=f"secrets file {self.path}")
        except FileNotFoundError:
            return {}
        except documents.DocumentError as error:
            raise SecretsFileError(str(error)) from None
        if not isinstance(document, dict) or not all(
            isinstance(entries, dict) and all(isinstance(value, str) for value in entries.values())
            for entries in document.values()
        ):
            raise SecretsFileError(
                f'secrets file {self.path} must be a JSON object {{"secretName": {{"key": "value"}}}}'
            )
        return document

    def get(self, secret: str, key: str) -> str:
        entries = self._load().get(secret)
        if entries is None or key not in entries:
            raise _not_found(secret, key, f"secrets file {self.path}")
        return entries[key]


def env_variable_name(secret: str, key: str) -> str:
    """``DAYTONAFLOW_SECRET_<NAME>_<KEY>`` with every non-alphanumeric character as ``_``."""
    raw = f"{secret}_{key}".upper()
    return ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", raw)


class EnvSecretsProvider:
    """Secrets from environment variables (``DAYTONAFLOW_SECRET_<NAME>_<KEY>``)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def get(self, secret: str, key: str) -> str:
        variable = env_variable_name(secret, key)
        value = self._environ.get(variable)
        if value is None:
            raise _not_found(secret, key, f"environment variable {variable} is not set")
        return value


class ChainedSecretsProvider:
    """Asks each provider in turn; the first that holds the secret key wins."""

    def __init__(self, *providers: SecretsProvider) -> None:
        self.providers = providers

    def get(self, secret: str, key: str) -> str:
        misses: list[str] = []
        for provider in self.providers:
            try:
                return provider.get(secret, key)
            except SecretNotFoundError as error:
                misses.append(str(error))
        detail = "; ".join(misses) if misses else "no secrets provider configured"
        raise SecretNotFoundError(f'secret "{secret}" key "{key}" not found: {detail}')


def default_secrets_provider(environ: Mapping[str, str] | None = None) -> ChainedSecretsProvider:
    """Environment first (easy per-run overrides), then the secrets file."""
    env = os.environ if environ is None else environ
    path = env.get(SECRETS_FILE_ENV) or str(DEFAULT_SECRETS_FILE)
    return ChainedSecretsProvider(EnvSecretsProvider(env), FileSecretsProvider(path))
