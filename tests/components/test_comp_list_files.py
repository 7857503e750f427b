"""daytona.listFiles against Daytona's toolbox API (respx)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from comp_support import SANDBOX_ID, drive, error_body
from files_support import FilesAndStates, assert_example_is_a_valid_event

from daytonaflow.components import ListFiles, client
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


@dataclass
class Listing:
    """A streamed JSON array of ``count`` FileInfo, sent in pieces of ``piece`` bytes that split
    entries anywhere; ``sent`` counts the bytes produced."""

    count: int
    piece: int = 1000
    sent: int = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        pending = b"["
        for number in range(self.count):
            entry = {"name": f"f{number}.txt", "isDir": False, "size": 1, "mode": "0644", "modTime": "t"}
            pending += (b"," if number else b"") + json.dumps(entry).encode()
            while len(pending) >= self.piece:
                self.sent += self.piece
                yield pending[: self.piece]
                pending = pending[self.piece :]
        self.sent += len(pending) + 1
        yield pending + b"]"


def _serve(daytona, body: Listing) -> None:
    daytona.router.routes["list_files"].mock(
        side_effect=lambda request, **params: httpx.Response(200, content=body.chunks())
    )


async def test_a_huge_listing_is_read_only_as_far_as_max_entries(daytona, files, make_ctx, clock):
    body = Listing(200_000)  # About 16 MiB, as code in a sandbox can make.
    _serve(daytona, body)
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/many", "maxEntries": 10})
    await drive(ListFiles(), ctx, clock)
    assert [entry["name"] for entry in ctx.data["files"]] == [f"f{number}.txt" for number in range(10)]
    assert ctx.data["truncated"] is True
    assert body.sent <= 4 * body.piece


async def test_a_streamed_listing_split_anywhere_is_read_whole(daytona, files, make_ctx, clock):
    for piece in (1, 7, 1000):
        body = Listing(50, piece=piece)
        _serve(daytona, body)
        ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/many", "maxEntries": 50})
        await drive(ListFiles(), ctx, clock)
        assert [entry["name"] for entry in ctx.data["files"]] == [f"f{number}.txt" for number in range(50)]
        assert ctx.data["truncated"] is False


async def test_a_listing_over_the_byte_cap_fails_saying_so(daytona, files, make_ctx, clock, monkeypatch):
    monkeypatch.setattr(client, "_MAX_LISTING_BYTES", 16 * 1024)
    body = Listing(100_000)
    _serve(daytona, body)
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/many", "maxEntries": 100_000})
    with pytest.raises(ComponentError) as raised:
        await drive(ListFiles(), ctx, clock)
    message = str(raised.value)
    assert "Daytona's listing is over 16384 bytes (" in message
    assert "entries read before that): list a smaller directory or ask for fewer entries" in message
    assert body.sent <= 16 * 1024 + 2 * body.piece


async def test_an_entry_over_64_kib_fails_without_reading_on(daytona, files, make_ctx, clock):
    sent = 0

    async def endless_entry() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'[{"name": "'
        while sent < 1024 * 1024:
            sent += 1000
            yield b"x" * 1000

    daytona.router.routes["list_files"].mock(
        side_effect=lambda request, **params: httpx.Response(200, content=endless_entry())
    )
    with pytest.raises(ComponentError, match="Daytona's answer to GET /files is not a list of FileInfo"):
        await drive(ListFiles(), make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp"}), clock)
    assert sent <= 64 * 1024 + 2000


@pytest.mark.parametrize(
    "answer",
    [b'{"name": "a"}', b'[{"name": "a"}, 3]', b'[{"name": "a"}', b'[{"name": "a"} {"name": "b"}]'],
    ids=["an-object", "a-number-entry", "cut-short", "no-comma"],
)
async def test_an_answer_that_is_not_a_list_of_file_info_fails_saying_so(
    daytona, files, make_ctx, clock, answer
):
    daytona.router.routes["list_files"].mock(return_value=httpx.Response(200, content=answer))
    with pytest.raises(ComponentError, match="Daytona's answer to GET /files is not a list of FileInfo"):
        await drive(ListFiles(), make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp"}), clock)


def test_the_example_output_is_a_valid_event():
    assert_example_is_a_valid_event(ListFiles)
