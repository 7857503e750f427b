"""Setup-time validation: every rule the seed implies, named by field path, before any API call.

Each case is also checked against the generated JSON Schema: the schema and the validator come
from the same field specs and must agree on what is valid.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from daytonaflow.components import (
    CreateRepositorySandbox,
    CreateSandbox,
    DeleteSandbox,
    ExecuteCode,
    ExecuteCommand,
    GetPreviewUrl,
)
from daytonaflow.errors import ConfigIssue

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "config"
SANDBOX = "sandbox-abc123def456"
REPO = "https://github.com/superplanehq/example-app.git"
SECRET = {"name": "API_KEY", "type": "env", "value": {"key": "API_KEY", "secret": "api-key-secret"}}


def issues(component, config, *, allow_expressions=False):
    return [str(issue) for issue in component.validate_config(config, allow_expressions=allow_expressions)]


def schema_accepts(component, config) -> bool:
    schema = json.loads((SCHEMAS / f"{component.name}.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema).is_valid(config)


INVALID = [
    (CreateRepositorySandbox, {}, "repository is required"),
    (CreateRepositorySandbox, {"repository": "not a url"}, "repository must be a repository URL"),
    (CreateRepositorySandbox, {"repository": "ftp://host/x.git"}, "repository must be a repository URL"),
    (
        CreateRepositorySandbox,
        {"repository": REPO, "bootstrap": {"from": "file"}},
        'bootstrap.path is required when bootstrap.from is "file"',
    ),
    (
        CreateRepositorySandbox,
        {"repository": REPO, "bootstrap": {"from": "inline"}},
        'bootstrap.script is required when bootstrap.from is "inline"',
    ),
    (
        CreateRepositorySandbox,
        {"repository": REPO, "bootstrap": {}},
        'bootstrap.script is required when bootstrap.from is "inline"',
    ),
    (
        CreateRepositorySandbox,
        {"repository": REPO, "bootstrap": {"from": "url", "path": "x"}},
        'bootstrap.from must be one of "inline", "file"',
    ),
    (
        CreateRepositorySandbox,
        {"repository": REPO, "bootstrap": {"from": "file", "path": "/etc/passwd"}},
        "bootstrap.path must be a relative path inside the repository",
    ),
    (
        CreateRepositorySandbox,
        {"repository": REPO, "bootstrap": {"from": "file", "path": "../outside.sh"}},
        "bootstrap.path must be a relative path inside the repository",
    ),
    (CreateRepositorySandbox, {"repository": REPO, "timeout": 0}, "timeout must be between 1 and 86400"),
    (CreateSandbox, {"autoStopInterval": -1}, "autoStopInterval must be at least 0"),
    (CreateSandbox, {"autoStopInterval": 1.5}, "autoStopInterval must be a whole number"),
    (CreateSandbox, {"autoStopInterval": "15"}, "autoStopInterval must be a whole number"),
    (
        CreateSandbox,
        {"env": [{"name": "1BAD", "value": "x"}]},
        "env.0.name must be a valid environment variable",
    ),
    (CreateSandbox, {"env": [{"name": "MY-VAR"}]}, "env.0.name must be a valid environment variable"),
    (CreateSandbox, {"env": [{"value": "x"}]}, "env.0.name is required"),
    (CreateSandbox, {"env": {"A": "b"}}, "env must be a list"),
    (
        CreateSandbox,
        {"secrets": [{"type": "vault", "name": "A", "value": SECRET["value"]}]},
        "secrets.0.type must be one of",
    ),
    (
        CreateSandbox,
        {"secrets": [{"type": "env", "value": SECRET["value"]}]},
        'secrets.0.name is required when secrets.0.type is one of "env", "env-var"',
    ),
    (
        CreateSandbox,
        {"secrets": [{"type": "env-var", "value": SECRET["value"]}]},
        'secrets.0.name is required when secrets.0.type is one of "env", "env-var"',
    ),
    (
        CreateSandbox,
        {"secrets": [{"type": "file", "value": SECRET["value"]}]},
        'secrets.0.path is required when secrets.0.type is "file"',
    ),
    (
        CreateSandbox,
        {"secrets": [{"type": "file", "path": "relative/token", "value": SECRET["value"]}]},
        "secrets.0.path must be an absolute path",
    ),
    (CreateSandbox, {"secrets": [{"type": "env", "name": "A"}]}, "secrets.0.value is required"),
    (
        CreateSandbox,
        {"secrets": [{"type": "env", "name": "A", "value": {"key": "k"}}]},
        "secrets.0.value.secret is required",
    ),
    (
        CreateSandbox,
        {"secrets": [{"type": "env", "name": "A", "value": {"secret": "s"}}]},
        "secrets.0.value.key is required",
    ),
    (
        CreateSandbox,
        {"secrets": [{**SECRET, "name": "9x"}]},
        "secrets.0.name must be a valid environment variable",
    ),
    (CreateSandbox, {"public": "yes"}, "public must be true or false"),
    (CreateSandbox, {"labels": [{"value": "x"}]}, "labels.0.key is required"),
    (CreateSandbox, {"snapshot": 3}, "snapshot must be a string"),
    (CreateSandbox, {"unknown": 1}, "unknown is not a known field"),
    (ExecuteCode, {"code": "print(1)"}, "sandbox is required"),
    (ExecuteCode, {"sandbox": SANDBOX}, "code is required"),
    (ExecuteCode, {"sandbox": SANDBOX, "code": ""}, "code must not be empty"),
    (
        ExecuteCode,
        {"sandbox": SANDBOX, "code": "x", "language": "go"},
        'language must be one of "python", "typescript", "javascript"',
    ),
    (ExecuteCode, {"sandbox": SANDBOX, "code": "x", "timeout": 0}, "timeout must be between 1 and 86400000"),
    (ExecuteCommand, {"sandbox": SANDBOX}, "command is required"),
    (
        ExecuteCommand,
        {"sandbox": SANDBOX, "command": "ls", "timeout": 0},
        "timeout must be between 1 and 86400",
    ),
    (
        ExecuteCommand,
        {"sandbox": SANDBOX, "command": "ls", "env": [{"name": "A B"}]},
        "env.0.name must be a valid",
    ),
    (
        ExecuteCommand,
        {"sandbox": SANDBOX, "command": "ls", "waitForPort": 70000},
        "waitForPort must be between 1 and 65535",
    ),
    (GetPreviewUrl, {"sandbox": SANDBOX, "port": 0}, "port must be between 1 and 65535"),
    (GetPreviewUrl, {"sandbox": SANDBOX, "port": 65536}, "port must be between 1 and 65535"),
    (
        GetPreviewUrl,
        {"sandbox": SANDBOX, "expiresInSeconds": 0},
        "expiresInSeconds must be between 1 and 86400",
    ),
    (
        GetPreviewUrl,
        {"sandbox": SANDBOX, "expiresInSeconds": 86401},
        "expiresInSeconds must be between 1 and 86400",
    ),
    (GetPreviewUrl, {"sandbox": SANDBOX, "signed": "true"}, "signed must be true or false"),
    (DeleteSandbox, {}, "sandbox is required"),
    (DeleteSandbox, {"sandbox": SANDBOX, "force": 1}, "force must be true or false"),
]


@pytest.mark.parametrize(("component", "config", "expected"), INVALID)
def test_a_broken_rule_is_reported_with_its_field_path(component, config, expected):
    reported = issues(component, config)
    assert any(issue.startswith(expected) for issue in reported), reported


@pytest.mark.parametrize(("component", "config", "expected"), INVALID)
def test_the_generated_schema_rejects_what_the_validator_rejects(component, config, expected):
    assert not schema_accepts(component, config)


VALID = [
    (CreateSandbox, {}),
    (
        CreateSandbox,
        {
            "snapshot": "python:3.12",
            "target": "us",
            "autoStopInterval": 0,
            "env": [{"name": "NODE_ENV", "value": "production"}, {"name": "_X1"}],
            "secrets": [
                SECRET,
                {"type": "file", "path": "/home/daytona/key", "value": {"secret": "s", "key": "k"}},
            ],
            "public": True,
            "labels": [{"key": "daytona.io/team", "value": "a"}],
        },
    ),
    (
        CreateRepositorySandbox,
        {
            "repository": REPO,
            "bootstrap": {"from": "file", "path": "scripts/bootstrap.sh"},
            "secrets": [SECRET],
            "timeout": 300,
        },
    ),
    (CreateRepositorySandbox, {"repository": "git@github.com:superplanehq/example-app.git"}),
    (CreateRepositorySandbox, {"repository": REPO, "bootstrap": {"script": "npm ci"}}),
    (ExecuteCode, {"sandbox": SANDBOX, "code": 'print("Hello, World!")', "language": "python"}),
    (ExecuteCode, {"sandbox": SANDBOX, "code": "console.log(1)", "language": "typescript", "timeout": 5000}),
    (ExecuteCommand, {"sandbox": SANDBOX, "command": "pip install requests", "cwd": "/tmp", "timeout": 120}),
    (ExecuteCommand, {"sandbox": SANDBOX, "command": "npm start", "background": True, "waitForPort": 3000}),
    (GetPreviewUrl, {"sandbox": SANDBOX}),
    (GetPreviewUrl, {"sandbox": SANDBOX, "port": 3000, "signed": True, "expiresInSeconds": 86400}),
    (DeleteSandbox, {"sandbox": SANDBOX, "force": True}),
]


@pytest.mark.parametrize(("component", "config"), VALID)
def test_valid_configs_pass_both_the_validator_and_the_schema(component, config):
    assert issues(component, config) == []
    assert schema_accepts(component, config)


def test_every_issue_is_reported_not_only_the_first():
    reported = issues(GetPreviewUrl, {"port": 0, "expiresInSeconds": 0})
    assert reported == [
        "sandbox is required",
        "port must be between 1 and 65535",
        "expiresInSeconds must be between 1 and 86400",
    ]


def test_issues_carry_the_dotted_field_path_and_the_rule():
    [issue] = CreateRepositorySandbox.validate_config(
        {"repository": REPO, "bootstrap": {"from": "file"}}, allow_expressions=False
    )
    assert issue == ConfigIssue(field="bootstrap.path", message='is required when bootstrap.from is "file"')


def test_a_repository_must_name_a_directory():
    assert issues(CreateRepositorySandbox, {"repository": "https://github.com/.."}) == [
        "repository must end with a repository name (…/<name>.git)"
    ]


@pytest.mark.parametrize(
    "repository",
    [
        "https://bob:ghp_SECRETTOKEN@github.com/o/app.git",
        "https://ghp_SECRETTOKEN@github.com/o/app.git",
        "ssh://git:ghp_SECRETTOKEN@host/o/app.git",
    ],
)
def test_a_repository_url_carrying_credentials_is_refused_pointing_to_the_github_token_secret(repository):
    assert issues(CreateRepositorySandbox, {"repository": repository}) == [
        "repository must not carry a user or password (scheme://user:password@host): "
        "give a token as a secret named GITHUB_TOKEN in secrets instead"
    ]


def test_an_ssh_repository_url_with_a_user_and_no_password_is_accepted():
    assert issues(CreateRepositorySandbox, {"repository": "ssh://git@host:2222/org/app.git"}) == []


def test_a_component_rule_is_reported_with_the_field_rules_and_never_twice_for_one_field():
    config = {"repository": "https://github.com/..", "timeout": 0, "bootstrap": {"from": "file"}}
    assert issues(CreateRepositorySandbox, config) == [
        'bootstrap.path is required when bootstrap.from is "file"',
        "timeout must be between 1 and 86400",
        "repository must end with a repository name (…/<name>.git)",
    ]
    assert issues(CreateRepositorySandbox, {"repository": "not a url"}) == [
        "repository must be a repository URL (https://host/org/repo.git) or an SCP-style address "
        "(git@host:org/repo.git)"
    ]


@pytest.mark.parametrize(
    ("component", "config"),
    [
        (ExecuteCode, {"sandbox": '{{ $["daytona.createSandbox"].data.id }}', "code": "print(1)"}),
        (GetPreviewUrl, {"sandbox": "s", "port": "{{ $.port }}", "expiresInSeconds": "<< $.ttl >>"}),
        (CreateSandbox, {"env": "{{ $.env }}", "public": "{{ true }}"}),
        (CreateRepositorySandbox, {"repository": "{{ $.repo }}", "bootstrap": {"from": "{{ $.kind }}"}}),
    ],
)
def test_expressions_stand_in_for_any_type_at_canvas_load(component, config):
    assert issues(component, config, allow_expressions=True) == []


def test_expressions_are_checked_once_resolved():
    assert issues(GetPreviewUrl, {"sandbox": "s", "port": "{{ $.port }}"}) == ["port must be a whole number"]


def test_an_escaped_delimiter_is_not_an_expression():
    assert issues(GetPreviewUrl, {"sandbox": "s", "port": "\\{{ 3000 }}"}, allow_expressions=True) == [
        "port must be a whole number"
    ]


def test_the_bootstrap_script_is_a_literal_field():
    assert "bootstrap.script" in CreateRepositorySandbox.literal_fields


@pytest.mark.parametrize("config", [None, [], "sandbox"])
def test_a_configuration_that_is_not_an_object_is_one_issue(config):
    assert issues(DeleteSandbox, config) == ["the configuration must be an object"]


#: Configurations as the seed describes them (expressions included), per component.
SEED_CONFIGURATIONS = {
    "daytona.createSandbox": {"snapshot": "", "target": "", "autoStopInterval": 30, "env": []},
    "daytona.createRepositorySandbox": {
        "repository": "https://github.com/superplanehq/example-app.git",
        "bootstrap": {"from": "file", "path": "scripts/bootstrap.sh"},
        "secrets": [SECRET],
        "timeout": 300,
    },
    "daytona.executeCode": {
        "sandbox": '{{ $["daytona.createSandbox"].data.id }}',
        "code": 'print("Hello, World!")',
        "language": "python",
        "timeout": 30000,
    },
    "daytona.executeCommand": {
        "sandbox": '{{ $["daytona.createSandbox"].data.id }}',
        "command": "pip install requests",
        "cwd": "/home/daytona",
        "env": [{"name": "PIP_NO_CACHE_DIR", "value": "1"}],
        "timeout": 120,
    },
    "daytona.getPreviewUrl": {
        "sandbox": "sandbox-abc123def456",
        "port": 3000,
        "signed": True,
        "expiresInSeconds": 3600,
    },
    "daytona.deleteSandbox": {"sandbox": '{{ $["daytona.createSandbox"].data.id }}', "force": False},
}


@pytest.mark.parametrize("name", sorted(SEED_CONFIGURATIONS))
def test_the_committed_schemas_validate_the_seed_configurations(name):
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(SEED_CONFIGURATIONS[name])


def test_an_execute_code_timeout_under_a_second_is_a_warning_naming_the_unit():
    config = {"sandbox": "s", "code": "print(1)", "timeout": 30}
    (issue,) = ExecuteCode.validate_config(config, allow_expressions=True)
    assert issue.warning and issue.field == "timeout"
    assert "milliseconds" in issue.message and "30000" in issue.message


def test_the_timeout_warning_never_stops_a_run():
    """At run time (resolved configuration) the doubtful value is only a value."""
    config = {"sandbox": "s", "code": "print(1)", "timeout": 30}
    assert ExecuteCode.validate_config(config, allow_expressions=False) == []


def test_a_timeout_of_a_second_or_more_gets_no_warning():
    config = {"sandbox": "s", "code": "print(1)", "timeout": 1000}
    assert ExecuteCode.validate_config(config, allow_expressions=True) == []
