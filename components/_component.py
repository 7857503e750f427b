"""What every Daytona component shares: self-description from its config model, the durable step."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

from daytonaflow.component import Component, ExecutionContext
from daytonaflow.components import _fields
from daytonaflow.components._config import ComponentConfig, fields_of
from daytonaflow.components._fields import Field
from daytonaflow.components._integration import integration_of
from daytonaflow.components._step import Outcome, Step, reclaim_sandbox
from daytonaflow.components.client import DaytonaClient
from daytonaflow.errors import ConfigError, ConfigIssue

ICON = "box"
COLOR = "#2ECC71"

ConfigT = TypeVar("ConfigT", bound=ComponentConfig)


class DaytonaComponent(Component, Generic[ConfigT], abc.ABC):
    """A Daytona component: a config model (the single declaration of its fields) and a ``run``.

    ``run`` says what the component does, on a :class:`Step` that owns state, waits, clean-up
    and the emit; ``execute``, ``check`` and ``cancel`` are the step's, the same for all.
    """

    icon: ClassVar[str] = ICON
    color: ClassVar[str] = COLOR
    config_model: ClassVar[type[ComponentConfig]]
    #: Markdown shown in the canvas UI and rendered into docs/components/.
    docs: ClassVar[str]
    #: It creates a sandbox: a cancel looks one up by the execution's creation key even when the
    #: metadata names none (the create's answer, or the record of the create, was lost).
    creates_sandbox: ClassVar[bool] = False

    @abc.abstractmethod
    async def run(self, step: Step, config: ConfigT) -> Outcome:
        """Do the work and say how it ended; raise ``ComponentError`` to fail the node."""

    # --- self-description -------------------------------------------------------------------

    @classmethod
    def fields(cls) -> tuple[Field, ...]:
        return fields_of(cls.config_model)

    @classmethod
    def documentation(cls) -> str:
        return cls.docs.strip() + "\n"

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        return _fields.config_schema(cls.name, cls.label, cls.description, cls.fields())

    @classmethod
    def example_output(cls) -> dict[str, Any]:
        return _fields.packaged_example("daytonaflow.components", cls.name)

    @classmethod
    def manifest(cls) -> dict[str, Any]:
        return {**super().manifest(), "fields": _fields.manifest_fields(cls.fields())}

    # --- configuration ----------------------------------------------------------------------

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], *, allow_expressions: bool) -> list[ConfigIssue]:
        return _fields.validate_with_rules(
            cls.fields(), config, cls.extra_rules, allow_expressions=allow_expressions
        )

    @classmethod
    def extra_rules(cls, config: Mapping[str, Any], *, allow_expressions: bool) -> list[ConfigIssue]:
        """Rules the field specs cannot say; issues on fields the specs already rejected are dropped."""
        return []

    def parse_config(self, ctx: ExecutionContext) -> ConfigT:
        """The resolved configuration as the typed config, after validating it once more."""
        issues = self.validate_config(ctx.config, allow_expressions=False)
        if issues:
            raise ConfigError(issues, node=ctx.node_name or ctx.node_id)
        config = _fields.apply_defaults(self.fields(), ctx.config)
        return self.config_model.model_validate(config)  # type: ignore[return-value]

    # --- lifecycle ----------------------------------------------------------------------------

    async def execute(self, ctx: ExecutionContext) -> None:
        config = self.parse_config(ctx)
        await Step(ctx, self.client(ctx)).drive(lambda step: self.run(step, config), self.payload_type)

    async def check(self, ctx: ExecutionContext) -> None:
        # A check scheduled by an earlier version resumes the same way: from the persisted step.
        await self.execute(ctx)

    async def cancel(self, ctx: ExecutionContext) -> None:
        await Step(ctx, self.client(ctx)).cancel(creates_sandbox=self.creates_sandbox)

    @classmethod
    async def reclaim(cls, kind: str, resource_id: str, integration: Any) -> None:
        await reclaim_sandbox(integration_of(integration).client, kind, resource_id)

    @staticmethod
    def client(ctx: ExecutionContext) -> DaytonaClient:
        return integration_of(ctx.integration).client
