"""The worker: hosts the canvas workflow and the component activities on one task queue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from daytonaflow.component import Component, SecretsProvider
from daytonaflow.runner.registry import ComponentRegistry
from daytonaflow.temporal._activities import CanvasActivities
from daytonaflow.temporal._settings import TemporalSettings, connect
from daytonaflow.temporal._workflow import CanvasWorkflow

#: Imported once, outside the workflow sandbox: daytonaflow's pure modules (canvas model, graph,
#: expressions) and the libraries they stand on. The workflow calls them with workflow time and
#: workflow ids only, so passing them through keeps it deterministic.
PASSTHROUGH_MODULES = (
    "daytonaflow",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "typing_extensions",
    "typing_inspection",
    "re2",
    "yaml",
    "jinja2",
    "jsonschema",
    "tzdata",
)


def build_worker(
    client: Client,
    settings: TemporalSettings,
    *,
    registry: Mapping[str, type[Component]] | None = None,
    integration: Any = None,
    secrets: SecretsProvider | None = None,
    max_concurrent_activities: int = 100,
) -> Worker:
    """A worker polling ``settings.task_queue``; ``registry`` defaults to entry-point discovery."""
    activities = CanvasActivities(
        settings,
        registry if registry is not None else ComponentRegistry.discover(),
        integration=integration,
        secrets=secrets,
    )
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[CanvasWorkflow],
        activities=activities.all(),
        max_concurrent_activities=max_concurrent_activities,
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
        ),
    )


async def run_worker(
    settings: TemporalSettings,
    *,
    registry: Mapping[str, type[Component]] | None = None,
    integration: Any = None,
    secrets: SecretsProvider | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Poll until ``stop`` is set (or the task is cancelled); in-flight hooks are handed back."""
    client = await connect(settings)
    worker = build_worker(client, settings, registry=registry, integration=integration, secrets=secrets)
    async with worker:
        if on_ready is not None:
            on_ready()
        await (stop.wait() if stop is not None else asyncio.Event().wait())
