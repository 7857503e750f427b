"""Latency of the Daytona components against the embedded local server (127.0.0.1 only).

Prints ``name value unit`` lines. Each component figure comes with a baseline measured in the
same run: the single raw API call that does the same work synchronously, so the ratio shows
what the non-blocking, resumable design (sessions, a followed output stream) costs. Targets
(issue 9): executeCommand ``echo`` <= 1.5x raw ``process/execute``; a 2.7 s ``sleep`` ends
<= 50 ms after its process; a 1 GiB output flood <= 1.2x ``process/execute``.

    python bench/components.py [--rounds N] [--flood-mib M]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from daytonaflow.component import Component
from daytonaflow.components import CreateSandbox, DaytonaIntegration, ExecuteCode, ExecuteCommand
from daytonaflow.events import Event, Payload
from daytonaflow.localserver import LocalServer
from daytonaflow.secrets import EnvSecretsProvider


class _Metadata:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self) -> dict[str, Any]:
        return dict(self.data)

    def set(self, metadata: Mapping[str, Any]) -> None:
        self.data = dict(metadata)


class _Resources:
    def acquire(self, kind: str, resource_id: str) -> None:
        return None

    def release(self, kind: str, resource_id: str) -> None:
        return None


class _Context:
    """The smallest host: runs scheduled checks after their delay, in process."""

    def __init__(self, config: dict[str, Any], integration: DaytonaIntegration, execution: str) -> None:
        self.run_id = "bench"
        self.node_id = self.node_name = "node"
        self.execution_id = execution
        self.config = config
        self.integration = integration
        self.secrets = EnvSecretsProvider({})
        self.metadata = _Metadata()
        self.resources = _Resources()
        self.logger = logging.getLogger("bench")
        self.event: Event | None = None
        self.pending: float | None = None

    def emit(self, channel: str, payload: Payload) -> None:
        self.event = Event.of(payload)

    def schedule_check(self, delay_seconds: float) -> None:
        self.pending = delay_seconds

    @contextlib.asynccontextmanager
    async def waiting(self) -> AsyncIterator[None]:
        yield

    def report_output(self, text: str) -> None:
        return None


async def _run(component: Component, ctx: _Context) -> Event:
    await component.execute(ctx)
    while ctx.pending is not None:
        delay, ctx.pending = ctx.pending, None
        await asyncio.sleep(delay)
        await component.check(ctx)
    assert ctx.event is not None
    return ctx.event


async def _median_ms(rounds: int, action: Callable[[int], Awaitable[object]]) -> float:
    samples = []
    for index in range(rounds):
        started = time.perf_counter()
        await action(index)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def _bench(rounds: int, flood_mib: int) -> None:
    with LocalServer(state_dir=Path(tempfile.mkdtemp(prefix="daytonaflow-bench-"))) as server:
        integration = DaytonaIntegration(server.api_url, server.api_key)
        client = integration.client
        try:
            sandbox = await _run(CreateSandbox(), _Context({}, integration, "create-0"))
            sandbox_id = sandbox.data["id"]

            async def component_command(index: int) -> object:
                config = {"sandbox": sandbox_id, "command": "echo ready"}
                return await _run(ExecuteCommand(), _Context(config, integration, f"command-{index}"))

            async def raw_command(index: int) -> object:
                return await client.execute(sandbox_id, "echo ready")

            async def component_code(index: int) -> object:
                config = {"sandbox": sandbox_id, "code": "print('ready')", "language": "python"}
                return await _run(ExecuteCode(), _Context(config, integration, f"code-{index}"))

            async def raw_code(index: int) -> object:
                return await client.code_run(sandbox_id, "print('ready')", "python")

            async def component_create(index: int) -> object:
                event = await _run(CreateSandbox(), _Context({}, integration, f"create-{index + 1}"))
                await client.delete_sandbox(event.data["id"])
                return event

            async def raw_create(index: int) -> object:
                created = await client.create_sandbox({})
                while (await client.get_sandbox(created.id)).state != "started":
                    await asyncio.sleep(0.025)
                await client.delete_sandbox(created.id)
                return created

            figures = [
                ("execute_command_component_ms", await _median_ms(rounds, component_command)),
                ("execute_command_raw_baseline_ms", await _median_ms(rounds, raw_command)),
                ("execute_code_component_ms", await _median_ms(rounds, component_code)),
                ("execute_code_raw_baseline_ms", await _median_ms(rounds, raw_code)),
                ("create_sandbox_component_ms", await _median_ms(max(3, rounds // 4), component_create)),
                ("create_sandbox_raw_baseline_ms", await _median_ms(max(3, rounds // 4), raw_create)),
            ]
            for name, value in figures:
                print(f"{name} {value:.1f} ms")
            values = dict(figures)
            for what in ("execute_command", "execute_code", "create_sandbox"):
                ratio = values[f"{what}_component_ms"] / values[f"{what}_raw_baseline_ms"]
                print(f"{what}_overhead_ratio {ratio:.2f} x")

            # How late the node learns that a 2.7 s command ended: its process prints the time it ends.
            late = []
            for index in range(3):
                config = {"sandbox": sandbox_id, "command": "sleep 2.7; date +%s.%N"}
                event = await _run(ExecuteCommand(), _Context(config, integration, f"sleep-{index}"))
                late.append((time.time() - float(event.data["result"].strip())) * 1000)
            print(f"sleep_2700ms_end_lateness_ms {statistics.median(late):.1f} ms")
            print("sleep_2700ms_end_lateness_target_ms 50.0 ms")

            flood = f"head -c {flood_mib * 1024 * 1024} /dev/zero | tr '\\0' a; echo"
            started = time.perf_counter()
            await client.execute(sandbox_id, flood, timeout_seconds=600)
            raw_flood = time.perf_counter() - started
            started = time.perf_counter()
            config = {"sandbox": sandbox_id, "command": flood, "timeout": 600}
            await _run(ExecuteCommand(), _Context(config, integration, "flood"))
            component_flood = time.perf_counter() - started
            print(f"flood_{flood_mib}mib_component_s {component_flood:.2f} s")
            print(f"flood_{flood_mib}mib_raw_baseline_s {raw_flood:.2f} s")
            print(f"flood_{flood_mib}mib_overhead_ratio {component_flood / raw_flood:.2f} x")
            await client.delete_sandbox(sandbox_id)
        finally:
            await integration.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--flood-mib", type=int, default=1024, help="size of the output flood")
    arguments = parser.parse_args()
    asyncio.run(_bench(arguments.rounds, arguments.flood_mib))


if __name__ == "__main__":
    main()
