"""The local server's figures, each next to a baseline measured in the same run.

- create → ``started`` through the HTTP API (p50, p95) against a bare ``bwrap … true`` spawn
  (target p50 ≤ 25 ms; Daytona advertises 90 ms); also with a disk size of its own, which the
  spare sandbox started ahead cannot serve (the whole cost of a home filesystem in loop mode);
- ``process/execute`` of ``true``, round trip, against the same bare spawn (target ≤ 3 times);
- 50 sandboxes created, used and deleted concurrently (all must succeed), in sandboxes per second,
  against 50 bare spawns one after another;
- a command printing 1 GiB: growth of the server process's RSS (target ≤ 64 MiB) against its RSS
  before.

Prints ``name value unit`` lines. Run: ``python bench/local_server.py [--samples 40]
[--disk-mode auto|loop|accounting]``
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from daytonaflow.localserver import LocalServer
from daytonaflow.localserver.isolation import find_bwrap

MIB = 1 << 20


def emit(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.2f} {unit}", flush=True)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def bare_spawn_argv() -> list[str]:
    return [
        find_bwrap(),
        "--unshare-all",
        "--die-with-parent",
        "--ro-bind",
        "/usr",
        "/usr",
        "--symlink",
        "usr/lib",
        "/lib",
        "--symlink",
        "usr/lib64",
        "/lib64",
        "--symlink",
        "usr/bin",
        "/bin",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "/bin/true",
    ]


def bare_spawns(count: int) -> list[float]:
    argv = bare_spawn_argv()
    timings = []
    for _ in range(count):
        start = time.perf_counter()
        subprocess.run(argv, check=True)
        timings.append(time.perf_counter() - start)
    return timings


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def bench_create(
    http: httpx.Client, server: LocalServer, samples: int, extra: dict[str, float] | None = None
) -> list[float]:
    timings = []
    for _ in range(samples):
        start = time.perf_counter()
        response = http.post(f"{server.api_url}/sandbox", json={"autoStopInterval": 0, **(extra or {})})
        timings.append(time.perf_counter() - start)
        sandbox = response.json()
        assert sandbox["state"] == "started", sandbox
        http.delete(f"{server.api_url}/sandbox/{sandbox['id']}")
    return timings


def bench_execute(http: httpx.Client, server: LocalServer, samples: int) -> list[float]:
    sandbox_id = http.post(f"{server.api_url}/sandbox", json={}).json()["id"]
    url = f"{server.toolbox_url}/{sandbox_id}/process/execute"
    http.post(url, json={"command": "true"})  # warm the agent's lazily imported modules
    timings = []
    for _ in range(samples):
        start = time.perf_counter()
        result = http.post(url, json={"command": "true"}).json()
        timings.append(time.perf_counter() - start)
        assert result["exitCode"] == 0, result
    http.delete(f"{server.api_url}/sandbox/{sandbox_id}")
    return timings


async def bench_concurrent(server: LocalServer, count: int) -> tuple[int, float]:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    limits = httpx.Limits(max_connections=count * 2)
    async with httpx.AsyncClient(headers=headers, timeout=120, limits=limits) as http:

        async def one(index: int) -> bool:
            created = await http.post(f"{server.api_url}/sandbox", json={"autoStopInterval": 0})
            if created.status_code != 200:
                return False
            sandbox_id = created.json()["id"]
            ran = await http.post(
                f"{server.toolbox_url}/{sandbox_id}/process/execute", json={"command": f"echo {index}"}
            )
            deleted = await http.delete(f"{server.api_url}/sandbox/{sandbox_id}")
            return (
                ran.status_code == 200 and ran.json()["result"] == f"{index}\n" and deleted.status_code == 200
            )

        start = time.perf_counter()
        outcomes = await asyncio.gather(*(one(i) for i in range(count)))
        elapsed = time.perf_counter() - start
    return sum(outcomes), elapsed


def bench_flood(http: httpx.Client, server: LocalServer) -> tuple[int, int, float, int]:
    sandbox_id = http.post(f"{server.api_url}/sandbox", json={}).json()["id"]
    before = rss_bytes()
    start = time.perf_counter()
    result = http.post(
        f"{server.toolbox_url}/{sandbox_id}/process/execute",
        json={"command": "head -c 1073741824 /dev/zero | tr '\\0' x"},
        timeout=600,
    ).json()
    elapsed = time.perf_counter() - start
    after = rss_bytes()
    http.delete(f"{server.api_url}/sandbox/{sandbox_id}")
    return before, after, elapsed, len(result["result"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--disk-mode", choices=("auto", "loop", "accounting"), default="auto")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="daytonaflow-bench-"))
    root.chmod(0o711)
    try:
        with (
            LocalServer(state_dir=root / "state", disk_mode=args.disk_mode) as server,
            httpx.Client(headers={"Authorization": f"Bearer {server.api_key}"}, timeout=60) as http,
        ):
            bench_create(http, server, 5)  # warm-up: page cache, first cgroups
            bare = bare_spawns(args.samples)
            bare_p50 = statistics.median(bare) * 1000
            emit("bare_bwrap_true_spawn_p50", bare_p50, "ms")

            creates = bench_create(http, server, args.samples)
            create_p50 = statistics.median(creates) * 1000
            emit("create_to_started_p50", create_p50, "ms")
            emit("create_to_started_p95", percentile(creates, 0.95) * 1000, "ms")
            emit("create_to_started_p50_over_bare_spawn", create_p50 / bare_p50, "x")
            unspared = bench_create(http, server, args.samples, {"disk": 2})
            emit("create_own_disk_size_to_started_p50", statistics.median(unspared) * 1000, "ms")
            emit("create_own_disk_size_to_started_p95", percentile(unspared, 0.95) * 1000, "ms")
            emit("create_target_p50", 25, "ms")
            emit("daytona_advertised_create", 90, "ms")

            executes = bench_execute(http, server, args.samples)
            execute_p50 = statistics.median(executes) * 1000
            emit("execute_true_round_trip_p50", execute_p50, "ms")
            emit("execute_true_round_trip_p95", percentile(executes, 0.95) * 1000, "ms")
            emit("execute_true_over_bare_spawn", execute_p50 / bare_p50, "x")

            bare_serial = sum(bare_spawns(args.concurrent))
            emit("bare_bwrap_true_spawns_serial_throughput", args.concurrent / bare_serial, "spawns/s")
            succeeded, elapsed = asyncio.run(bench_concurrent(server, args.concurrent))
            emit("concurrent_sandboxes_succeeded", succeeded, f"of_{args.concurrent}")
            emit("concurrent_create_use_delete_throughput", args.concurrent / elapsed, "sandboxes/s")

            before, after, flood_seconds, returned = bench_flood(http, server)
            emit("flood_1gib_server_rss_before", before / MIB, "MiB")
            emit("flood_1gib_server_rss_growth", (after - before) / MIB, "MiB")
            emit("flood_1gib_rss_growth_limit", 64, "MiB")
            emit("flood_1gib_result_returned", returned / MIB, "MiB")
            emit("flood_1gib_duration", flood_seconds, "s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
