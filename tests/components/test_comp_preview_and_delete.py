"""daytona.getPreviewUrl and daytona.deleteSandbox."""

from __future__ import annotations

import httpx
import pytest
from comp_support import SANDBOX_ID, drive, error_body

from daytonaflow.components import SANDBOX_RESOURCE, DeleteSandbox, GetPreviewUrl
from daytonaflow.errors import ComponentError, ConfigError

# --- getPreviewUrl --------------------------------------------------------------------------------


async def test_a_signed_url_by_default_for_port_3000_expiring_in_60_seconds(daytona, make_ctx, clock):
    ctx = make_ctx({"sandbox": SANDBOX_ID})
    await drive(GetPreviewUrl(), ctx, clock)
    assert ctx.channel == "default"
    assert ctx.emitted[0][1].type == "daytona.preview.response"
    assert ctx.data == {
        "sandbox": SANDBOX_ID,
        "port": 3000,
        "signed": True,
        "url": "https://3000-signed-token-abc123.preview.daytona.app",
        "token": "signed-token-abc123",
        "expiresInSeconds": 60,
    }
    [call] = daytona.router.routes["signed_preview"].calls
    assert call.request.url.params["expiresInSeconds"] == "60"


async def test_the_expiry_is_passed_to_daytona(daytona, make_ctx, clock):
    ctx = make_ctx({"sandbox": SANDBOX_ID, "port": 8080, "expiresInSeconds": 3600})
    await drive(GetPreviewUrl(), ctx, clock)
    [call] = daytona.router.routes["signed_preview"].calls
    assert call.request.url.path.endswith("/ports/8080/signed-preview-url")
    assert call.request.url.params["expiresInSeconds"] == "3600"
    assert ctx.data["expiresInSeconds"] == 3600


async def test_an_unsigned_url_returns_the_header_token_and_no_expiry(daytona, make_ctx, clock):
    ctx = make_ctx({"sandbox": SANDBOX_ID, "signed": False})
    await drive(GetPreviewUrl(), ctx, clock)
    assert ctx.data == {
        "sandbox": SANDBOX_ID,
        "port": 3000,
        "signed": False,
        "url": f"https://3000-{SANDBOX_ID}.preview.daytona.app",
        "token": "preview-token-xyz789",
    }


@pytest.mark.parametrize(("value", "rule"), [(0, "between 1 and 86400"), (86401, "between 1 and 86400")])
async def test_expiry_is_bounded(daytona, make_ctx, clock, value, rule):
    with pytest.raises(ConfigError, match=f"expiresInSeconds must be {rule}"):
        await drive(GetPreviewUrl(), make_ctx({"sandbox": SANDBOX_ID, "expiresInSeconds": value}), clock)
    assert not daytona.router.calls


async def test_a_missing_sandbox_fails_with_daytonas_message(daytona, make_ctx, clock):
    daytona.router.routes["signed_preview"].mock(
        return_value=httpx.Response(
            404, json=error_body(404, "Sandbox with ID or name x not found", "Not Found")
        )
    )
    with pytest.raises(ComponentError, match="404: Not Found: Sandbox with ID or name x not found"):
        await drive(GetPreviewUrl(), make_ctx({"sandbox": "x"}), clock)


# --- deleteSandbox --------------------------------------------------------------------------------


async def test_deletes_and_reports_the_seed_payload(daytona, make_ctx, clock):
    daytona.sandboxes[SANDBOX_ID] = {"id": SANDBOX_ID, "labels": {}}
    ctx = make_ctx({"sandbox": SANDBOX_ID})
    ctx.resources.acquire(SANDBOX_RESOURCE, SANDBOX_ID)
    await drive(DeleteSandbox(), ctx, clock)
    assert ctx.channel == "default"
    assert ctx.emitted[0][1].type == "daytona.delete.response"
    assert ctx.data == {"deleted": True, "id": SANDBOX_ID}
    assert daytona.deleted == [SANDBOX_ID]
    assert not ctx.resources.held


async def test_a_sandbox_already_gone_is_reported_not_raised(daytona, make_ctx, clock):
    ctx = make_ctx({"sandbox": "sandbox-gone"})
    await drive(DeleteSandbox(), ctx, clock)
    assert ctx.data == {"deleted": False, "id": "sandbox-gone", "alreadyDeleted": True}


async def test_force_is_sent_to_daytona(daytona, make_ctx, clock):
    daytona.sandboxes[SANDBOX_ID] = {"id": SANDBOX_ID, "labels": {}}
    await drive(DeleteSandbox(), make_ctx({"sandbox": SANDBOX_ID, "force": True}), clock)
    [call] = daytona.router.routes["delete"].calls
    assert call.request.url.params["force"] == "true"


async def test_a_sandbox_named_rather_than_identified_is_released_by_its_id(daytona, make_ctx, clock):
    daytona.sandboxes["my-box"] = {"id": SANDBOX_ID, "labels": {}}
    ctx = make_ctx({"sandbox": "my-box"})
    ctx.resources.acquire(SANDBOX_RESOURCE, SANDBOX_ID)
    await drive(DeleteSandbox(), ctx, clock)
    assert ctx.data == {"deleted": True, "id": SANDBOX_ID}
    assert not ctx.resources.held


async def test_a_server_error_is_retried_then_reported(daytona, make_ctx, clock, sleeps):
    daytona.router.routes["delete"].mock(
        return_value=httpx.Response(503, json=error_body(503, "runner unavailable", "Service Unavailable"))
    )
    with pytest.raises(ComponentError, match="503: Service Unavailable: runner unavailable"):
        await drive(DeleteSandbox(), make_ctx({"sandbox": SANDBOX_ID}), clock)
    assert len(daytona.router.routes["delete"].calls) == 4
    assert len(sleeps.delays) == 3


async def test_a_rerun_after_the_engine_died_mid_delete_still_reports_the_deletion(daytona, make_ctx, clock):
    daytona.sandboxes[SANDBOX_ID] = {"id": SANDBOX_ID, "labels": {}}
    first = make_ctx({"sandbox": SANDBOX_ID})

    def engine_died(channel, payload):
        raise RuntimeError("engine died")

    first.emit = engine_died
    with pytest.raises(RuntimeError):
        await drive(DeleteSandbox(), first, clock)
    resumed = make_ctx({"sandbox": SANDBOX_ID}, metadata=first.metadata)
    await drive(DeleteSandbox(), resumed, clock)
    assert resumed.data == {"deleted": True, "id": SANDBOX_ID}
