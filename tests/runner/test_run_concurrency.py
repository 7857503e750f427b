"""Several runs go on at once on one engine."""

from __future__ import annotations

import asyncio

from run_fakes import FakeBackend, make_canvas

from daytonaflow.runner import Engine, RunStore, parse_canvas


async def test_fifty_runs_proceed_concurrently(engine: Engine, store: RunStore, backend: FakeBackend) -> None:
    # Every run waits at the rendezvous until all fifty are there: serialized runs would never meet.
    backend.barrier = asyncio.Barrier(50)
    canvas = parse_canvas(
        make_canvas(
            [
                {"id": "make", "component": "test.acquire"},
                {"id": "meet", "component": "test.rendezvous"},
                {
                    "id": "free",
                    "component": "test.release",
                    "configuration": {"id": '{{ $["make"].data.id }}'},
                },
            ],
            [("start", "make"), ("make", "meet"), ("meet", "free")],
        )
    )
    run_ids = [await engine.start(canvas, {"n": n}) for n in range(50)]
    records = await asyncio.wait_for(asyncio.gather(*(engine.wait(run_id) for run_id in run_ids)), 30)
    assert {record.status for record in records} == {"succeeded"}
    assert backend.live() == []
    creations = [e for e in backend.entries() if e["op"] == "create"]
    assert sorted(e["run"] for e in creations) == sorted(run_ids)
