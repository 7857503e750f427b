"""A component's configuration, declared once: a pydantic model whose fields carry their form specs.

Each configuration field is one annotated attribute of the component's config model::

    command: Annotated[str, Spec("Command", "The shell command to run.", kind="text")]

From that single declaration come the typed config the component reads (the model), and the
:class:`~daytonaflow.components._fields.Field` list behind the canvas form, the JSON Schema and
the setup-time validator (:func:`fields_of`). Wire names are the camelCase of the attribute
names (``max_output_bytes`` is ``maxOutputBytes``); the field type, whether it is required and
its default are read from the annotation and the model's default.

The pieces several components share (sandbox reference, environment variables, labels,
secrets, the sandbox settings of the two creating components, the output limit) live here too.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict
from pydantic import Field as ModelField
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from daytonaflow.components._fields import MISSING, Field, FieldType, Option, When
from daytonaflow.components._sandbox_env import SECRET_REFS_LABEL, SecretSpec, encode_secret_refs

ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
ENV_NAME_RULE = "be a valid environment variable name (letters, digits and _, not starting with a digit)"
DEFAULT_OUTPUT_LIMIT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Spec:
    """How one config field is shown and checked, beyond what its annotation and default say."""

    label: str
    description: str = ""
    #: ``text`` or ``code`` for multi-line strings; otherwise inferred from the annotation.
    kind: FieldType | None = None
    placeholder: str | None = None
    sensitive: bool = False
    togglable: bool = False
    options: tuple[Option, ...] = ()
    aliases: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    pattern: str | None = None
    pattern_rule: str | None = None
    visible_when: tuple[When, ...] = ()
    required_when: tuple[When, ...] = ()
    language: str | None = None
    expressions: bool = True
    #: List fields: the name and label of one item.
    item: tuple[str, str] | None = None


#: What a :class:`Spec` says that a :class:`Field` says the same way.
_SPEC_ATTRIBUTES = tuple(
    field.name for field in dataclasses.fields(Spec) if field.name not in ("kind", "item")
)


class ConfigPart(BaseModel):
    """A typed piece of configuration, built from a validated, defaults-applied configuration."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True, alias_generator=to_camel)


class ComponentConfig(ConfigPart):
    """Base of the components' config models."""


# --- deriving the field specs -------------------------------------------------------------------


@cache
def fields_of(model: type[BaseModel]) -> tuple[Field, ...]:
    """The field specs of ``model``, in declaration order (a base's fields before its subclass's)."""
    return tuple(_field(name, info) for name, info in model.model_fields.items())


def _field(name: str, info: FieldInfo) -> Field:
    spec = next((item for item in info.metadata if isinstance(item, Spec)), None)
    if spec is None:
        raise TypeError(f"config field {name!r} has no Spec: annotate it as Annotated[type, Spec(...)]")
    annotation, optional = _unwrap_optional(info.annotation)
    field_type, item, nested = _shape(name, spec, annotation)
    default = info.default
    # None and empty lists are "not set"; only real values are defaults the form and schema show.
    has_default = default is not PydanticUndefined and default is not None and not info.default_factory
    # The spec's form attributes carry over as they are; the rest comes from the annotation.
    shown = {key: getattr(spec, key) for key in _SPEC_ATTRIBUTES}
    return Field(
        name=info.alias or to_camel(name),
        type=field_type,
        default=default if has_default else MISSING,
        required=info.is_required() and not optional and not spec.required_when,
        integer=annotation is not float,
        item=item,
        fields=nested,
        **shown,
    )


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (Union, types.UnionType):
        members = [member for member in get_args(annotation) if member is not type(None)]
        if len(members) == 1:
            return members[0], True
    return annotation, False


