"""daytona.listFiles against Daytona's toolbox API (respx)."""

from __future__ import annotations

import httpx
import pytest
from comp_support import SANDBOX_ID, drive, error_body
from files_support import FilesAndStates, assert_example_is_a_valid_event

from daytonaflow.components import ListFiles
from daytonaflow.errors import ComponentError


@pytest.fixture
def files(daytona):
    return FilesAndStates(daytona).install()


async def test_lists_the_home_directory_by_default_with_absolute_paths(daytona, files, make_ctx, clock):
    daytona.files["/home/daytona/result.json"] = b"{}"
    daytona.files["/home/daytona/reports/summary.md"] = b"# ok\n"
    ctx = make_ctx({"sandbox": SANDBOX_ID})
    await drive(ListFiles(), ctx, clock)
    assert ctx.channel == "default"
    assert ctx.emitted[0][1].type == "daytona.files.listed"
    [call] = daytona.router.routes["list_files"].calls
    assert call.request.url.params["path"] == "/home/daytona"
    assert ctx.data == {
        "sandboxId": SANDBOX_ID,
        "path": "/home/daytona",
        "files": [
            {
                "name": "reports",
                "path": "/home/daytona/reports",
                "isDir": True,
                "size": 4096,
                "mode": "0755",
                "modifiedAt": "2026-01-19T11:59:59Z",
            },
            {
                "name": "result.json",
                "path": "/home/daytona/result.json",
                "isDir": False,
                "size": 2,
                "mode": "0644",
                "modifiedAt": "2026-01-19T11:59:59Z",
            },
        ],
        "truncated": False,
    }


async def test_a_relative_path_is_under_home(daytona, files, make_ctx, clock):
    daytona.files["/home/daytona/reports/summary.md"] = b"# ok\n"
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "reports"})
    await drive(ListFiles(), ctx, clock)
    assert ctx.data["path"] == "/home/daytona/reports"
    assert [entry["path"] for entry in ctx.data["files"]] == ["/home/daytona/reports/summary.md"]


async def test_entries_past_max_entries_are_cut_and_truncated_is_true(daytona, files, make_ctx, clock):
    for number in range(5):
        daytona.files[f"/tmp/out/{number}.txt"] = b"x"
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/out", "maxEntries": 3})
    await drive(ListFiles(), ctx, clock)
    assert [entry["name"] for entry in ctx.data["files"]] == ["0.txt", "1.txt", "2.txt"]
    assert ctx.data["truncated"] is True


async def test_exactly_max_entries_is_not_truncated(daytona, files, make_ctx, clock):
    for number in range(3):
        daytona.files[f"/tmp/out/{number}.txt"] = b"x"
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/out", "maxEntries": 3})
    await drive(ListFiles(), ctx, clock)
    assert len(ctx.data["files"]) == 3
    assert ctx.data["truncated"] is False


async def test_daytonas_mode_string_is_given_when_it_has_no_octal_permissions(
    daytona, files, make_ctx, clock
):
    daytona.router.routes["list_files"].mock(
        return_value=httpx.Response(
            200, json=[{"name": "a", "isDir": False, "size": 1, "mode": "-rw-------", "modTime": "t"}]
        )
    )
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp"})
    await drive(ListFiles(), ctx, clock)
    assert ctx.data["files"] == [
        {"name": "a", "path": "/tmp/a", "isDir": False, "size": 1, "mode": "-rw-------", "modifiedAt": "t"}
    ]


async def test_a_missing_directory_fails_with_daytonas_message(daytona, files, make_ctx, clock):
    daytona.router.routes["list_files"].mock(
        return_value=httpx.Response(404, json=error_body(404, "/tmp/nope not found", "Not Found"))
    )
    with pytest.raises(ComponentError, match="404: Not Found: /tmp/nope not found"):
        await drive(ListFiles(), make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/nope"}), clock)


def test_the_example_output_is_a_valid_event():
    assert_example_is_a_valid_event(ListFiles)
