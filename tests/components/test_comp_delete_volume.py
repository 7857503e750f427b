"""daytona.deleteVolume: by ID or name; a volume already gone is reported, one in use is a clear error."""

from __future__ import annotations

import pytest
from comp_support import drive
from volume_support import FakeVolumes

from daytonaflow.components import DeleteVolume, VolumeDeletedPayload
from daytonaflow.errors import ComponentError


@pytest.fixture
def volumes(daytona):
    return FakeVolumes(daytona.router)


async def test_deletes_the_volume_by_its_id(daytona, volumes, make_ctx, clock):
    volume = volumes.add("build-cache")
    ctx = make_ctx({"volume": volume["id"]})
    await drive(DeleteVolume(), ctx, clock)
    assert volumes.deleted == [volume["id"]]
    assert ctx.channel == "default"
    assert ctx.emitted[0][1].type == "daytona.volume.deleted"
    assert ctx.data == {"deleted": True, "id": volume["id"]}


async def test_a_volume_named_is_deleted_by_its_id(daytona, volumes, make_ctx, clock):
    volumes.add("other")
    volume = volumes.add("build-cache")
    ctx = make_ctx({"volume": "build-cache"})
    await drive(DeleteVolume(), ctx, clock)
    [call] = daytona.router.routes["delete_volume"].calls
    assert call.request.url.path == f"/api/volumes/{volume['id']}"
    assert ctx.data == {"deleted": True, "id": volume["id"]}


async def test_a_volume_already_gone_is_reported_not_raised(daytona, volumes, make_ctx, clock):
    ctx = make_ctx({"volume": "build-cache"})
    await drive(DeleteVolume(), ctx, clock)
    assert not daytona.router.routes["delete_volume"].calls
    assert ctx.data == {"deleted": False, "id": "build-cache", "alreadyDeleted": True}


async def test_a_volume_being_deleted_already_is_reported_as_gone(daytona, volumes, make_ctx, clock):
    volume = volumes.add("build-cache", state="pending_delete")
    ctx = make_ctx({"volume": "build-cache"})
    await drive(DeleteVolume(), ctx, clock)
    assert not daytona.router.routes["delete_volume"].calls
    assert ctx.data == {"deleted": False, "id": volume["id"], "alreadyDeleted": True}


async def test_a_volume_in_use_fails_the_node_naming_the_volume(daytona, volumes, make_ctx, clock):
    volume = volumes.add("build-cache")
    volumes.in_use.add(volume["id"])
    with pytest.raises(ComponentError) as failure:
        await drive(DeleteVolume(), make_ctx({"volume": "build-cache"}), clock)
    message = str(failure.value)
    assert message.startswith(f'volume "build-cache" ({volume["id"]}) is in use and cannot be deleted: ')
    assert "is in use by one or more sandboxes" in message
    assert message.endswith("Delete the sandboxes that mount it first")
    assert volumes.deleted == []


async def test_a_rerun_after_the_engine_died_mid_delete_still_reports_the_deletion(
    daytona, volumes, make_ctx, clock
):
    volume = volumes.add("build-cache")
    first = make_ctx({"volume": "build-cache"})

    def engine_died(channel, payload):
        raise RuntimeError("engine died")

    first.emit = engine_died
    with pytest.raises(RuntimeError):
        await drive(DeleteVolume(), first, clock)
    resumed = make_ctx({"volume": "build-cache"}, metadata=first.metadata)
    await drive(DeleteVolume(), resumed, clock)
    assert resumed.data == {"deleted": True, "id": volume["id"]}


async def test_a_rerun_whose_first_attempt_died_after_the_delete_reports_the_deletion(
    daytona, volumes, make_ctx, clock
):
    # The first attempt's delete went through; the engine died before it could record the outcome.
    volume = volumes.add("build-cache", state="pending_delete")
    resumed = make_ctx({"volume": "build-cache"})
    resumed.metadata.set({"deleting": True})
    await drive(DeleteVolume(), resumed, clock)
    assert resumed.data == {"deleted": True, "id": volume["id"]}


def test_the_volume_is_required():
    issues = DeleteVolume().validate_config({}, allow_expressions=True)
    assert [issue.field for issue in issues] == ["volume"]


def test_the_example_output_is_a_valid_payload():
    example = DeleteVolume.example_output()
    assert example["type"] == VolumeDeletedPayload.event_type
    VolumeDeletedPayload.model_validate(example["data"])
