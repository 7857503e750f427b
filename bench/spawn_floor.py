"""Concurrent sandbox creation against the floor this machine can spawn, in the same run.

- ``bare_spawn_floor_N``: N sandboxes started by spawning the project's own bwrap + python agent
  command line directly (same argv, same fds, no HTTP, no cgroups), N at once, until every agent
  answers its readiness ping; sandboxes per second.
- ``server_create_N``: N ``POST /sandbox`` at once against the local server, until every one has
  answered ``started``; sandboxes per second. ``server_over_floor_N`` is their ratio (target ≥ 0.8).
- ``bare_spawn_to_ready_p50_ms``: one such spawn until its agent answers (the agent's start).
- ``first_command_ms`` / ``later_command_ms``: ``process/execute`` of ``true`` in a sandbox just
  created, first and then the median of later ones.

The server runs with its defaults (``--disk-mode auto``: as root with loop devices, every home
is an ext4 filesystem of its own, made and mounted at create, which the floor does not do).

Prints ``name value unit`` lines. Run:
``python bench/spawn_floor.py [--sizes 50,100,200] [--disk-mode auto|loop|accounting]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx

from daytonaflow.localserver import LocalServer, SandboxLimits
from daytonaflow.localserver.agent_client import AgentClient
from daytonaflow.localserver.isolation import (
    compile_agent,
    find_bwrap,
    find_python,
    host_uid_for_sandboxes,
    plan_spawn,
    spawn,
    write_synthetic_etc,
)
from daytonaflow.localserver.sandboxes import _AGENT_SOURCE, _BASE_ENV


def emit(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.2f} {unit}", flush=True)


class _BareSpawner:
    """Starts sandboxes the way the server does, minus the server: plan_spawn + spawn + ping."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bwrap = find_bwrap()
        python = find_python()
        assert python is not None, "no system python3"
        self.python = python
        self.uid = host_uid_for_sandboxes()
        self.etc = root / "etc"
        write_synthetic_etc(self.etc)
        self.agent = root / "agent.pyc"
        compile_agent(self.python, _AGENT_SOURCE, self.agent)
        self.sockets = Path(tempfile.mkdtemp(prefix="df-floor-"))
        self.lifeline_read, self.lifeline_write = os.pipe2(os.O_CLOEXEC)
        self.limits = SandboxLimits()

    def start(self, index: int) -> tuple[subprocess.Popen[bytes], AgentClient]:
        home = self.root / f"home-{index}"
        home.mkdir(mode=0o755, exist_ok=True)
        if self.uid != os.geteuid():
            os.chown(home, self.uid, self.uid)
        path = self.sockets / f"{index}.sock"
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(128)
        try:
            plan = plan_spawn(
                bwrap=self.bwrap,
                python=self.python,
                agent_script=self.agent,
                synthetic_etc=self.etc,
                home=home,
                node_dir=None,
                hostname=f"floor-{index}",
                listen_fd=listener.fileno(),
                lifeline_fd=self.lifeline_read,
                limits=self.limits,
                env=_BASE_ENV,
                rlimit_fallbacks={},
            )
            proc = spawn(plan, self.uid, self.root / "bwrap.log")
        finally:
            listener.close()
        return proc, AgentClient(path, f"floor-{index}")

    async def run(self, count: int) -> float:
        """Seconds from the first spawn until all ``count`` agents answered."""
        began = time.perf_counter()
        started = [self.start(i) for i in range(count)]
        await asyncio.gather(*(_ready(client) for _, client in started))
        elapsed = time.perf_counter() - began
        for proc, _ in started:
            proc.kill()
        for proc, _ in started:
            proc.wait()
        return elapsed

    def close(self) -> None:
        os.close(self.lifeline_write)
        os.close(self.lifeline_read)
        shutil.rmtree(self.sockets, ignore_errors=True)


async def _ready(client: AgentClient) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            await client.call("ping")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.002)


async def _creates(api_url: str, api_key: str, count: int) -> float:
    headers = {"Authorization": f"Bearer {api_key}"}
    limits = httpx.Limits(max_connections=count * 2)
    async with httpx.AsyncClient(headers=headers, timeout=300, limits=limits) as http:

        async def one() -> str:
            created = await http.post(f"{api_url}/sandbox", json={"autoStopInterval": 0})
            assert created.status_code == 200, created.text
            body = created.json()
            assert body["state"] == "started", body
            return str(body["id"])

        began = time.perf_counter()
        ids = await asyncio.gather(*(one() for _ in range(count)))
        elapsed = time.perf_counter() - began
        await asyncio.gather(*(http.delete(f"{api_url}/sandbox/{i}") for i in ids))
    return elapsed


def _creates_in_this_process(api_url: str, api_key: str, count: int) -> float:
    return asyncio.run(_creates(api_url, api_key, count))


def server_creates(server: LocalServer, count: int, clients: ProcessPoolExecutor) -> float:
    """Seconds for ``count`` concurrent creates to all answer ``started``; then deletes them.

    The client runs in a process of its own: in the server's, its own work (and the GIL it
    holds doing it) would be counted as the server's.
    """
    return clients.submit(_creates_in_this_process, server.api_url, server.api_key, count).result()


def first_command(server: LocalServer, rounds: int = 10) -> tuple[float, float]:
    """Median first ``process/execute`` in a just-created sandbox, and median of later ones."""
    firsts, laters = [], []
    with httpx.Client(headers={"Authorization": f"Bearer {server.api_key}"}, timeout=60) as http:
        for _ in range(rounds):
            sandbox_id = http.post(f"{server.api_url}/sandbox", json={}).json()["id"]
            url = f"{server.toolbox_url}/{sandbox_id}/process/execute"
            for attempt in range(6):
                began = time.perf_counter()
                result = http.post(url, json={"command": "true"}).json()
                (firsts if attempt == 0 else laters).append(time.perf_counter() - began)
                assert result["exitCode"] == 0, result
            http.delete(f"{server.api_url}/sandbox/{sandbox_id}")
    return statistics.median(firsts) * 1000, statistics.median(laters) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,100,200")
    parser.add_argument("--disk-mode", choices=("auto", "loop", "accounting"), default="auto")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    root = Path(tempfile.mkdtemp(prefix="daytonaflow-bench-"))
    root.chmod(0o711)
    floor_root = root / "floor"
    floor_root.mkdir(mode=0o711)
    spawner = _BareSpawner(floor_root)
    try:
        with (
            LocalServer(state_dir=root / "state", disk_mode=args.disk_mode) as server,
            ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as clients,
        ):
            server_creates(server, 5, clients)  # warm-up: page cache, first cgroups
            asyncio.run(spawner.run(5))
            for count in sizes:
                floor = count / asyncio.run(spawner.run(count))
                created = count / server_creates(server, count, clients)
                emit(f"bare_spawn_floor_{count}", floor, "sandboxes/s")
                emit(f"server_create_{count}", created, "sandboxes/s")
                emit(f"server_over_floor_{count}", created / floor, "x")
            serial = [asyncio.run(spawner.run(1)) for _ in range(20)]
            emit("bare_spawn_to_ready_p50_ms", statistics.median(serial) * 1000, "ms")
            first, later = first_command(server)
            emit("first_command_ms", first, "ms")
            emit("later_command_ms", later, "ms")
    finally:
        spawner.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
