"""Field specs shared by several components (sandbox reference, env lists, secrets, output limit)."""

from __future__ import annotations

from daytonaflow.components.fields import Field, Option, When

ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
ENV_NAME_RULE = "be a valid environment variable name (letters, digits and _, not starting with a digit)"
DEFAULT_OUTPUT_LIMIT_BYTES = 1024 * 1024

SANDBOX = Field(
    "sandbox",
    "string",
    "Sandbox",
    'The sandbox ID or name, usually from a createSandbox node: {{ $["daytona.createSandbox"].data.id }}',
    placeholder='{{ $["daytona.createSandbox"].data.id }}',
    required=True,
)


def env_list(description: str) -> Field:
    return Field(
        "env",
        "list",
        "Environment Variables",
        description,
        item=Field(
            "variable",
            "object",
            "Variable",
            fields=(
                Field(
                    "name",
                    "string",
                    "Name",
                    placeholder="NODE_ENV",
                    required=True,
                    pattern=ENV_NAME_PATTERN,
                    pattern_rule=ENV_NAME_RULE,
                ),
                Field("value", "string", "Value", placeholder="production", default=""),
            ),
        ),
    )


SNAPSHOT = Field(
    "snapshot",
    "string",
    "Snapshot",
    "Base environment snapshot; Daytona's default snapshot when empty.",
    placeholder="daytonaio/sandbox:latest",
)
TARGET = Field(
    "target",
    "string",
    "Target",
    "Target region for the sandbox; the integration's DAYTONA_TARGET (or Daytona's default) when empty.",
    placeholder="us",
)
AUTO_STOP_INTERVAL = Field(
    "autoStopInterval",
    "number",
    "Auto Stop Interval",
    "Minutes of inactivity before the sandbox stops (0 disables auto-stop).",
    default=15,
    minimum=0,
)
PUBLIC = Field(
    "public",
    "boolean",
    "Public Previews",
    "Whether the sandbox's preview URLs open without a token.",
    default=False,
)
LABELS = Field(
    "labels",
    "list",
    "Labels",
    "Labels set on the sandbox (visible in Daytona's dashboard and usable as filters).",
    item=Field(
        "label",
        "object",
        "Label",
        fields=(
            Field("key", "string", "Key", placeholder="team", required=True),
            Field("value", "string", "Value", placeholder="platform", default=""),
        ),
    ),
)

SECRET_TYPES = (Option("env", "Environment variable"), Option("file", "File"))

SECRETS = Field(
    "secrets",
    "list",
    "Secrets",
    "Secret references resolved at run time and written into the sandbox after it starts: "
    "as a file (mode 600) or as an environment variable every later execute step sees. "
    "Values never appear in payloads, logs or errors.",
    item=Field(
        "secret",
        "object",
        "Secret",
        fields=(
            Field(
                "type",
                "select",
                "Inject As",
                options=SECRET_TYPES,
                aliases=("env-var",),
                default="env",
                expressions=False,
            ),
            Field(
                "name",
                "string",
                "Variable Name",
                "Environment variable that receives the value.",
                placeholder="API_KEY",
                pattern=ENV_NAME_PATTERN,
                pattern_rule=ENV_NAME_RULE,
                visible_when=(When("type", ("env", "env-var")),),
                required_when=(When("type", ("env", "env-var")),),
                expressions=False,
            ),
            Field(
                "path",
                "string",
                "File Path",
                "Absolute path of the file that receives the value.",
                placeholder="/home/daytona/.config/token",
                pattern=r"^/",
                pattern_rule="be an absolute path",
                visible_when=(When("type", ("file",)),),
                required_when=(When("type", ("file",)),),
                expressions=False,
            ),
            Field(
                "value",
                "object",
                "Secret Value",
                "Which secret and which of its keys holds the value.",
                required=True,
                expressions=False,
                fields=(
                    Field("secret", "string", "Secret", placeholder="api-key-secret", required=True),
                    Field("key", "string", "Key", placeholder="API_KEY", required=True),
                ),
            ),
        ),
    ),
)


#: The sandbox settings both sandbox-creating components offer, in form order.
SANDBOX_CREATION_FIELDS = (
    SNAPSHOT,
    TARGET,
    AUTO_STOP_INTERVAL,
    env_list("Name/value pairs set as environment variables of the sandbox."),
    SECRETS,
    PUBLIC,
    LABELS,
)


def output_limit(default: int = DEFAULT_OUTPUT_LIMIT_BYTES) -> Field:
    return Field(
        "maxOutputBytes",
        "number",
        "Output Limit (bytes)",
        "Largest output kept in the payload; longer output keeps its beginning and end around a "
        "truncation marker.",
        default=default,
        minimum=1024,
        maximum=64 * 1024 * 1024,
    )
