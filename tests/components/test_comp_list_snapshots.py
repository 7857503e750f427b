"""daytona.listSnapshots: Daytona's snapshots, filtered by name and read page by page up to a limit."""

from __future__ import annotations

import httpx
import pytest
from comp_support import drive, error_body
from volume_support import FakeSnapshots

from daytonaflow.components import ListSnapshots, SnapshotsListedPayload
from daytonaflow.errors import ComponentError


@pytest.fixture
def snapshots(daytona):
    return FakeSnapshots(daytona.router)


async def test_emits_each_snapshot_with_the_fields_a_create_needs(daytona, snapshots, make_ctx, clock):
    snapshots.add("python-3.12")
    ctx = make_ctx({})
    await drive(ListSnapshots(), ctx, clock)
    assert ctx.channel == "default"
    assert ctx.emitted[0][1].type == "daytona.snapshots.listed"
    assert ctx.data == {
        "snapshots": [
            {
                "id": "snapshot-00000001",
                "name": "python-3.12",
                "state": "active",
                "imageName": "python:3.12-slim",
                "size": 0.42,
                "createdAt": "2026-01-19T11:00:00.000Z",
            }
        ],
        "count": 1,
    }


async def test_a_snapshot_without_image_or_size_leaves_them_out(daytona, snapshots, make_ctx, clock):
    snapshots.add("from-a-sandbox", imageName=None, size=None)
    ctx = make_ctx({})
    await drive(ListSnapshots(), ctx, clock)
    assert set(ctx.data["snapshots"][0]) == {"id", "name", "state", "createdAt"}


async def test_the_name_filter_is_sent_to_daytona(daytona, snapshots, make_ctx, clock):
    snapshots.add("python-3.12")
    snapshots.add("node-22")
    ctx = make_ctx({"name": "python"})
    await drive(ListSnapshots(), ctx, clock)
    [call] = daytona.router.routes["list_snapshots"].calls
    assert dict(call.request.url.params) == {"name": "python", "limit": "100", "page": "1"}
    assert [item["name"] for item in ctx.data["snapshots"]] == ["python-3.12"]


async def test_pages_are_read_until_the_limit_is_reached(daytona, snapshots, make_ctx, clock):
    for number in range(450):
        snapshots.add(f"snapshot-{number}")
    ctx = make_ctx({"limit": 250})
    await drive(ListSnapshots(), ctx, clock)
    pages = [dict(call.request.url.params) for call in daytona.router.routes["list_snapshots"].calls]
    assert pages == [{"limit": "200", "page": "1"}, {"limit": "200", "page": "2"}]
    assert ctx.data["count"] == 250
    assert ctx.data["snapshots"][-1]["name"] == "snapshot-249"


async def test_the_last_page_ends_the_listing_below_the_limit(daytona, snapshots, make_ctx, clock):
    for number in range(3):
        snapshots.add(f"snapshot-{number}")
    ctx = make_ctx({"limit": 1000})
    await drive(ListSnapshots(), ctx, clock)
    assert len(daytona.router.routes["list_snapshots"].calls) == 1
    assert ctx.data["count"] == 3


async def test_no_snapshot_is_an_empty_list_not_an_error(daytona, snapshots, make_ctx, clock):
    ctx = make_ctx({"name": "nothing-matches"})
    await drive(ListSnapshots(), ctx, clock)
    assert (ctx.channel, ctx.data) == ("default", {"snapshots": [], "count": 0})


async def test_a_refused_request_fails_with_daytonas_message(daytona, snapshots, make_ctx, clock):
    daytona.router.routes["list_snapshots"].mock(
        return_value=httpx.Response(
            403, json=error_body(403, "missing permission read:snapshots", "Forbidden")
        )
    )
    with pytest.raises(
        ComponentError, match=r"GET /snapshots failed with 403: .*missing permission read:snapshots"
    ):
        await drive(ListSnapshots(), make_ctx({}), clock)


@pytest.mark.parametrize("limit", [0, 1001])
def test_the_limit_is_bounded(limit):
    issues = ListSnapshots().validate_config({"limit": limit}, allow_expressions=True)
    assert [(issue.field, issue.message) for issue in issues] == [("limit", "must be between 1 and 1000")]


def test_the_example_output_is_a_valid_payload():
    example = ListSnapshots.example_output()
    assert example["type"] == SnapshotsListedPayload.event_type
    payload = SnapshotsListedPayload.model_validate(example["data"])
    assert payload.count == len(payload.snapshots)
