"""daytona.listSandboxes: the sandboxes carrying given labels (and in given states)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, get_args

from pydantic import Field as ModelField

from daytonaflow.component import DEFAULT_CHANNEL
from daytonaflow.components._component import DaytonaComponent
from daytonaflow.components._config import ComponentConfig, ConfigPart, Label, Spec
from daytonaflow.components._fields import Option
from daytonaflow.components._payloads import SandboxesListedPayload, SandboxPayload
from daytonaflow.components._step import Outcome, Step

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

DOCS = """
Lists the Daytona sandboxes that carry the given labels, optionally only those in given states.

## Use cases

- **Find a workflow's sandboxes**: the ones labelled by a createSandbox node (`team: platform`)
- **Clean-up**: list stopped sandboxes of a project, then delete them one by one
- **Reporting**: count the sandboxes running for a label

## Configuration

- **Labels**: key/value pairs every listed sandbox carries (all of them; none: every sandbox)
- **States**: only sandboxes in one of these states (none: any state)
- **Limit**: the most sandboxes listed (default 100, at most 1000)

## Output

Emits `daytona.sandboxes.listed` on the default channel:

- `sandboxes`: one `{id, state}` per sandbox, as getSandbox gives it
- `count`: how many are listed

## Notes

- Daytona's list is eventually consistent: a sandbox created a moment ago may be missing.
"""

#: The states a list may ask for (Daytona's SandboxState values a workflow routes on).
_State = Literal["started", "stopped", "archived", "starting", "stopping", "archiving", "creating", "error"]


class StateFilter(ConfigPart):
    state: Annotated[_State, Spec("State", options=tuple(Option(state, state) for state in get_args(_State)))]


class ListSandboxesConfig(ComponentConfig):
    labels: Annotated[
        list[Label],
        Spec("Labels", "Labels every listed sandbox carries.", item=("label", "Label")),
    ] = ModelField(default_factory=list)
    states: Annotated[
        list[StateFilter],
        Spec(
            "States", "Only sandboxes in one of these states; any state when empty.", item=("state", "State")
        ),
    ] = ModelField(default_factory=list)
    limit: Annotated[int, Spec("Limit", "The most sandboxes listed.", minimum=1, maximum=MAX_LIMIT)] = (
        DEFAULT_LIMIT
    )


class ListSandboxes(DaytonaComponent[ListSandboxesConfig]):
    name: ClassVar[str] = "daytona.listSandboxes"
    label: ClassVar[str] = "List Sandboxes"
    description: ClassVar[str] = "List the sandboxes carrying given labels, optionally in given states."
    icon: ClassVar[str] = "list"
    channels = (DEFAULT_CHANNEL,)
    payload_type = SandboxesListedPayload
    config_model = ListSandboxesConfig
    docs = DOCS

    async def run(self, step: Step, config: ListSandboxesConfig) -> Outcome:
        found = await step.client.list_sandboxes(
            labels={label.key: label.value for label in config.labels},
            states=[choice.state for choice in config.states],
            limit=config.limit,
        )
        sandboxes = [SandboxPayload(id=sandbox.id, state=sandbox.state or "unknown") for sandbox in found]
        return Outcome(
            DEFAULT_CHANNEL.name, SandboxesListedPayload(sandboxes=sandboxes, count=len(sandboxes))
        )