def _shape(name: str, spec: Spec, annotation: Any) -> tuple[FieldType, Field | None, tuple[Field, ...]]:
    """The field type, the item spec of a list and the nested specs of an object."""
    if spec.options or get_origin(annotation) is Literal:
        return "select", None, ()
    if annotation is bool:
        return "boolean", None, ()
    if annotation in (int, float):
        return "number", None, ()
    if annotation is str:
        return spec.kind or "string", None, ()
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object", None, fields_of(annotation)
    if get_origin(annotation) is list:
        (member,) = get_args(annotation)
        if spec.item is None:
            raise TypeError(f"list field {name!r} needs Spec(item=(name, label))")
        item_name, item_label = spec.item
        if member is str:
            return "list", Field(item_name, "string", item_label, required=True), ()
        if not (isinstance(member, type) and issubclass(member, BaseModel)):
            raise TypeError(f"list field {name!r} needs a model or str item type")
        return "list", Field(item_name, "object", item_label, fields=fields_of(member)), ()
    raise TypeError(f"config field {name!r} has an unsupported type {annotation!r}")


# --- pieces several components share -------------------------------------------------------------

SandboxRef = Annotated[
    str,
    Spec(
        "Sandbox",
        'The sandbox ID or name, usually from a createSandbox node: {{ $["daytona.createSandbox"].data.id }}',
        placeholder='{{ $["daytona.createSandbox"].data.id }}',
    ),
]


OutputLimit = Annotated[
    int,
    Spec(
        "Output Limit (bytes)",
        "Largest output kept in the payload; longer output keeps its beginning and end around a "
        "truncation marker.",
        minimum=1024,
        maximum=64 * 1024 * 1024,
    ),
]


class EnvVar(ConfigPart):
    name: Annotated[
        str, Spec("Name", placeholder="NODE_ENV", pattern=ENV_NAME_PATTERN, pattern_rule=ENV_NAME_RULE)
    ]
    value: Annotated[str, Spec("Value", placeholder="production")] = ""


#: The sandbox's environment variables (executeCommand has its own list, described for a command).
SandboxEnv = Annotated[
    list[EnvVar],
    Spec(
        "Environment Variables",
        "Name/value pairs set as environment variables of the sandbox.",
        item=("variable", "Variable"),
    ),
]


class Label(ConfigPart):
    key: Annotated[str, Spec("Key", placeholder="team")]
    value: Annotated[str, Spec("Value", placeholder="platform")] = ""


class SecretValueRef(ConfigPart):
    secret: Annotated[str, Spec("Secret", placeholder="api-key-secret")]
    key: Annotated[str, Spec("Key", placeholder="API_KEY")]


SECRET_TYPES = (Option("env", "Environment variable"), Option("file", "File"))
#: Daytona's networkAllowList: IPv4 CIDR blocks, comma-separated.
_CIDR = r"(?:\d{1,3}\.){3}\d{1,3}/\d{1,2}"
_CIDR_LIST = rf"^\s*{_CIDR}(?:\s*,\s*{_CIDR})*\s*$"
#: A path inside a volume: relative, and never climbing out of it.
_VOLUME_SUBPATH = r"^(?!/)(?!.*(?:^|/)\.\.(?:/|$)).+$"
#: Where a volume is mounted: absolute, below the root, never through ``..``.
_MOUNT_PATH = r"^/(?!.*(?:^|/)\.\.(?:/|$)).+$"
_AS_ENV = (When("type", ("env", "env-var")),)
_AS_FILE = (When("type", ("file",)),)


