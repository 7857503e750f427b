"""No leaked resources: whatever a run acquired and did not release is reclaimed when it ends."""

from __future__ import annotations

from run_fakes import FakeBackend, make_canvas

from daytonaflow.runner import Engine, RunStore, parse_canvas

ACQUIRE_THEN_FAIL = make_canvas(
    [
        {"id": "make", "component": "test.acquire"},
        {"id": "fail", "component": "test.fail", "configuration": {"message": "tests failed"}},
        {"id": "free", "component": "test.release", "configuration": {"id": '{{ $["make"].data.id }}'}},
    ],
    [("start", "make"), ("make", "fail"), ("fail", "free")],
)


async def test_a_released_resource_is_not_reclaimed(
    engine: Engine, store: RunStore, backend: FakeBackend
) -> None:
    canvas = parse_canvas(
        make_canvas(
            [
                {"id": "make", "component": "test.acquire"},
                {
                    "id": "free",
                    "component": "test.release",
                    "configuration": {"id": '{{ $["make"].data.id }}'},
                },
            ],
            [("start", "make"), ("make", "free")],
        )
    )
    record = await engine.run(canvas)
    assert record.status == "succeeded"
    assert backend.live() == []
    assert [r.state for r in store.resources(record.id)] == ["released"]
    assert not [e for e in backend.entries() if e["op"] == "reclaim"]


async def test_a_node_error_still_reclaims_what_the_run_acquired(
    engine: Engine, store: RunStore, backend: FakeBackend
) -> None:
    record = await engine.run(parse_canvas(ACQUIRE_THEN_FAIL))
    assert record.status == "failed"
    assert backend.live() == []
    (resource,) = store.resources(record.id)
    assert resource.state == "reclaimed"
    assert resource.node_id == "make"
    assert [e["value"] for e in backend.entries() if e["op"] == "reclaim"] == [resource.resource_id]


async def test_a_run_that_succeeds_without_releasing_still_reclaims(
    engine: Engine, backend: FakeBackend
) -> None:
    canvas = parse_canvas(make_canvas([{"id": "make", "component": "test.acquire"}], [("start", "make")]))
    record = await engine.run(canvas)
    assert record.status == "succeeded"
    assert backend.live() == []


async def test_the_run_can_ask_to_keep_its_resources(
    engine: Engine, store: RunStore, backend: FakeBackend
) -> None:
    record = await engine.run(parse_canvas(ACQUIRE_THEN_FAIL), keep_resources=True)
    assert record.status == "failed"
    (resource,) = store.resources(record.id)
    assert resource.state == "kept"
    assert backend.live() == [resource.resource_id]


async def test_a_node_can_ask_to_keep_its_resources(
    engine: Engine, store: RunStore, backend: FakeBackend
) -> None:
    document = make_canvas(
        [
            {"id": "keep", "component": "test.acquire", "keepResources": True},
            {"id": "drop", "component": "test.acquire"},
        ],
        [("start", "keep"), ("start", "drop")],
    )
    record = await engine.run(parse_canvas(document))
    states = {r.node_id: r.state for r in store.resources(record.id)}
    assert states == {"keep": "kept", "drop": "reclaimed"}
    assert len(backend.live()) == 1
