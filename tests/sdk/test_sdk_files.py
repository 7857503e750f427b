"""The official Python SDK's file system calls (``sandbox.fs``) against a real ``daytonaflow serve``.

Runs against the SDK in the venv and, with ``PYTHONPATH=/tmp/sdk-old``, the oldest one claimed
(0.129.0); a test branches on the version only where the SDK's own API differs.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daytona import AsyncDaytona, DaytonaError, FileUpload, Sandbox
from daytona.common.filesystem import FileDownloadRequest

_SDK = tuple(int(part) for part in importlib.metadata.version("daytona").split(".")[:2])
_NEW_SDK_ONLY = pytest.mark.skipif(_SDK < (0, 163), reason="this SDK has no such call or parameter")
_ALL_BYTES = bytes(range(256)) * 64


@pytest.fixture
def folder(shared_sandbox: Sandbox) -> Iterator[str]:
    """A fresh folder in the shared sandbox's home for one test's files."""
    path = f"/home/daytona/t-{uuid.uuid4().hex[:10]}"
    shared_sandbox.fs.create_folder(path, "755")
    yield path
    shared_sandbox.fs.delete_file(path, recursive=True)


def _info_field(info: Any, name: str, alias: str) -> Any:
    """A FileInfo field older SDKs' model lacks (it is then kept among additional_properties)."""
    return getattr(info, name, None) or info.additional_properties.get(alias)


# ---- upload and download ------------------------------------------------------------------------------


def test_upload_file_then_download_file_round_trips_every_byte(shared_sandbox: Sandbox, folder: str) -> None:
    shared_sandbox.fs.upload_file(_ALL_BYTES, f"{folder}/all.bin")
    assert shared_sandbox.fs.download_file(f"{folder}/all.bin") == _ALL_BYTES


def test_upload_file_to_a_relative_path_lands_in_the_home(shared_sandbox: Sandbox, folder: str) -> None:
    name = os.path.basename(folder)
    shared_sandbox.fs.upload_file(b"relative\n", f"{name}/rel.txt")
    assert shared_sandbox.fs.download_file(f"{folder}/rel.txt") == b"relative\n"


def test_upload_file_from_a_local_path_and_download_file_to_one(
    shared_sandbox: Sandbox, folder: str, tmp_path: Path
) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(3 << 20))
    shared_sandbox.fs.upload_file(str(source), f"{folder}/deep/er/big.bin")
    target = tmp_path / "out" / "big.bin"
    assert shared_sandbox.fs.download_file(f"{folder}/deep/er/big.bin", str(target)) is None
    assert target.read_bytes() == source.read_bytes()


def test_upload_files_then_download_files_round_trip_a_hundred_files(
    shared_sandbox: Sandbox, folder: str
) -> None:
    contents = {f"{folder}/bulk/f{i:03d}.bin": os.urandom(100 << 10) for i in range(100)}
    shared_sandbox.fs.upload_files([FileUpload(data, path) for path, data in contents.items()])
    answers = shared_sandbox.fs.download_files([FileDownloadRequest(source=path) for path in contents])
    assert [a.source for a in answers] == list(contents)
    assert all(a.error is None for a in answers)
    assert {a.source: a.result for a in answers} == contents


def test_download_files_reports_a_missing_file_and_still_returns_the_others(
    shared_sandbox: Sandbox, folder: str
) -> None:
    shared_sandbox.fs.upload_file(b"present", f"{folder}/here.txt")
    here, missing = shared_sandbox.fs.download_files(
        [FileDownloadRequest(source=f"{folder}/here.txt"), FileDownloadRequest(source=f"{folder}/gone.txt")]
    )
    assert here.result == b"present" and here.error is None
    assert missing.result is None
    assert missing.error is not None and "not found" in missing.error


def test_download_file_of_a_missing_file_raises(shared_sandbox: Sandbox, folder: str) -> None:
    with pytest.raises(DaytonaError, match="not found"):
        shared_sandbox.fs.download_file(f"{folder}/nothing-here")


def test_upload_file_outside_the_sandbox_data_is_refused(shared_sandbox: Sandbox) -> None:
    # Older SDKs report the status only, not the answer's message.
    expected = "outside the sandbox's writable areas" if _SDK >= (0, 163) else "400 Bad Request"
    with pytest.raises(DaytonaError, match=expected):
        shared_sandbox.fs.upload_file(b"x", "/etc/evil.txt")


@_NEW_SDK_ONLY
def test_upload_file_stream_and_download_file_stream_round_trip(shared_sandbox: Sandbox, folder: str) -> None:
    data = os.urandom(2 << 20)
    shared_sandbox.fs.upload_file_stream(data, f"{folder}/streamed.bin")
    assert b"".join(shared_sandbox.fs.download_file_stream(f"{folder}/streamed.bin")) == data


# ---- listing and information ---------------------------------------------------------------------------