class SecretConfig(ConfigPart):
    type: Annotated[str, Spec("Inject As", options=SECRET_TYPES, aliases=("env-var",), expressions=False)] = (
        "env"
    )
    name: Annotated[
        str | None,
        Spec(
            "Variable Name",
            "Environment variable that receives the value.",
            placeholder="API_KEY",
            pattern=ENV_NAME_PATTERN,
            pattern_rule=ENV_NAME_RULE,
            visible_when=_AS_ENV,
            required_when=_AS_ENV,
            expressions=False,
        ),
    ] = None
    path: Annotated[
        str | None,
        Spec(
            "File Path",
            "Absolute path of the file that receives the value.",
            placeholder="/home/daytona/.config/token",
            pattern=r"^/",
            pattern_rule="be an absolute path",
            visible_when=_AS_FILE,
            required_when=_AS_FILE,
            expressions=False,
        ),
    ] = None
    value: Annotated[
        SecretValueRef,
        Spec("Secret Value", "Which secret and which of its keys holds the value.", expressions=False),
    ]

    @property
    def kind(self) -> str:
        return "file" if self.type == "file" else "env"

    def spec(self) -> SecretSpec:
        target = self.path if self.kind == "file" else self.name
        assert target is not None, "validated: name or path is present for its type"
        return SecretSpec(self.kind, target, self.value.secret, self.value.key)

    def reference(self) -> dict[str, Any]:
        """The reference as emitted in payloads: no value, only where it comes from and goes to."""
        return self.model_dump(exclude_none=True, by_alias=True)


class VolumeMount(ConfigPart):
    volume: Annotated[
        str,
        Spec(
            "Volume",
            "The volume's name or ID, e.g. from a createVolume node: "
            '{{ $["daytona.createVolume"].data.id }}',
            placeholder="build-cache",
        ),
    ]
    mount_path: Annotated[
        str,
        Spec(
            "Mount Path",
            "Where the volume appears in the sandbox (read-write).",
            placeholder="/home/daytona/cache",
            pattern=_MOUNT_PATH,
            pattern_rule="be an absolute path below / (without ..)",
        ),
    ]
    subpath: Annotated[
        str | None,
        Spec(
            "Subpath",
            "A directory inside the volume to mount instead of the whole volume.",
            placeholder="users/alice",
            pattern=_VOLUME_SUBPATH,
            pattern_rule="be a relative path inside the volume",
        ),
    ] = None

    def request(self, volume_id: str) -> dict[str, str]:
        """This mount as an item of the create body's ``volumes``."""
        item = {"volumeId": volume_id, "mountPath": self.mount_path}
        if self.subpath:
            item["subpath"] = self.subpath
        return item


#: Create-body fields sent as configured when set, Daytona's (or the snapshot's) default otherwise.
_OPTIONAL_CREATE_FIELDS = ("cpu", "memory", "disk", "auto_archive_interval", "auto_delete_interval")


