"""Bulk upload/download and the file operations the SDKs use, against abuse: paths that leave the
sandbox's data, symlinks, oversized files and requests, unbounded results; memory stays bounded."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from localserver_testkit import MIB, TEST_LIMITS, Api

pytestmark = pytest.mark.sandbox

_BOUNDARY = "bulk-test-boundary"


def _field(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return f"--{_BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"


def _bulk_body(files: list[tuple[str, Iterator[bytes]]]) -> Iterator[bytes]:
    """A bulk-upload body as the SDKs send it (every path part first, then the files), streamed."""
    for index, (path, _) in enumerate(files):
        yield _field(f"files[{index}].path", path.encode())
    for index, (path, chunks) in enumerate(files):
        head = (
            f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="files[{index}].file"; filename="{path}"'
        )
        yield head.encode() + b"\r\n\r\n"
        yield from chunks
        yield b"\r\n"
    yield f"--{_BOUNDARY}--\r\n".encode()


def _bulk_upload(api: Api, sandbox_id: str, body: Iterator[bytes]) -> Any:
    return api.http.post(
        f"{api.server.toolbox_url}/{sandbox_id}/files/bulk-upload",
        headers={"content-type": f"multipart/form-data; boundary={_BOUNDARY}"},
        content=body,
    )


def _sh(api: Api, sandbox: dict[str, Any], command: str) -> str:
    result: str = api.run(sandbox["id"], command)["result"]
    return result


def _seeded(seed: int, size: int) -> Iterator[bytes]:
    """``size`` deterministic bytes in 64 KiB chunks (never held whole)."""
    block = hashlib.sha256(str(seed).encode()).digest() * 2048
    for offset in range(0, size, len(block)):
        yield block[: min(len(block), size - offset)]


def _digest(chunks: Iterator[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


# ---- paths --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["../../../tmp/escape.txt", "/home/daytona/../../tmp/escape.txt"])
def test_bulk_upload_with_dot_dot_is_refused_per_file(api: Api, sandbox: dict[str, Any], path: str) -> None:
    response = _bulk_upload(
        api, sandbox["id"], _bulk_body([("fine.txt", iter([b"ok"])), (path, iter([b"x"]))])
    )
    assert response.status_code == 400
    body = response.json()
    assert [e for e in body["errors"] if "'..'" in e]
    assert body["files"] == [{"path": "fine.txt", "bytes": 2}]
    assert _sh(api, sandbox, "cat fine.txt; ls /tmp") == "ok"


def test_bulk_upload_through_a_symlink_out_of_the_data_is_refused(api: Api, sandbox: dict[str, Any]) -> None:
    _sh(api, sandbox, "ln -s /usr/lib outdir")
    response = _bulk_upload(api, sandbox["id"], _bulk_body([("outdir/evil.so", iter([b"x"]))]))
    assert response.status_code == 400
    assert "outside the sandbox's writable areas" in response.json()["errors"][0]
    assert _sh(api, sandbox, "ls /usr/lib/evil.so 2>&1 || true").endswith("No such file or directory\n")


def test_bulk_download_does_not_follow_a_symlink_out_of_the_data(api: Api, sandbox: dict[str, Any]) -> None:
    _sh(api, sandbox, "ln -s /etc/hostname leak; echo mine > own.txt")
    response = api.toolbox("POST", sandbox["id"], "/files/bulk-download", json={"paths": ["leak", "own.txt"]})
    assert response.status_code == 200
    text = response.content.decode()
    assert 'name="error"; filename="leak"' in text and "resolves outside" in text
    assert 'name="file"; filename="own.txt"' in text and "mine\n" in text


def test_bulk_download_part_headers_never_carry_a_raw_newline(api: Api, sandbox: dict[str, Any]) -> None:
    _sh(api, sandbox, "printf x > \"$(printf 'a\\r\\nX-Injected: 1')\"")
    response = api.toolbox(
        "POST", sandbox["id"], "/files/bulk-download", json={"paths": ["a\r\nX-Injected: 1"]}
    )
    assert response.status_code == 200
    assert b"\r\nX-Injected" not in response.content
    assert b"filename*=utf-8''a%0D%0AX-Injected%3A%201" in response.content


# ---- sizes --------------------------------------------------------------------------------------------


def test_bulk_upload_cannot_bypass_the_per_file_upload_limit(api: Api, sandbox: dict[str, Any]) -> None:
    def oversized() -> Iterator[bytes]:
        chunk = b"\0" * MIB
        for _ in range(TEST_LIMITS.upload_bytes // MIB + 8):
            yield chunk

    files = [("small.txt", iter([b"small"])), ("big.bin", oversized())]
    response = _bulk_upload(api, sandbox["id"], _bulk_body(files))
    assert response.status_code == 413
    # The server's own count refused it (the agent's limit is the second line of defence).
    assert "big.bin (files[1]) exceeds the upload limit" in response.json()["message"]
    assert _sh(api, sandbox, "ls big.bin .daytonaflow-upload* 2>/dev/null | wc -l") == "0\n"


def test_bulk_upload_of_too_many_files_is_a_400(api: Api, sandbox: dict[str, Any]) -> None:
    body = b"".join(_field(f"files[{i}].path", b"p") for i in range(20_001)) + f"--{_BOUNDARY}--\r\n".encode()
    response = _bulk_upload(api, sandbox["id"], iter([body]))
    assert response.status_code == 400
    assert response.json()["code"] == "TOO_MANY_FILES"


def test_bulk_upload_path_part_and_part_headers_are_bounded(api: Api, sandbox: dict[str, Any]) -> None:
    long_path = _bulk_upload(api, sandbox["id"], iter([_field("files[0].path", b"a" * 5000)]))
    assert long_path.status_code == 400 and "files[0].path exceeds" in long_path.json()["message"]
    header = f"--{_BOUNDARY}\r\nX-Pad: {'p' * (32 << 10)}\r\n\r\nx\r\n".encode()
    long_header = _bulk_upload(api, sandbox["id"], iter([header]))
    assert long_header.status_code == 400
    assert long_header.json()["code"] == "INVALID_MULTIPART"


def test_bulk_upload_paths_are_bounded_together(api: Api, sandbox: dict[str, Any]) -> None:
    body = (
        b"".join(_field(f"files[{i}].path", b"p" * 4000) for i in range(1100))
        + f"--{_BOUNDARY}--\r\n".encode()
    )
    response = _bulk_upload(api, sandbox["id"], iter([body]))
    assert response.status_code == 400
    assert "paths of one bulk upload exceed" in response.json()["message"]


def test_bulk_download_of_too_many_paths_is_a_400(api: Api, sandbox: dict[str, Any]) -> None:
    paths = [f"f{i}" for i in range(10_001)]
    response = api.toolbox("POST", sandbox["id"], "/files/bulk-download", json={"paths": paths})
    assert response.status_code == 400
    assert "at most 10000" in response.json()["message"]


def test_bulk_transfers_keep_the_servers_memory_bounded(api: Api, sandbox: dict[str, Any]) -> None:
    """100 files x 100 KiB and one file near the upload limit, up and down, each streamed: the
    server's Python allocations stay far below what passes through it."""
    hundred = [(f"many/f{i:03d}", i) for i in range(100)]
    big_size = TEST_LIMITS.upload_bytes - MIB
    # A first small round trip, so that what is imported or cached once is not counted.
    _bulk_upload(api, sandbox["id"], _bulk_body([("warm", iter([b"up"]))]))
    api.toolbox("POST", sandbox["id"], "/files/bulk-download", json={"paths": ["warm"]})
    tracemalloc.start()
    try:
        uploaded = _bulk_upload(
            api,
            sandbox["id"],
            _bulk_body(
                [(p, _seeded(s, 100 << 10)) for p, s in hundred] + [("big.bin", _seeded(7, big_size))]
            ),
        )
        assert uploaded.status_code == 200, uploaded.text
        paths = [p for p, _ in hundred] + ["big.bin"]
        with api.http.stream(
            "POST", f"{api.server.toolbox_url}/{sandbox['id']}/files/bulk-download", json={"paths": paths}
        ) as response:
            assert response.status_code == 200
            downloaded = _digest(response.iter_bytes())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    moved = 100 * (100 << 10) + big_size
    assert peak < 4 * MIB, f"peak {peak} bytes for {moved} bytes moved each way"
    assert len(downloaded) == 64
    sums = _sh(api, sandbox, "sha256sum many/f042 big.bin | cut -d' ' -f1").split()
    assert sums == [_digest(_seeded(42, 100 << 10)), _digest(_seeded(7, big_size))]


