"""The server side of a command run through a session and followed, against one raw execute.

- ``session_path_echo_ms``: ``POST /process/session``, ``POST .../exec {runAsync: true}``, the
  WebSocket follow of its logs until the server closes it, ``GET .../command/{id}`` and
  ``DELETE /process/session/{id}`` for ``echo hi`` (what a resumable executeCommand does);
- ``raw_execute_echo_ms``: one ``POST /process/execute`` of ``echo hi``;
- ``session_path_over_raw``: their ratio (the component target is ≤ 1.5).

Medians of ``--rounds`` (default 30), the two interleaved, from a client in a process of its own.
Prints ``name value unit`` lines. Run:
``python bench/session_path.py [--rounds 30]``
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from daytonaflow.localserver import LocalServer


def emit(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.2f} {unit}", flush=True)


def session_path(http: httpx.Client, toolbox: str, headers: dict[str, str], index: int) -> float:
    began = time.perf_counter()
    session = f"bench-{index}"
    assert http.post(f"{toolbox}/process/session", json={"sessionId": session}).status_code == 201
    started = http.post(
        f"{toolbox}/process/session/{session}/exec", json={"command": "echo hi", "runAsync": True}
    )
    command = started.json()["cmdId"]
    logs = f"{toolbox}/process/session/{session}/command/{command}/logs?follow=true"
    url = "ws" + logs.removeprefix("http")
    output = b""
    with connect(url, additional_headers=headers) as websocket:
        try:
            for message in websocket:
                output += message if isinstance(message, bytes) else message.encode()
        except ConnectionClosed:
            pass
        assert websocket.close_code == 1000, websocket.close_code
    assert output == b"\x01\x01\x01hi\n", output
    status = http.get(f"{toolbox}/process/session/{session}/command/{command}").json()
    assert status["exitCode"] == 0, status
    assert http.delete(f"{toolbox}/process/session/{session}").status_code == 204
    return time.perf_counter() - began


def raw_execute(http: httpx.Client, toolbox: str) -> float:
    began = time.perf_counter()
    result = http.post(f"{toolbox}/process/execute", json={"command": "echo hi"}).json()
    assert result == {"exitCode": 0, "result": "hi\n"}, result
    return time.perf_counter() - began


def measure(api_url: str, toolbox_url: str, api_key: str, rounds: int) -> tuple[list[float], list[float]]:
    """Both paths, interleaved, in a sandbox of its own: session timings, raw timings."""
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(headers=headers, timeout=60) as http:
        sandbox_id = http.post(f"{api_url}/sandbox", json={}).json()["id"]
        toolbox = f"{toolbox_url}/{sandbox_id}"
        for index in range(3):  # warm-up: connections, the agent's first commands
            raw_execute(http, toolbox)
            session_path(http, toolbox, headers, -1 - index)
        sessions, raws = [], []
        for index in range(rounds):
            raws.append(raw_execute(http, toolbox))
            sessions.append(session_path(http, toolbox, headers, index))
        http.delete(f"{api_url}/sandbox/{sandbox_id}")
    return sessions, raws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="daytonaflow-bench-"))
    root.chmod(0o711)
    try:
        with (
            LocalServer(state_dir=root / "state") as server,
            # The client in a process of its own: in the server's, the two would take turns at
            # the GIL, and each turn would be counted as the server's latency.
            ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as client,
        ):
            sessions, raws = client.submit(
                measure, server.api_url, server.toolbox_url, server.api_key, args.rounds
            ).result()
        session_ms = statistics.median(sessions) * 1000
        raw_ms = statistics.median(raws) * 1000
        emit("session_path_echo_ms", session_ms, "ms")
        emit("raw_execute_echo_ms", raw_ms, "ms")
        emit("session_path_over_raw", session_ms / raw_ms, "x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
