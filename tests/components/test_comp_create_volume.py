"""daytona.createVolume: create once, wait for ready without blocking, reuse a volume of that name."""

from __future__ import annotations

import httpx
import pytest
from comp_support import ProcessDied, drive, error_body
from volume_support import FakeVolumes

from daytonaflow.components import CreateVolume, VolumePayload
from daytonaflow.components._timing import FIRST_POLL_DELAY
from daytonaflow.errors import ComponentError


@pytest.fixture
def volumes(daytona):
    return FakeVolumes(daytona.router)


async def test_creates_the_volume_and_emits_it_once_ready(daytona, volumes, make_ctx, clock):
    ctx = make_ctx({"name": "build-cache"})
    await drive(CreateVolume(), ctx, clock)
    assert volumes.create_bodies == [{"name": "build-cache"}]
    assert ctx.channel == "default"
    assert ctx.emitted[0][1].type == "daytona.volume"
    assert ctx.data == {"id": "vol-00000001", "name": "build-cache", "state": "ready"}


async def test_waits_for_ready_first_after_milliseconds_as_an_idle_wait(daytona, volumes, make_ctx, clock):
    volumes.create_states = ["creating", "creating", "ready"]
    ctx = make_ctx({"name": "build-cache"})
    await drive(CreateVolume(), ctx, clock)
    assert clock.sleeps == [FIRST_POLL_DELAY, 2 * FIRST_POLL_DELAY]
    assert ctx.waits == 1
    assert ctx.data["state"] == "ready"


async def test_an_existing_volume_of_that_name_is_reused_and_reported(daytona, volumes, make_ctx, clock):
    existing = volumes.add("build-cache")
    ctx = make_ctx({"name": "build-cache"})
    await drive(CreateVolume(), ctx, clock)
    assert volumes.create_bodies == []
    assert ctx.data == {"id": existing["id"], "name": "build-cache", "state": "ready", "existing": True}


async def test_a_volume_of_another_name_is_not_reused(daytona, volumes, make_ctx, clock):
    volumes.add("other-cache")
    ctx = make_ctx({"name": "build-cache"})
    await drive(CreateVolume(), ctx, clock)
    assert volumes.create_bodies == [{"name": "build-cache"}]
    assert "existing" not in ctx.data


async def test_a_rerun_after_the_engine_died_mid_wait_waits_for_the_same_volume(
    daytona, volumes, make_ctx, clock
):
    volumes.create_states = ["creating", "creating", "ready"]
    first = make_ctx({"name": "build-cache"})
    clock.crash_after(1)
    with pytest.raises(ProcessDied):
        await CreateVolume().execute(first)
    resumed = make_ctx({"name": "build-cache"}, metadata=first.metadata)
    await drive(CreateVolume(), resumed, clock)
    assert volumes.create_bodies == [{"name": "build-cache"}]
    # Made by this execution, not found: a crash does not turn it into an existing volume.
    assert resumed.data == {"id": "vol-00000001", "name": "build-cache", "state": "ready"}


async def test_a_rerun_after_the_engine_died_before_saving_the_create_reports_it_as_made(
    daytona, volumes, make_ctx, clock
):
    # The first attempt sent the create, and died before it could save the answer.
    volumes.add("build-cache")
    resumed = make_ctx({"name": "build-cache"})
    resumed.metadata.set({"creatingVolume": True})
    await drive(CreateVolume(), resumed, clock)
    assert volumes.create_bodies == []
    assert "existing" not in resumed.data


async def test_a_lost_create_answer_is_repeated_without_a_second_volume(daytona, volumes, make_ctx, clock):
    created = volumes._create

    def created_then_failed(request: httpx.Request) -> httpx.Response:
        created(request)
        return httpx.Response(503, json=error_body(503, "gateway lost the answer", "Service Unavailable"))

    daytona.router.routes["create_volume"].side_effect = created_then_failed
    ctx = make_ctx({"name": "build-cache"})
    await drive(CreateVolume(), ctx, clock)
    assert len(volumes.create_bodies) == 1
    assert list(volumes.volumes) == ["vol-00000001"]
    assert ctx.data == {"id": "vol-00000001", "name": "build-cache", "state": "ready"}


async def test_a_volume_someone_makes_between_lookup_and_create_is_reused(daytona, volumes, make_ctx, clock):
    refuse = volumes._create

    def made_meanwhile(request: httpx.Request) -> httpx.Response:
        volumes.add("build-cache")
        return refuse(request)  # 409: the name exists now

    daytona.router.routes["create_volume"].side_effect = made_meanwhile
    ctx = make_ctx({"name": "build-cache"})
    await drive(CreateVolume(), ctx, clock)
    assert len(volumes.create_bodies) == 1
    assert list(volumes.volumes) == ["vol-00000001"]
    assert ctx.data == {"id": "vol-00000001", "name": "build-cache", "state": "ready", "existing": True}


async def test_a_long_wait_is_handed_to_the_engine_and_resumed_by_checks(daytona, volumes, make_ctx, clock):
    volumes.create_states = ["creating"] * 6 + ["ready"]
    ctx = make_ctx({"name": "build-cache"}, hook_wait_limit=0.0)
    await drive(CreateVolume(), ctx, clock)
    assert ctx.scheduled, "the wait was handed to the engine"
    assert volumes.create_bodies == [{"name": "build-cache"}]
    assert ctx.data["state"] == "ready"


async def test_a_volume_in_error_fails_the_node_naming_it_and_the_reason(daytona, volumes, make_ctx, clock):
    volumes.create_states = ["creating", "error"]
    daytona.router.routes["get_volume"].side_effect = lambda request, vid: httpx.Response(
        200, json={**volumes.volumes[vid], "state": "error", "errorReason": "storage quota exceeded"}
    )
    with pytest.raises(ComponentError) as failure:
        await drive(CreateVolume(), make_ctx({"name": "build-cache"}), clock)
    assert str(failure.value) == (
        'volume "build-cache" (vol-00000001) entered state error: storage quota exceeded'
    )


async def test_a_volume_not_ready_before_the_timeout_fails_the_node(daytona, volumes, make_ctx, clock):
    volumes.create_states = ["creating"]
    with pytest.raises(ComponentError, match=r"did not become ready within 5 s \(last state creating\)"):
        await drive(CreateVolume(), make_ctx({"name": "build-cache", "timeout": 5}), clock)
    assert sum(clock.sleeps) == pytest.approx(5)


def test_the_name_is_required():
    issues = CreateVolume().validate_config({}, allow_expressions=True)
    assert [issue.field for issue in issues] == ["name"]


def test_the_example_output_is_a_valid_payload():
    example = CreateVolume.example_output()
    assert example["type"] == VolumePayload.event_type
    VolumePayload.model_validate(example["data"])