def test_list_files_lists_files_and_folders_with_their_kind_and_size(
    shared_sandbox: Sandbox, folder: str
) -> None:
    shared_sandbox.fs.upload_file(b"12345", f"{folder}/five.txt")
    shared_sandbox.fs.create_folder(f"{folder}/sub", "755")
    entries = {entry.name: entry for entry in shared_sandbox.fs.list_files(folder)}
    assert set(entries) == {"five.txt", "sub"}
    assert entries["five.txt"].size == 5 and entries["five.txt"].is_dir is False
    assert entries["sub"].is_dir is True


@_NEW_SDK_ONLY
def test_list_files_with_depth_lists_the_folders_below(shared_sandbox: Sandbox, folder: str) -> None:
    shared_sandbox.fs.upload_file(b"deep", f"{folder}/a/b/deep.txt")
    shallow = {entry.path for entry in shared_sandbox.fs.list_files(folder)}
    deep = {entry.path for entry in shared_sandbox.fs.list_files(folder, depth=3)}
    assert shallow == {f"{folder}/a"}
    assert deep == {f"{folder}/a", f"{folder}/a/b", f"{folder}/a/b/deep.txt"}


def test_get_file_info_has_daytonas_types_and_formats(shared_sandbox: Sandbox, folder: str) -> None:
    shared_sandbox.fs.upload_file(b"info!", f"{folder}/info.txt")
    info = shared_sandbox.fs.get_file_info(f"{folder}/info.txt")
    assert (info.name, info.size, info.is_dir) == ("info.txt", 5, False)
    assert (info.mode, info.permissions) == ("-rw-r--r--", "0644")
    assert (info.owner, info.group) == ("daytona", "daytona")
    # modTime in Go's time.String() layout, modifiedAt as RFC 3339: both the same recent instant.
    go_time = datetime.datetime.strptime(info.mod_time[:19] + " +0000", "%Y-%m-%d %H:%M:%S %z")
    assert info.mod_time.endswith(" +0000 UTC")
    modified = datetime.datetime.fromisoformat(_info_field(info, "modified_at", "modifiedAt"))
    assert modified.replace(microsecond=0) == go_time
    assert abs(datetime.datetime.now(datetime.UTC) - modified) < datetime.timedelta(minutes=10)
    assert _info_field(info, "path", "path") == f"{folder}/info.txt"


def test_get_file_info_of_a_missing_path_raises_not_found(shared_sandbox: Sandbox, folder: str) -> None:
    with pytest.raises(DaytonaError, match="not found"):
        shared_sandbox.fs.get_file_info(f"{folder}/missing")


# ---- folders, delete, move --------------------------------------------------------------------------------


def test_create_folder_applies_the_mode(shared_sandbox: Sandbox, folder: str) -> None:
    shared_sandbox.fs.create_folder(f"{folder}/private", "700")
    info = shared_sandbox.fs.get_file_info(f"{folder}/private")
    assert info.is_dir is True
    assert info.permissions == "0700"


def test_delete_file_removes_a_file(shared_sandbox: Sandbox, folder: str) -> None:
    shared_sandbox.fs.upload_file(b"bye", f"{folder}/bye.txt")
    shared_sandbox.fs.delete_file(f"{folder}/bye.txt")
    assert [entry.name for entry in shared_sandbox.fs.list_files(folder)] == []


def test_delete_file_removes_a_non_empty_folder_only_when_recursive(
    shared_sandbox: Sandbox, folder: str
) -> None:
    shared_sandbox.fs.upload_file(b"x", f"{folder}/tree/leaf.txt")
    with pytest.raises(DaytonaError, match="recursive"):
        shared_sandbox.fs.delete_file(f"{folder}/tree")
    shared_sandbox.fs.delete_file(f"{folder}/tree", recursive=True)
    assert [entry.name for entry in shared_sandbox.fs.list_files(folder)] == []


def test_move_files_moves_a_file(shared_sandbox: Sandbox, folder: str) -> None:
    shared_sandbox.fs.upload_file(b"moving", f"{folder}/from.txt")
    shared_sandbox.fs.move_files(f"{folder}/from.txt", f"{folder}/to.txt")
    assert shared_sandbox.fs.download_file(f"{folder}/to.txt") == b"moving"
    assert [entry.name for entry in shared_sandbox.fs.list_files(folder)] == ["to.txt"]


def test_move_files_moves_a_folder_across_filesystems(shared_sandbox: Sandbox, folder: str) -> None:
    shared_sandbox.fs.upload_file(b"across", f"{folder}/dir/inner.txt")
    target = f"/tmp/moved-{uuid.uuid4().hex[:8]}"
    shared_sandbox.fs.move_files(f"{folder}/dir", target)
    assert shared_sandbox.fs.download_file(f"{target}/inner.txt") == b"across"
    shared_sandbox.fs.delete_file(target, recursive=True)