# ---- results --------------------------------------------------------------------------------------------


def test_find_with_too_many_matches_is_a_400_not_a_partial_answer(api: Api, sandbox: dict[str, Any]) -> None:
    _sh(api, sandbox, "seq 1 30000 > numbers.txt")
    response = api.toolbox("GET", sandbox["id"], "/files/find", params={"path": ".", "pattern": "1"})
    assert response.status_code == 400
    assert "narrow the search" in response.json()["message"]


def test_search_with_too_many_files_is_a_400(api: Api, sandbox: dict[str, Any]) -> None:
    _sh(api, sandbox, "mkdir many && cd many && seq 1 10001 | xargs touch")
    response = api.toolbox("GET", sandbox["id"], "/files/search", params={"path": "many", "pattern": "*"})
    assert response.status_code == 400
    assert "narrow the search" in response.json()["message"]


def test_replace_that_would_grow_a_file_past_the_cap_fails_for_that_file(
    api: Api, sandbox: dict[str, Any]
) -> None:
    _sh(api, sandbox, "head -c 1048576 /dev/zero | tr '\\0' a > as.txt")
    body = {"files": ["as.txt"], "pattern": "a", "newValue": "b" * 100}
    response = api.toolbox("POST", sandbox["id"], "/files/replace", json=body)
    assert response.status_code == 200
    [result] = response.json()
    assert result["success"] is False and "would grow past" in result["error"]
    assert _sh(api, sandbox, "head -c 3 as.txt") == "aaa"


