"""Secrets providers: file, environment and chained; errors name the secret and key, never a value."""

from __future__ import annotations

import json

import pytest

from daytonaflow.errors import SecretNotFoundError
from daytonaflow.secrets import (
    ChainedSecretsProvider,
    EnvSecretsProvider,
    FileSecretsProvider,
    SecretsFileError,
    default_secrets_provider,
    env_variable_name,
)


@pytest.fixture
def secrets_file(tmp_path):
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps({"api-key-secret": {"API_KEY": "from-file"}}))
    return path


def test_the_file_provider_reads_secret_keys(secrets_file):
    assert FileSecretsProvider(secrets_file).get("api-key-secret", "API_KEY") == "from-file"


def test_a_missing_key_names_the_secret_and_key_but_no_value(secrets_file):
    with pytest.raises(SecretNotFoundError) as failure:
        FileSecretsProvider(secrets_file).get("api-key-secret", "OTHER")
    assert 'secret "api-key-secret" has no key "OTHER"' in str(failure.value)
    assert "from-file" not in str(failure.value)


def test_a_missing_file_holds_no_secrets(tmp_path):
    with pytest.raises(SecretNotFoundError):
        FileSecretsProvider(tmp_path / "absent.json").get("a", "b")


def test_a_malformed_file_is_reported_without_its_content(tmp_path):
    path = tmp_path / "secrets.json"
    path.write_text('{"s": {"k": "leaky-value"')
    with pytest.raises(SecretsFileError) as failure:
        FileSecretsProvider(path).get("s", "k")
    assert "leaky-value" not in str(failure.value)


def test_a_file_of_the_wrong_shape_is_rejected(tmp_path):
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps({"s": "flat-value"}))
    with pytest.raises(SecretsFileError, match="must be a JSON object"):
        FileSecretsProvider(path).get("s", "k")


def test_env_variable_names_are_upper_cased_with_underscores():
    assert env_variable_name("api-key-secret", "API_KEY") == "DAYTONAFLOW_SECRET_API_KEY_SECRET_API_KEY"
    assert env_variable_name("github", "token.v2") == "DAYTONAFLOW_SECRET_GITHUB_TOKEN_V2"


def test_the_env_provider_reads_prefixed_variables():
    provider = EnvSecretsProvider({"DAYTONAFLOW_SECRET_GITHUB_TOKEN": "ghp_x"})
    assert provider.get("github", "token") == "ghp_x"
    with pytest.raises(SecretNotFoundError, match="DAYTONAFLOW_SECRET_GITHUB_OTHER is not set"):
        provider.get("github", "other")


def test_the_chain_returns_the_first_provider_holding_the_key(secrets_file):
    chain = ChainedSecretsProvider(
        EnvSecretsProvider({"DAYTONAFLOW_SECRET_API_KEY_SECRET_API_KEY": "from-env"}),
        FileSecretsProvider(secrets_file),
    )
    assert chain.get("api-key-secret", "API_KEY") == "from-env"
    assert (
        ChainedSecretsProvider(EnvSecretsProvider({}), FileSecretsProvider(secrets_file)).get(
            "api-key-secret", "API_KEY"
        )
        == "from-file"
    )


def test_the_chain_reports_every_place_it_looked():
    chain = ChainedSecretsProvider(EnvSecretsProvider({}), FileSecretsProvider("/nonexistent/secrets.json"))
    with pytest.raises(SecretNotFoundError) as failure:
        chain.get("db", "password")
    message = str(failure.value)
    assert 'secret "db" key "password" not found' in message
    assert "DAYTONAFLOW_SECRET_DB_PASSWORD" in message
    assert "/nonexistent/secrets.json" in message


def test_the_default_provider_honours_the_secrets_file_variable(secrets_file):
    provider = default_secrets_provider({"DAYTONAFLOW_SECRETS_FILE": str(secrets_file)})
    assert provider.get("api-key-secret", "API_KEY") == "from-file"


def test_a_secrets_file_nested_too_deeply_is_a_clear_error_without_content(tmp_path):
    path = tmp_path / "secrets.json"
    path.write_text('{"s": ' * 5000 + '"hidden-value"' + "}" * 5000)
    with pytest.raises(
        SecretsFileError, match=f"secrets file {path}: nested deeper than the limit"
    ) as failure:
        FileSecretsProvider(path).get("s", "k")
    assert "hidden-value" not in str(failure.value)


def test_a_secrets_file_that_is_a_device_is_read_with_a_bound(tmp_path):
    with pytest.raises(SecretsFileError, match="secrets file /dev/zero: larger than the limit of 16 MiB"):
        FileSecretsProvider("/dev/zero").get("s", "k")


def test_a_secrets_file_that_is_not_utf8_names_the_offset_not_the_bytes(tmp_path):
    path = tmp_path / "secrets.json"
    path.write_bytes(b'{"s": {"k": "caf\xe9-secret"}}')
    with pytest.raises(
        SecretsFileError, match="not UTF-8 text \\(invalid byte 0xe9 at offset 16\\)"
    ) as failure:
        FileSecretsProvider(path).get("s", "k")
    assert "caf" not in str(failure.value)