# ---- find, search, replace --------------------------------------------------------------------------------


def test_find_files_returns_each_matching_line_with_file_and_number(
    shared_sandbox: Sandbox, folder: str
) -> None:
    shared_sandbox.fs.upload_file(b"alpha\nneedle one\nbeta\n", f"{folder}/a.txt")
    shared_sandbox.fs.upload_file(b"needle two\n", f"{folder}/sub/b.txt")
    shared_sandbox.fs.upload_file(b"\0binary needle", f"{folder}/c.bin")
    matches = sorted((m.file, m.line, m.content) for m in shared_sandbox.fs.find_files(folder, "needle"))
    assert matches == [(f"{folder}/a.txt", 2, "needle one"), (f"{folder}/sub/b.txt", 1, "needle two")]


def test_search_files_matches_names_by_glob_at_any_depth(shared_sandbox: Sandbox, folder: str) -> None:
    for path in ("x.py", "y.txt", "pkg/z.py", "pkg/deeper/w.py"):
        shared_sandbox.fs.upload_file(b"", f"{folder}/{path}")
    found = shared_sandbox.fs.search_files(folder, "*.py").files
    assert sorted(found) == [f"{folder}/pkg/deeper/w.py", f"{folder}/pkg/z.py", f"{folder}/x.py"]
    below = shared_sandbox.fs.search_files(folder, "pkg/**/*.py").files
    assert sorted(below) == [f"{folder}/pkg/deeper/w.py", f"{folder}/pkg/z.py"]


def test_replace_in_files_replaces_and_reports_per_file(shared_sandbox: Sandbox, folder: str) -> None:
    shared_sandbox.fs.upload_file(b"old and old\n", f"{folder}/r.txt")
    results = shared_sandbox.fs.replace_in_files([f"{folder}/r.txt", f"{folder}/none.txt"], "old", "new")
    by_file = {result.file: result for result in results}
    assert by_file[f"{folder}/r.txt"].success is True
    assert by_file[f"{folder}/none.txt"].success is False
    assert by_file[f"{folder}/none.txt"].error
    assert shared_sandbox.fs.download_file(f"{folder}/r.txt") == b"new and new\n"


# ---- permissions ------------------------------------------------------------------------------------


def test_set_file_permissions_sets_the_mode(shared_sandbox: Sandbox, folder: str) -> None:
    shared_sandbox.fs.upload_file(b"#!/bin/sh\necho ran\n", f"{folder}/run.sh")
    shared_sandbox.fs.set_file_permissions(f"{folder}/run.sh", mode="750")
    assert shared_sandbox.fs.get_file_info(f"{folder}/run.sh").permissions == "0750"
    assert shared_sandbox.process.exec(f"{folder}/run.sh").result.strip() == "ran"


def test_set_file_permissions_accepts_the_sandbox_user_as_owner(shared_sandbox: Sandbox, folder: str) -> None:
    shared_sandbox.fs.upload_file(b"", f"{folder}/own.txt")
    shared_sandbox.fs.set_file_permissions(f"{folder}/own.txt", owner="daytona", group="daytona")
    info = shared_sandbox.fs.get_file_info(f"{folder}/own.txt")
    assert (info.owner, info.group) == ("daytona", "daytona")


def test_set_file_permissions_refuses_another_owner_clearly(shared_sandbox: Sandbox, folder: str) -> None:
    shared_sandbox.fs.upload_file(b"", f"{folder}/mine.txt")
    with pytest.raises(DaytonaError, match="can only belong to its own user daytona"):
        shared_sandbox.fs.set_file_permissions(f"{folder}/mine.txt", owner="root")


# ---- the async client -------------------------------------------------------------------------------


async def test_async_client_round_trips_files_and_finds_in_them(async_client: AsyncDaytona) -> None:
    sandbox = await async_client.create()
    try:
        await sandbox.fs.upload_files(
            [FileUpload(b"async needle\n", "/home/daytona/a1.txt"), FileUpload(_ALL_BYTES, "a2.bin")]
        )
        assert await sandbox.fs.download_file("/home/daytona/a2.bin") == _ALL_BYTES
        names = {entry.name for entry in await sandbox.fs.list_files("/home/daytona")}
        assert {"a1.txt", "a2.bin"} <= names
        matches = await sandbox.fs.find_files("/home/daytona", "needle")
        assert [(m.file, m.line) for m in matches] == [("/home/daytona/a1.txt", 1)]
        await sandbox.fs.move_files("/home/daytona/a1.txt", "/home/daytona/a3.txt")
        await sandbox.fs.set_file_permissions("/home/daytona/a3.txt", mode="600")
        assert (await sandbox.fs.get_file_info("/home/daytona/a3.txt")).permissions == "0600"
    finally:
        await async_client.delete(sandbox)
