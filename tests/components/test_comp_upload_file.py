"""daytona.uploadFile against Daytona's toolbox API (respx)."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest
from comp_support import SANDBOX_ID, drive, error_body
from files_support import assert_example_is_a_valid_event

from daytonaflow.components import UploadFile
from daytonaflow.errors import ComponentError, ConfigError

BINARY = bytes(range(256)) * 4


async def test_text_is_written_under_home_and_reported_with_its_size_and_sha256(daytona, make_ctx, clock):
    content = "héllo, sandbox\n"
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "notes/hello.txt", "content": content})
    await drive(UploadFile(), ctx, clock)
    written = content.encode()
    assert daytona.files == {"/home/daytona/notes/hello.txt": written}
    assert ctx.channel == "default"
    assert ctx.emitted[0][1].type == "daytona.file.uploaded"
    assert ctx.data == {
        "sandboxId": SANDBOX_ID,
        "path": "/home/daytona/notes/hello.txt",
        "size": len(written),
        "sha256": hashlib.sha256(written).hexdigest(),
    }


async def test_the_parent_directories_are_created_first(daytona, make_ctx, clock):
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/deep/er/file.txt", "content": "x"})
    await drive(UploadFile(), ctx, clock)
    assert daytona.folders == [("/tmp/deep/er", "0755")]
    names = [call.request.url.path.rsplit("/", 1)[-1] for call in daytona.router.calls]
    assert names.index("folder") < names.index("upload")


async def test_no_directory_is_created_when_create_directories_is_off(daytona, make_ctx, clock):
    config = {"sandbox": SANDBOX_ID, "path": "/tmp/a/b.txt", "content": "x", "createDirectories": False}
    await drive(UploadFile(), make_ctx(config), clock)
    assert daytona.folders == []
    assert daytona.files == {"/tmp/a/b.txt": b"x"}


async def test_base64_content_is_written_as_the_bytes_it_encodes(daytona, make_ctx, clock):
    encoded = base64.b64encode(BINARY).decode()
    # Line breaks in base64 (as `base64` wraps it at 76 columns) are ignored.
    wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "blob.bin", "content": wrapped, "encoding": "base64"})
    await drive(UploadFile(), ctx, clock)
    assert daytona.files["/home/daytona/blob.bin"] == BINARY
    assert ctx.data["size"] == len(BINARY)
    assert ctx.data["sha256"] == hashlib.sha256(BINARY).hexdigest()


async def test_content_that_is_not_base64_fails_naming_the_node_and_field_and_writes_nothing(
    daytona, make_ctx, clock
):
    ctx = make_ctx(
        {"sandbox": SANDBOX_ID, "path": "blob.bin", "content": "not base64!", "encoding": "base64"}
    )
    with pytest.raises(
        ConfigError, match=r'node "node": content is not valid base64 \(encoding is "base64"\)'
    ):
        await drive(UploadFile(), ctx, clock)
    assert daytona.files == {}
    assert not ctx.emitted


def test_literal_content_that_is_not_base64_is_refused_when_the_canvas_is_checked():
    config = {"sandbox": SANDBOX_ID, "path": "a.bin", "content": "@@@", "encoding": "base64"}
    [issue] = UploadFile.validate_config(config, allow_expressions=True)
    assert issue.field == "content"
    assert "is not valid base64" in issue.message


def test_content_from_an_expression_is_checked_once_resolved_not_when_the_canvas_is_checked():
    config = {"sandbox": SANDBOX_ID, "path": "a.bin", "content": "{{ $.data.blob }}", "encoding": "base64"}
    assert UploadFile.validate_config(config, allow_expressions=True) == []


def test_text_content_is_never_checked_as_base64():
    config = {"sandbox": SANDBOX_ID, "path": "a.txt", "content": "not base64!"}
    assert UploadFile.validate_config(config, allow_expressions=False) == []


async def test_the_mode_is_set_after_the_write_and_reported(daytona, make_ctx, clock):
    config = {"sandbox": SANDBOX_ID, "path": "run.sh", "content": "#!/bin/sh\necho hi\n", "mode": "0755"}
    ctx = make_ctx(config)
    await drive(UploadFile(), ctx, clock)
    assert daytona.modes == {"/home/daytona/run.sh": "0755"}
    assert ctx.data["mode"] == "0755"
    names = [call.request.url.path.rsplit("/", 1)[-1] for call in daytona.router.calls]
    assert names.index("upload") < names.index("permissions")


@pytest.mark.parametrize("mode", ["999", "rwxr-xr-x", "07555", "64"])
def test_a_mode_that_is_not_octal_permissions_is_refused(mode):
    config = {"sandbox": SANDBOX_ID, "path": "a", "content": "", "mode": mode}
    [issue] = UploadFile.validate_config(config, allow_expressions=False)
    assert (issue.field, issue.message) == ("mode", "must be an octal permission such as 0644 or 755")


async def test_an_empty_file_is_written(daytona, make_ctx, clock):
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/empty"})
    await drive(UploadFile(), ctx, clock)
    assert daytona.files == {"/tmp/empty": b""}
    assert ctx.data["sha256"] == hashlib.sha256(b"").hexdigest()


async def test_a_503_on_the_upload_is_repeated_since_the_write_is_an_overwrite(daytona, make_ctx, clock):
    route = daytona.router.routes["upload"]
    written = route.side_effect
    answers = iter([httpx.Response(503, json=error_body(503, "busy", "Service Unavailable"))])
    route.side_effect = lambda request, **params: next(answers, None) or written(request, **params)
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/tmp/f", "content": "x"})
    await drive(UploadFile(), ctx, clock)
    assert len(route.calls) == 2
    assert daytona.files == {"/tmp/f": b"x"}


async def test_a_refused_write_fails_the_node_with_daytonas_message(daytona, make_ctx, clock):
    daytona.router.routes["upload"].side_effect = None
    daytona.router.routes["upload"].return_value = httpx.Response(
        403, json=error_body(403, "/etc/passwd resolves outside /home/daytona, /tmp", "Forbidden")
    )
    ctx = make_ctx({"sandbox": SANDBOX_ID, "path": "/etc/passwd", "content": "x", "createDirectories": False})
    with pytest.raises(ComponentError, match="403: Forbidden: /etc/passwd resolves outside"):
        await drive(UploadFile(), ctx, clock)
    assert not ctx.emitted


def test_the_example_output_is_a_valid_event():
    assert_example_is_a_valid_event(UploadFile)
