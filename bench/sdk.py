"""The official Python SDK against the local server, each figure next to a baseline of the same run.

- create → exec → delete of one sandbox through `daytona.Daytona` (median wall) against the same
  three calls as raw HTTP on one httpx client (target: the SDK within 1.5 times the raw calls: what
  the SDK adds is its own, the server must not make it pay more);
- 100 files of 100 KiB uploaded and downloaded in one bulk call each through the SDK (MB/s), against
  the same files moved one HTTP request per file.

Prints ``name value unit`` lines. Run: ``python bench/sdk.py [--samples 15]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
from daytona import Daytona, DaytonaConfig, FileDownloadRequest, FileUpload

from daytonaflow.localserver import LocalServer
from daytonaflow.localserver.disk import remove_tree

_FILES = 100
_FILE_BYTES = 100 << 10
_MB = 1e6


def emit(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.4g} {unit}", flush=True)


@contextlib.contextmanager
def _served() -> Iterator[LocalServer]:
    root = Path(tempfile.mkdtemp(prefix="daytonaflow-bench-sdk-"))
    root.chmod(0o711)  # the sandbox uid traverses to its home
    server = LocalServer(state_dir=root / "state").start()
    try:
        yield server
    finally:
        server.stop()
        remove_tree(root)


def _interleaved_medians(works: list[Callable[[], None]], samples: int) -> list[float]:
    """Each work's median wall, the works taking turns so that drift on a noisy machine (the
    server's spare sandbox, other load) falls on all of them alike."""
    for work in works:
        work()  # warm: first connections, the SDK's lazy imports
    timings: list[list[float]] = [[] for _ in works]
    for _ in range(samples):
        for work, spent in zip(works, timings, strict=True):
            started = time.perf_counter()
            work()
            spent.append(time.perf_counter() - started)
    return [statistics.median(spent) for spent in timings]


def _raw_lifecycle(http: httpx.Client, toolbox: str) -> Callable[[], None]:
    def lifecycle() -> None:
        sandbox = http.post("/sandbox", json={}).raise_for_status().json()
        executed = http.post(f"{toolbox}/{sandbox['id']}/process/execute", json={"command": "true"})
        assert executed.raise_for_status().json()["exitCode"] == 0
        http.delete(f"/sandbox/{sandbox['id']}").raise_for_status()

    return lifecycle


def _sdk_lifecycle(client: Daytona) -> Callable[[], None]:
    def lifecycle() -> None:
        sandbox = client.create()
        assert sandbox.process.exec("true").exit_code == 0
        client.delete(sandbox)

    return lifecycle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=15)
    args = parser.parse_args()
    payloads = [os.urandom(_FILE_BYTES) for _ in range(_FILES)]
    total_mb = _FILES * _FILE_BYTES / _MB
    with _served() as server:
        api_url = f"{server.api_url}"
        headers = {"Authorization": f"Bearer {server.api_key}"}
        client = Daytona(DaytonaConfig(api_key=server.api_key, api_url=api_url))
        with httpx.Client(base_url=api_url, headers=headers, timeout=120) as http:
            toolbox = http.get("/config").raise_for_status().json()["proxyToolboxUrl"]
            raw, sdk = _interleaved_medians(
                [_raw_lifecycle(http, toolbox), _sdk_lifecycle(client)], args.samples
            )
            emit("baseline.sdk.create_exec_delete.raw_http.median", raw * 1000, "ms")
            emit("sdk.create_exec_delete.python_sdk.median", sdk * 1000, "ms")
            emit("sdk.create_exec_delete.ratio_to_raw", sdk / raw, "x")

            sandbox = client.create()
            try:
                names = [f"/home/daytona/bulk/f{index:03d}.bin" for index in range(_FILES)]
                started = time.perf_counter()
                for name, payload in zip(names, payloads, strict=True):
                    http.post(
                        f"{toolbox}/{sandbox.id}/files/upload",
                        params={"path": name},
                        files={"file": ("f", payload)},
                    ).raise_for_status()
                single_up = time.perf_counter() - started
                started = time.perf_counter()
                for name, payload in zip(names, payloads, strict=True):
                    got = http.get(f"{toolbox}/{sandbox.id}/files/download", params={"path": name})
                    assert got.raise_for_status().content == payload
                single_down = time.perf_counter() - started

                uploads = [FileUpload(source=p, destination=n) for n, p in zip(names, payloads, strict=True)]
                started = time.perf_counter()
                sandbox.fs.upload_files(uploads)
                bulk_up = time.perf_counter() - started
                started = time.perf_counter()
                results = sandbox.fs.download_files([FileDownloadRequest(source=n) for n in names])
                bulk_down = time.perf_counter() - started
                assert [r.result for r in results] == payloads, "bulk download returned other bytes"
            finally:
                client.delete(sandbox)
    emit("baseline.sdk.files_100x100KiB.upload.one_request_per_file", total_mb / single_up, "MB/s")
    emit("baseline.sdk.files_100x100KiB.download.one_request_per_file", total_mb / single_down, "MB/s")
    emit("sdk.files_100x100KiB.bulk_upload", total_mb / bulk_up, "MB/s")
    emit("sdk.files_100x100KiB.bulk_download", total_mb / bulk_down, "MB/s")


if __name__ == "__main__":
    main()
