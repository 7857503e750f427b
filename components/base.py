"""What every Daytona component shares: self-description from its field specs, typed config, the client."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any, ClassVar, Generic, TypeVar, cast

from pydantic import BaseModel, ConfigDict

from daytonaflow.component import Component, ExecutionContext
from daytonaflow.components import fields as field_specs
from daytonaflow.components.client import DaytonaClient
from daytonaflow.components.fields import Field
from daytonaflow.components.integration import DaytonaIntegration, integration_of
from daytonaflow.errors import ConfigError, ConfigIssue

ICON = "box"
COLOR = "#2ECC71"


class ComponentConfig(BaseModel):
    """Base of the typed configs: built from a validated, defaults-applied configuration."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


ConfigT = TypeVar("ConfigT", bound=ComponentConfig)


@cache
def _example(name: str) -> dict[str, Any]:
    text = resources.files("daytonaflow.components").joinpath(f"{name}.example.json").read_text("utf-8")
    document = json.loads(text)
    if not isinstance(document, dict):
        raise TypeError(f"example output of {name} is not a JSON object")
    return document


class DaytonaComponent(Component, Generic[ConfigT]):
    """A Daytona component described by ``fields`` (the single source of truth of its config)."""

    icon: ClassVar[str] = ICON
    color: ClassVar[str] = COLOR
    fields: ClassVar[tuple[Field, ...]]
    config_model: ClassVar[type[ComponentConfig]]
    #: Markdown shown in the canvas UI and rendered into docs/components/.
    docs: ClassVar[str]

    # --- self-description -------------------------------------------------------------------

    @classmethod
    def documentation(cls) -> str:
        return cls.docs.strip() + "\n"

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        return field_specs.config_schema(cls.name, cls.label, cls.description, cls.fields)

    @classmethod
    def example_output(cls) -> dict[str, Any]:
        copy: dict[str, Any] = json.loads(json.dumps(_example(cls.name)))  # callers may change it
        return copy

    @classmethod
    def manifest(cls) -> dict[str, Any]:
        return {**super().manifest(), "fields": field_specs.manifest_fields(cls.fields)}

    # --- configuration ----------------------------------------------------------------------

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], *, allow_expressions: bool) -> list[ConfigIssue]:
        if not isinstance(cast(object, config), Mapping):
            return [ConfigIssue("", "the configuration must be an object")]
        issues = field_specs.validate(cls.fields, config, allow_expressions=allow_expressions)
        # Every broken rule at once, but one issue per field: a cross-field rule about a value the
        # field specs already rejected would only repeat the problem.
        reported = {issue.field for issue in issues}
        issues.extend(
            issue
            for issue in cls.extra_rules(config, allow_expressions=allow_expressions)
            if issue.field not in reported
        )
        return issues

    @classmethod
    def extra_rules(cls, config: Mapping[str, Any], *, allow_expressions: bool) -> list[ConfigIssue]:
        """Rules the field specs cannot say; issues on fields the specs already rejected are dropped."""
        return []

    def parse_config(self, ctx: ExecutionContext) -> ConfigT:
        """The resolved configuration as the typed config, after validating it once more."""
        issues = self.validate_config(ctx.config, allow_expressions=False)
        if issues:
            raise ConfigError(issues, node=ctx.node_name or ctx.node_id)
        config = field_specs.apply_defaults(self.fields, ctx.config)
        return self.config_model.model_validate(config)  # type: ignore[return-value]

    # --- collaborators ----------------------------------------------------------------------

    @staticmethod
    def integration(ctx: ExecutionContext) -> DaytonaIntegration:
        return integration_of(ctx.integration)

    @classmethod
    def client(cls, ctx: ExecutionContext) -> DaytonaClient:
        return integration_of(ctx.integration).client
