"""daytona.downloadFile against Daytona's toolbox API (respx)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import tracemalloc
from collections.abc import AsyncIterator

import httpx
import pytest
from comp_support import SANDBOX_ID, drive, error_body
from files_support import CHUNK_BYTES, Endless, FilesAndStates, assert_example_is_a_valid_event

from daytonaflow.components import DownloadFile
from daytonaflow.errors import ComponentError

BINARY = bytes(range(256)) * 4
MIB = 1024 * 1024


@pytest.fixture
def files(daytona):
    return FilesAndStates(daytona).install()


async def test_a_text_file_comes_whole_as_text_with_its_size_and_sha256(daytona, files, make_ctx, clock):
    content = b'{"passed": 12, "failed": 0}\n'
    daytona.files["/home/daytona/result.json"] = content
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "result.json"})
    await drive(DownloadFile(), ctx, clock)
    assert ctx.channel == "default"
    assert ctx.emitted[0][1].type == "daytona.file.downloaded"
    assert ctx.data == {
        "sandboxId": SANDBOX_ID,
        "path": "/home/daytona/result.json",
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "encoding": "text",
        "content": content.decode(),
    }
    [info] = daytona.router.routes["file_info"].calls
    assert info.request.url.params["path"] == "/home/daytona/result.json"


async def test_auto_gives_base64_for_bytes_that_are_not_utf8(daytona, files, make_ctx, clock):
    daytona.files["/tmp/blob.bin"] = BINARY
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/blob.bin"})
    await drive(DownloadFile(), ctx, clock)
    assert ctx.data["encoding"] == "base64"
    assert base64.b64decode(ctx.data["content"]) == BINARY
    assert ctx.data["sha256"] == hashlib.sha256(BINARY).hexdigest()


@pytest.mark.parametrize(
    "content",
    [b"\0" * MIB, b"log \x1b[31mred\x1b[0m\n", b"a\x7fb", "c\u0085d".encode()],
    ids=["nul-bytes", "escape", "delete", "c1-control"],
)
async def test_auto_gives_base64_for_utf8_with_control_characters(daytona, files, make_ctx, clock, content):
    daytona.files["/tmp/f"] = content
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/f"})
    await drive(DownloadFile(), ctx, clock)
    assert ctx.data["encoding"] == "base64"
    assert base64.b64decode(ctx.data["content"]) == content
    # Stored no larger than base64 of it (1 MiB of NUL as text would be 6 MiB of \u0000).
    assert len(json.dumps(ctx.data)) < len(content) * 4 // 3 + 1024


async def test_auto_keeps_tabs_newlines_and_carriage_returns_as_text(daytona, files, make_ctx, clock):
    daytona.files["/tmp/f.txt"] = b"a\tb\r\nc\n"
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/f.txt"})
    await drive(DownloadFile(), ctx, clock)
    assert (ctx.data["encoding"], ctx.data["content"]) == ("text", "a\tb\r\nc\n")


async def test_text_taking_over_twice_max_bytes_as_json_fails_naming_the_path_and_the_limit(
    daytona, files, make_ctx, clock
):
    daytona.files["/tmp/nul"] = b"\0" * 1000
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/nul", "encoding": "text", "maxBytes": 1024})
    with pytest.raises(ComponentError) as raised:
        await drive(DownloadFile(), ctx, clock)
    assert str(raised.value) == (
        'node "node-1": /tmp/nul as text takes 6002 bytes of JSON, over the limit of 2048 bytes '
        '(twice maxBytes); use encoding "base64" or "auto"'
    )
    assert not ctx.emitted


async def test_auto_gives_base64_for_text_taking_over_twice_max_bytes_as_json(
    daytona, files, make_ctx, clock
):
    content = ("\U0001f600" * 256).encode()  # 1024 bytes; 3074 as JSON (\ud83d\ude00 each)
    daytona.files["/tmp/emoji.txt"] = content
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/emoji.txt", "maxBytes": 1024})
    await drive(DownloadFile(), ctx, clock)
    assert ctx.data["encoding"] == "base64"
    assert base64.b64decode(ctx.data["content"]) == content


async def test_base64_is_given_when_asked_even_for_text(daytona, files, make_ctx, clock):
    daytona.files["/tmp/a.txt"] = b"plain"
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/a.txt", "encoding": "base64"})
    await drive(DownloadFile(), ctx, clock)
    assert (ctx.data["encoding"], ctx.data["content"]) == ("base64", base64.b64encode(b"plain").decode())


async def test_text_asked_of_a_binary_file_fails_naming_the_path(daytona, files, make_ctx, clock):
    daytona.files["/tmp/blob.bin"] = BINARY
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/blob.bin", "encoding": "text"})
    with pytest.raises(
        ComponentError, match=r'node "node-1": /tmp/blob.bin is not valid UTF-8 text .*"base64"'
    ):
        await drive(DownloadFile(), ctx, clock)


async def test_a_file_over_max_bytes_fails_with_path_size_and_limit_without_downloading(
    daytona, files, make_ctx, clock
):
    daytona.files["/tmp/big.log"] = b"y" * 2048
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/big.log", "maxBytes": 1024})
    with pytest.raises(
        ComponentError,
        match=r'node "node-1": /tmp/big.log is 2048 bytes, over the maxBytes limit of 1024 bytes',
    ):
        await drive(DownloadFile(), ctx, clock)
    assert not daytona.router.routes["download"].calls
    assert not ctx.emitted


async def test_a_file_exactly_max_bytes_long_is_downloaded(daytona, files, make_ctx, clock):
    daytona.files["/tmp/edge"] = b"z" * 1024
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/edge", "maxBytes": 1024})
    await drive(DownloadFile(), ctx, clock)
    assert ctx.data["size"] == 1024


async def test_a_file_that_grew_after_its_size_was_asked_is_read_only_to_the_limit(
    daytona, files, make_ctx, clock
):
    # /files/info says 10 bytes; the download then goes on for 64 MiB.
    daytona.files["/tmp/growing.log"] = b"0123456789"
    body = files.grown["/tmp/growing.log"] = Endless(64 * MIB)
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/growing.log", "maxBytes": MIB})
    with pytest.raises(
        ComponentError,
        match=rf"/tmp/growing.log is more than {MIB} bytes, over the maxBytes limit of {MIB} bytes",
    ):
        await drive(DownloadFile(), ctx, clock)
    assert not ctx.emitted
    # The read stopped at the limit: at most one chunk past it was ever produced.
    assert body.sent <= MIB + 2 * CHUNK_BYTES


async def test_max_bytes_is_at_most_16_mib(daytona, files, make_ctx, clock):
    [issue] = DownloadFile.validate_config(
        {"sandbox": SANDBOX_ID, "path": "a", "maxBytes": 16 * MIB + 1}, allow_expressions=False
    )
    assert (issue.field, issue.message) == ("maxBytes", f"must be between 1 and {16 * MIB}")


async def test_a_directory_is_refused_naming_it(daytona, files, make_ctx, clock):
    daytona.files["/tmp/dir/inside"] = b""
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/dir"})
    with pytest.raises(ComponentError, match=r'node "node-1": /tmp/dir is a directory, not a file'):
        await drive(DownloadFile(), ctx, clock)


async def test_a_missing_file_fails_with_daytonas_message(daytona, files, make_ctx, clock):
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/nope"})
    with pytest.raises(ComponentError, match="404: Not Found: file /tmp/nope not found"):
        await drive(DownloadFile(), ctx, clock)


async def test_a_503_on_the_download_is_repeated(daytona, files, make_ctx, clock):
    daytona.files["/tmp/f"] = b"data"
    route = daytona.router.routes["download"]
    serve = route.side_effect
    answers = iter([httpx.Response(503, json=error_body(503, "busy", "Service Unavailable"))])
    route.side_effect = lambda request, **params: next(answers, None) or serve(request, **params)
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/f"})
    await drive(DownloadFile(), ctx, clock)
    assert len(route.calls) == 2
    assert ctx.data["content"] == "data"


async def test_only_the_head_of_an_error_answer_is_read(daytona, files, make_ctx, clock):
    daytona.files["/tmp/f"] = b"data"
    body = Endless(64 * MIB)
    daytona.router.routes["download"].mock(
        side_effect=lambda request, **params: httpx.Response(400, content=body.chunks())
    )
    with pytest.raises(ComponentError, match="GET /files/download failed with 400: xxxx"):
        await drive(DownloadFile(), make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/f"}), clock)
    assert body.sent <= 64 * 1024 + CHUNK_BYTES


async def test_a_download_asks_for_the_file_uncompressed(daytona, files, make_ctx, clock):
    daytona.files["/tmp/f"] = b"data"
    await drive(DownloadFile(), make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/f"}), clock)
    [download] = daytona.router.routes["download"].calls
    assert download.request.headers["Accept-Encoding"] == "identity"


def _gzip_answer(content: bytes, status: int = 200) -> httpx.Response:
    """``content`` gzipped, streamed in pieces as a server sends it (respx reads a whole body first)."""
    compressed = gzip.compress(content)

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(compressed), CHUNK_BYTES):
            yield compressed[start : start + CHUNK_BYTES]

    return httpx.Response(status, content=pieces(), headers={"Content-Encoding": "gzip"})


async def test_a_gzip_answer_from_a_server_that_compresses_anyway_is_decoded(daytona, files, make_ctx, clock):
    content = b"line of a log\n" * 100
    daytona.files["/tmp/f.log"] = content
    daytona.router.routes["download"].mock(side_effect=lambda request, **params: _gzip_answer(content))
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/f.log"})
    await drive(DownloadFile(), ctx, clock)
    assert ctx.data["content"] == content.decode()


@pytest.mark.parametrize("status", [200, 400])
async def test_a_compressed_answer_is_inflated_no_further_than_the_bound(
    daytona, files, make_ctx, clock, status
):
    # /files/info says 10 bytes; the answer is 64 KiB of gzip standing for 64 MiB.
    daytona.files["/tmp/bomb"] = b"0123456789"
    answer = _gzip_answer(b"x" * 64 * MIB, status)
    daytona.router.routes["download"].mock(side_effect=lambda request, **params: answer)
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/bomb", "maxBytes": 1024})
    tracemalloc.start()
    try:
        with pytest.raises(
            ComponentError, match="more than 1024 bytes" if status == 200 else "failed with 400"
        ):
            await drive(DownloadFile(), ctx, clock)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MIB


def test_the_example_output_is_a_valid_event():
    assert_example_is_a_valid_event(DownloadFile)