class SandboxCreationConfig(ComponentConfig):
    """The sandbox settings both sandbox-creating components offer, in form order."""

    snapshot: Annotated[
        str | None,
        Spec(
            "Snapshot",
            "Base environment snapshot; Daytona's default snapshot when empty.",
            placeholder="daytonaio/sandbox:latest",
        ),
    ] = None
    target: Annotated[
        str | None,
        Spec(
            "Target",
            "Target region for the sandbox; the integration's DAYTONA_TARGET (or Daytona's default) "
            "when empty.",
            placeholder="us",
        ),
    ] = None
    auto_stop_interval: Annotated[
        int,
        Spec(
            "Auto Stop Interval",
            "Minutes of inactivity before the sandbox stops (0 disables auto-stop).",
            minimum=0,
        ),
    ] = 15
    auto_archive_interval: Annotated[
        int | None,
        Spec(
            "Auto Archive Interval",
            "Minutes a stopped sandbox waits before it is archived (0: the longest Daytona allows); "
            "Daytona's default (7 days) when empty.",
            minimum=0,
        ),
    ] = None
    auto_delete_interval: Annotated[
        int | None,
        Spec(
            "Auto Delete Interval",
            "Minutes a stopped sandbox waits before it is deleted (0: as soon as it stops, -1: never); "
            "never when empty.",
            minimum=-1,
        ),
    ] = None
    cpu: Annotated[
        int | None,
        Spec("CPU (cores)", "CPU cores of the sandbox; the snapshot's default when empty.", minimum=1),
    ] = None
    memory: Annotated[
        int | None,
        Spec("Memory (GiB)", "Memory of the sandbox in GiB; the snapshot's default when empty.", minimum=1),
    ] = None
    disk: Annotated[
        int | None,
        Spec("Disk (GiB)", "Disk of the sandbox in GiB; the snapshot's default when empty.", minimum=1),
    ] = None
    env: SandboxEnv = ModelField(default_factory=list)
    secrets: Annotated[
        list[SecretConfig],
        Spec(
            "Secrets",
            "Secret references resolved at run time and written into the sandbox after it starts: "
            "as a file (mode 600) or as an environment variable every later execute step sees. "
            "Values never appear in payloads, logs or errors.",
            item=("secret", "Secret"),
        ),
    ] = ModelField(default_factory=list)
    public: Annotated[
        bool, Spec("Public Previews", "Whether the sandbox's preview URLs open without a token.")
    ] = False
    labels: Annotated[
        list[Label],
        Spec(
            "Labels",
            "Labels set on the sandbox (visible in Daytona's dashboard and usable as filters).",
            item=("label", "Label"),
        ),
    ] = ModelField(default_factory=list)
    network: Annotated[
        Literal["default", "allow", "block"],
        Spec(
            "Network",
            "Outbound network from the sandbox: the backend's default (Daytona's cloud allows it, the "
            "local server blocks it), allowed (to the allow list when one is given), or blocked.",
            options=(
                Option("default", "Backend default"),
                Option("allow", "Allow"),
                Option("block", "Block all"),
            ),
        ),
    ] = "default"
    network_allow_list: Annotated[
        str | None,
        Spec(
            "Network Allow List",
            "Comma-separated IPv4 CIDR blocks the sandbox may reach (and nothing else).",
            placeholder="10.0.0.0/8,192.168.1.0/24",
            pattern=_CIDR_LIST,
            pattern_rule="a comma-separated list of IPv4 CIDR blocks such as 10.0.0.0/8",
            visible_when=(When("network", ("allow",)),),
        ),
    ] = None
    volumes: Annotated[
        list[VolumeMount],
        Spec(
            "Volumes",
            "Volumes mounted read-write into the sandbox (shared with every sandbox that mounts them, "
            "kept when the sandbox is deleted); a name is looked up before the create.",
            item=("volume", "Volume"),
        ),
    ] = ModelField(default_factory=list)
    preview_port: Annotated[
        int | None,
        Spec(
            "Preview Port",
            "A sandbox port whose preview URL the output carries (previewUrl, and the previewToken "
            "its requests need unless previews are public).",
            minimum=1,
            maximum=65535,
        ),
    ] = None

    def create_request(self, default_target: str | None, volume_ids: Sequence[str] = ()) -> dict[str, Any]:
        """The body of ``POST /sandbox`` (secrets are injected later, never sent here).

        ``volume_ids`` are the IDs of :attr:`volumes`, in order (names looked up by the caller).
        """
        body: dict[str, Any] = {"autoStopInterval": self.auto_stop_interval, "public": self.public}
        for name in _OPTIONAL_CREATE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                body[to_camel(name)] = value
        if self.snapshot:
            body["snapshot"] = self.snapshot
        target = self.target or default_target
        if target:
            body["target"] = target
        if self.env:
            body["env"] = {variable.name: variable.value for variable in self.env}
        labels = {label.key: label.value for label in self.labels}
        if self.secrets:
            labels[SECRET_REFS_LABEL] = encode_secret_refs(self.secret_specs())
        if labels:
            body["labels"] = labels
        if self.network == "block":
            body["networkBlockAll"] = True
        elif self.network == "allow":
            body["networkBlockAll"] = False
            if self.network_allow_list:
                body["networkAllowList"] = self.network_allow_list
        if self.volumes:
            body["volumes"] = [
                mount.request(volume_id) for mount, volume_id in zip(self.volumes, volume_ids, strict=True)
            ]
        return body

    def secret_specs(self) -> list[SecretSpec]:
        return [secret.spec() for secret in self.secrets]