@pytest.mark.parametrize(
    ("params", "field"),
    [({"path": "x"}, "pattern"), ({"pattern": "x"}, "path")],
)
@pytest.mark.parametrize("route", ["/files/find", "/files/search"])
def test_find_and_search_without_a_field_are_a_400_naming_it(
    api: Api, sandbox: dict[str, Any], route: str, params: dict[str, str], field: str
) -> None:
    response = api.toolbox("GET", sandbox["id"], route, params=params)
    assert response.status_code == 400
    assert response.json()["message"].startswith(field)


def test_set_permissions_refuses_root_as_owner_or_group(api: Api, sandbox: dict[str, Any]) -> None:
    _sh(api, sandbox, "touch mine")
    for field in ("owner", "group"):
        response = api.toolbox(
            "POST", sandbox["id"], "/files/permissions", params={"path": "mine", field: "root"}
        )
        assert response.status_code == 400
        assert "can only belong to its own user daytona" in response.json()["message"]
    assert _sh(api, sandbox, "stat -c %U:%G mine") == "daytona:daytona\n"


def test_move_out_of_the_data_is_refused(api: Api, sandbox: dict[str, Any]) -> None:
    _sh(api, sandbox, "echo stay > stay.txt")
    response = api.toolbox(
        "POST", sandbox["id"], "/files/move", params={"source": "stay.txt", "destination": "/usr/stay.txt"}
    )
    assert response.status_code == 403
    assert _sh(api, sandbox, "cat stay.txt") == "stay\n"


def test_host_paths_are_never_opened_by_the_server(api: Api, sandbox: dict[str, Any]) -> None:
    """A path naming a host file the sandbox cannot see gives the sandbox's view, not the host's."""
    host_only = f"/tmp/host-only-{os.getpid()}"
    with open(host_only, "w") as handle:
        handle.write("host secret")
    try:
        response = api.toolbox("POST", sandbox["id"], "/files/bulk-download", json={"paths": [host_only]})
        assert b"host secret" not in response.content
        assert b'name="error"' in response.content
    finally:
        os.unlink(host_only)


@pytest.mark.parametrize("depth", ["0", "65", "\u00b2", "-1", "two"])
def test_list_with_a_depth_that_is_not_1_to_64_is_a_400(
    api: Api, sandbox: dict[str, Any], depth: str
) -> None:
    response = api.toolbox("GET", sandbox["id"], "/files", params={"path": ".", "depth": depth})
    assert response.status_code == 400
    assert response.json()["message"].startswith("depth must be an integer from 1 to 64")
