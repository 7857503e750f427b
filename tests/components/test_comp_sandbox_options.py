"""The create components' options of issue 14: volumes, resources, auto-archive/delete, preview port."""

from __future__ import annotations

import pytest
from comp_support import SANDBOX_ID, drive
from volume_support import FakeVolumes

from daytonaflow.components import IDEMPOTENCY_LABEL, CreateRepositorySandbox, CreateSandbox
from daytonaflow.errors import ConfigError

REPOSITORY = "https://github.com/superplanehq/example-app.git"


@pytest.fixture
def volumes(daytona):
    return FakeVolumes(daytona.router)


async def test_options_left_empty_send_nothing_beyond_the_seed_fields(daytona, volumes, make_ctx, clock):
    ctx = make_ctx({})
    await drive(CreateSandbox(), ctx, clock)
    assert daytona.create_bodies == [
        {"autoStopInterval": 15, "public": False, "labels": {IDEMPOTENCY_LABEL: "run-1/exec-1"}}
    ]
    assert not daytona.router.routes["list_volumes"].calls
    assert not daytona.router.routes["preview"].calls
    assert ctx.data == {"id": SANDBOX_ID, "state": "started"}


async def test_resources_and_auto_intervals_are_sent_as_configured(daytona, make_ctx, clock):
    config = {"cpu": 2, "memory": 4, "disk": 10, "autoArchiveInterval": 60, "autoDeleteInterval": 0}
    await drive(CreateSandbox(), make_ctx(config), clock)
    body = daytona.create_bodies[0]
    assert {key: body[key] for key in config} == config


async def test_an_auto_delete_interval_of_minus_one_is_sent_as_never(daytona, make_ctx, clock):
    await drive(CreateSandbox(), make_ctx({"autoDeleteInterval": -1}), clock)
    assert daytona.create_bodies[0]["autoDeleteInterval"] == -1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cpu", 0, "must be at least 1"),
        ("memory", 0, "must be at least 1"),
        ("disk", 0, "must be at least 1"),
        ("autoArchiveInterval", -1, "must be at least 0"),
        ("autoDeleteInterval", -2, "must be at least -1"),
        ("previewPort", 70000, "must be between 1 and 65535"),
    ],
)
def test_out_of_range_options_are_config_errors_naming_the_field(field, value, message):
    issues = CreateSandbox().validate_config({field: value}, allow_expressions=True)
    assert [(issue.field, issue.message) for issue in issues] == [(field, message)]


async def test_volumes_named_are_sent_by_their_ids(daytona, volumes, make_ctx, clock):
    cache = volumes.add("build-cache")
    data = volumes.add("datasets")
    config = {
        "volumes": [
            {"volume": "build-cache", "mountPath": "/home/daytona/cache"},
            {"volume": data["id"], "mountPath": "/data", "subpath": "users/alice"},
        ]
    }
    await drive(CreateSandbox(), make_ctx(config), clock)
    assert daytona.create_bodies[0]["volumes"] == [
        {"volumeId": cache["id"], "mountPath": "/home/daytona/cache"},
        {"volumeId": data["id"], "mountPath": "/data", "subpath": "users/alice"},
    ]


async def test_a_missing_volume_fails_naming_node_field_and_volume_before_any_create(
    daytona, volumes, make_ctx, clock
):
    volumes.add("build-cache")
    config = {
        "volumes": [
            {"volume": "build-cache", "mountPath": "/home/daytona/cache"},
            {"volume": "no-such-volume", "mountPath": "/data"},
        ]
    }
    ctx = make_ctx(config, node_name="prepare")
    with pytest.raises(ConfigError) as failure:
        await drive(CreateSandbox(), ctx, clock)
    assert str(failure.value) == (
        'node "prepare": volumes.1.volume names no volume: none has the name or ID "no-such-volume"'
    )
    assert daytona.create_bodies == []
    assert not ctx.resources.held


@pytest.mark.parametrize(
    ("mount", "field", "message"),
    [
        ({"volume": "v", "mountPath": "cache"}, "volumes.0.mountPath", "must be an absolute path below /"),
        ({"volume": "v", "mountPath": "/"}, "volumes.0.mountPath", "must be an absolute path below /"),
        (
            {"volume": "v", "mountPath": "/a/../etc"},
            "volumes.0.mountPath",
            "must be an absolute path below /",
        ),
        (
            {"volume": "v", "mountPath": "/data", "subpath": "../other"},
            "volumes.0.subpath",
            "must be a relative path inside the volume",
        ),
        ({"mountPath": "/data"}, "volumes.0.volume", "is required"),
    ],
)
def test_a_volume_mount_that_cannot_be_made_is_a_config_error_naming_its_field(mount, field, message):
    issues = CreateSandbox().validate_config({"volumes": [mount]}, allow_expressions=True)
    assert [issue.field for issue in issues] == [field]
    assert issues[0].message.startswith(message)


async def test_a_preview_port_adds_its_preview_url_and_token_to_the_payload(daytona, make_ctx, clock):
    ctx = make_ctx({"previewPort": 8080})
    await drive(CreateSandbox(), ctx, clock)
    [call] = daytona.router.routes["preview"].calls
    assert call.request.url.path == f"/api/sandbox/{SANDBOX_ID}/ports/8080/preview-url"
    assert ctx.data == {
        "id": SANDBOX_ID,
        "state": "started",
        "previewUrl": f"https://8080-{SANDBOX_ID}.preview.daytona.app",
        "previewToken": "preview-token-xyz789",
    }


async def test_the_repository_sandbox_takes_the_same_options(daytona, volumes, make_ctx, clock):
    cache = volumes.add("build-cache")
    config = {
        "repository": REPOSITORY,
        "cpu": 2,
        "autoArchiveInterval": 30,
        "volumes": [{"volume": "build-cache", "mountPath": "/home/daytona/cache"}],
        "previewPort": 3000,
    }
    ctx = make_ctx(config)
    await drive(CreateRepositorySandbox(), ctx, clock)
    body = daytona.create_bodies[0]
    assert (body["cpu"], body["autoArchiveInterval"]) == (2, 30)
    assert body["volumes"] == [{"volumeId": cache["id"], "mountPath": "/home/daytona/cache"}]
    assert ctx.data["previewUrl"] == f"https://3000-{SANDBOX_ID}.preview.daytona.app"
    assert ctx.data["previewToken"] == "preview-token-xyz789"


async def test_the_repository_sandbox_without_a_preview_port_has_no_preview_fields(daytona, make_ctx, clock):
    ctx = make_ctx({"repository": REPOSITORY})
    await drive(CreateRepositorySandbox(), ctx, clock)
    assert "previewUrl" not in ctx.data
    assert "previewToken" not in ctx.data
    assert not daytona.router.routes["preview"].calls
