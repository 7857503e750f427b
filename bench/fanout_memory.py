"""Peak memory of a wide fan-out: one trigger, N ``http`` nodes, each a GET to a loopback server.

Each figure comes from a fresh child process (``ru_maxrss`` is a high-water mark, so one process
per measurement): the baseline is an idle runner (everything imported, an engine over an empty
database, no run); the fan-out runs the canvas to the end. The loopback server lives in this
parent process, so its memory is not counted. Prints ``name value unit`` lines.

    python bench/fanout_memory.py [--nodes 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

_ANSWER = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


class LoopbackServer:
    """A minimal HTTP/1.1 server on 127.0.0.1 that answers every request with a small JSON body."""

    def __init__(self) -> None:
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._answer, "127.0.0.1", 0, backlog=4096)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                writer.write(_ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def fanout_canvas(nodes: int, url: str) -> dict[str, Any]:
    document_nodes: list[dict[str, Any]] = [
        {"id": "start", "name": "Manual Run", "type": "TYPE_TRIGGER", "component": "start"}
    ]
    edges = []
    for index in range(nodes):
        node_id = f"get-{index}"
        document_nodes.append(
            {"id": node_id, "type": "TYPE_ACTION", "component": "http", "configuration": {"url": url}}
        )
        edges.append({"sourceId": "start", "targetId": node_id, "channel": "default"})
    return {
        "apiVersion": "v1",
        "kind": "Canvas",
        "metadata": {"name": f"fanout-{nodes}"},
        "spec": {"nodes": document_nodes, "edges": edges},
    }


async def _child(mode: str, database: str, canvas_file: str | None) -> dict[str, Any]:
    from daytonaflow.builtins import BUILTIN_COMPONENTS
    from daytonaflow.runner import Engine, RunStore, parse_canvas

    with RunStore(database) as store:
        engine = Engine(store, registry=BUILTIN_COMPONENTS)
        result: dict[str, Any] = {}
        if mode == "fanout":
            assert canvas_file is not None
            canvas = parse_canvas(json.loads(Path(canvas_file).read_text()))
            record = await engine.run(canvas)
            result["status"] = record.status
            result["error"] = record.error
        await engine.aclose()
    # Linux reports ru_maxrss in KiB.
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _measure(mode: str, database: Path, canvas_file: Path | None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", mode, "--db", str(database)]
    if canvas_file is not None:
        command += ["--canvas", str(canvas_file)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if finished.returncode != 0:
        raise SystemExit(f"{mode} child failed ({finished.returncode}):\n{finished.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--child", choices=("idle", "fanout"), help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--canvas", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_child(args.child, args.db, args.canvas))))
        return
    with tempfile.TemporaryDirectory(prefix="daytonaflow-fanout-") as temp, LoopbackServer() as server:
        root = Path(temp)
        canvas_file = root / "canvas.json"
        canvas_file.write_text(json.dumps(fanout_canvas(args.nodes, f"http://127.0.0.1:{server.port}/")))
        idle = _measure("idle", root / "idle.db", None)
        fanout = _measure("fanout", root / "fanout.db", canvas_file)
    if fanout["status"] != "succeeded":
        raise SystemExit(f"the fan-out run {fanout['status']}: {fanout['error']}")
    extra = fanout["peak_rss_mib"] - idle["peak_rss_mib"]
    print(f"idle_runner_peak_rss {idle['peak_rss_mib']:.1f} MiB")
    print(f"fanout_{args.nodes}_peak_rss {fanout['peak_rss_mib']:.1f} MiB")
    print(f"fanout_extra_rss_per_node {extra * 1024 / args.nodes:.1f} KiB")


if __name__ == "__main__":
    main()
