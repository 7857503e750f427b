"""Typed pieces of configuration shared by several components (built after validation)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from daytonaflow.components.base import ComponentConfig
from daytonaflow.components.sandbox_env import SECRET_REFS_LABEL, SecretSpec, encode_secret_refs


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class EnvVar(_Part):
    name: str
    value: str = ""


class Label(_Part):
    key: str
    value: str = ""


class SecretValueRef(_Part):
    secret: str
    key: str


class SecretConfig(_Part):
    type: str = "env"
    name: str | None = None
    path: str | None = None
    value: SecretValueRef

    @property
    def kind(self) -> str:
        return "file" if self.type == "file" else "env"

    def spec(self) -> SecretSpec:
        target = self.path if self.kind == "file" else self.name
        assert target is not None, "validated: name or path is present for its type"
        return SecretSpec(self.kind, target, self.value.secret, self.value.key)

    def reference(self) -> dict[str, Any]:
        """The reference as emitted in payloads: no value, only where it comes from and goes to."""
        return self.model_dump(exclude_none=True)


class SandboxCreationConfig(ComponentConfig):
    """Fields both sandbox-creating components share."""

    snapshot: str | None = None
    target: str | None = None
    auto_stop_interval: int = Field(alias="autoStopInterval")
    env: list[EnvVar] = Field(default_factory=list)
    secrets: list[SecretConfig] = Field(default_factory=list)
    public: bool = False
    labels: list[Label] = Field(default_factory=list)
    timeout: int

    def create_request(self, default_target: str | None) -> dict[str, Any]:
        """The body of ``POST /sandbox`` (secrets are injected later, never sent here)."""
        body: dict[str, Any] = {"autoStopInterval": self.auto_stop_interval, "public": self.public}
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
        return body

    def secret_specs(self) -> list[SecretSpec]:
        return [secret.spec() for secret in self.secrets]
