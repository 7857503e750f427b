"""The catalog's local figures, each next to a baseline measured in the same run.

On the embedded local server (real sandboxes):

- a sandbox created from a snapshot of a home holding ``--home-mib`` MiB in 100 files, create →
  ``started`` (p50), against a create without a snapshot of the same disk size (neither can be
  served by the spare sandbox started ahead, so both pay for a home of their own);
- taking that snapshot from the running sandbox (p50), against ``cp -a`` of the same tree on the
  host, the copy's floor;
- writing 64 MiB with ``dd`` inside a sandbox into a volume, against the same write into its home.

Through a real ``daytonaflow up`` process (loopback):

- a signed webhook request answered ``202`` (p50), against the same request to a bare HTTP
  server that only answers ``202``;
- a signed webhook to the end of its one-node run (p50).

Prints ``name value unit`` lines. Run: ``python bench/catalog.py [--samples 10] [--home-mib 20]``
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import http.server
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from daytonaflow.localserver import LocalServer

KEY = "bench-signing-key"
_URL = re.compile(r"POST (?P<url>http://\S+)")


def emit(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.2f} {unit}", flush=True)


def p50(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2]


class Api:
    def __init__(self, server: LocalServer, http: httpx.Client) -> None:
        self.server = server
        self.http = http

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"{self.server.api_url}{path}", **kwargs)
        if response.status_code >= 300:
            raise SystemExit(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def run(self, sandbox_id: str, command: str) -> str:
        answer = self.http.post(
            f"{self.server.toolbox_url}/{sandbox_id}/process/execute",
            json={"command": command, "timeout": 300},
        ).json()
        if answer.get("exitCode") != 0:
            raise SystemExit(f"{command!r} failed: {answer}")
        return str(answer["result"])

    def timed_create(self, body: dict[str, Any]) -> tuple[str, float]:
        start = time.perf_counter()
        sandbox = self.call("POST", "/sandbox", json=body)
        return str(sandbox["id"]), time.perf_counter() - start

    def wait_snapshot(self, name: str) -> None:
        while (state := self.call("GET", f"/snapshots/{name}")["state"]) != "active":
            if state in ("error", "build_failed"):
                raise SystemExit(f"snapshot {name} is {state}")
            time.sleep(0.01)


def fill_home(api: Api, sandbox_id: str, mib: int) -> None:
    api.run(
        sandbox_id,
        f"mkdir data && for i in $(seq 100); do head -c {mib * 10486} /dev/urandom > data/f$i; done",
    )


def bench_snapshots(api: Api, samples: int, mib: int, scratch: Path) -> None:
    disk = {"disk": 2}  # a size of its own: the spare cannot serve it, as it cannot a snapshot
    source, _ = api.timed_create(disk)
    fill_home(api, source, mib)
    taken: list[float] = []
    names = []
    for _ in range(samples):
        name = f"bench-{uuid.uuid4().hex[:8]}"
        start = time.perf_counter()
        api.call("POST", f"/sandbox/{source}/snapshot", json={"name": name})
        api.wait_snapshot(name)
        taken.append(time.perf_counter() - start)
        names.append(name)
    home = api.server.state_dir / "sandboxes" / source
    tree = next(path for path in home.rglob("data") if path.is_dir())
    copies = []
    for n in range(samples):
        target = scratch / f"copy{n}"
        start = time.perf_counter()
        subprocess.run(["cp", "-a", str(tree), str(target)], check=True)
        copies.append(time.perf_counter() - start)
        shutil.rmtree(target)
    emit("catalog.snapshot.take_p50", p50(taken) * 1000, "ms")
    emit("baseline.snapshot.host_cp_p50", p50(copies) * 1000, "ms")
    from_snapshot, plain = [], []
    for _ in range(samples):
        sandbox_id, elapsed = api.timed_create({**disk, "snapshot": names[0]})
        from_snapshot.append(elapsed)
        if api.run(sandbox_id, "ls data | wc -l").strip() != "100":
            raise SystemExit("a sandbox made from the snapshot lacks its files")
        api.call("DELETE", f"/sandbox/{sandbox_id}")
        sandbox_id, elapsed = api.timed_create(disk)
        plain.append(elapsed)
        api.call("DELETE", f"/sandbox/{sandbox_id}")
    emit("catalog.create_from_snapshot_p50", p50(from_snapshot) * 1000, "ms")
    emit("baseline.create_same_disk_p50", p50(plain) * 1000, "ms")
    api.call("DELETE", f"/sandbox/{source}")
    for name in names:
        api.call("DELETE", f"/snapshots/{api.call('GET', f'/snapshots/{name}')['id']}")


def bench_volume_write(api: Api, samples: int) -> None:
    volume = api.call("POST", "/volumes", json={"name": f"bench-{uuid.uuid4().hex[:8]}"})
    sandbox_id, _ = api.timed_create({"volumes": [{"volumeId": volume["id"], "mountPath": "/data"}]})
    write = "dd if=/dev/zero of={} bs=1M count=64 conv=fsync status=none && rm {}"
    in_volume, in_home = [], []
    for _ in range(samples):
        for target, timings in (("/data/f", in_volume), ("/home/daytona/f", in_home)):
            start = time.perf_counter()
            api.run(sandbox_id, write.format(target, target))
            timings.append(time.perf_counter() - start)
    emit("catalog.volume.write_64mib", 64 / p50(in_volume), "MiB/s")
    emit("baseline.home.write_64mib", 64 / p50(in_home), "MiB/s")
    api.call("DELETE", f"/sandbox/{sandbox_id}")
    while api.http.delete(f"{api.server.api_url}/volumes/{volume['id']}").status_code == 409:
        time.sleep(0.05)  # the sandbox's removal finishes in the background


class _Accepted(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"status":"queued"}'
        self.send_response(202)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def running_up(directory: Path) -> Iterator[str]:
    canvas = directory / "hook.yaml"
    canvas.write_text(
        "metadata: {name: bench-hook}\nspec:\n  nodes:\n"
        "    - {id: hook, type: TYPE_TRIGGER, component: webhook,"
        " configuration: {secret: {secret: bench, key: key}}}\n"
        "    - {id: done, type: TYPE_ACTION, component: noop}\n"
        "  edges:\n    - {sourceId: hook, targetId: done}\n"
    )
    cli = str(Path(sys.executable).parent / "daytonaflow")
    env = {**os.environ, "DAYTONAFLOW_SECRET_BENCH_KEY": KEY}
    argv = [
        cli,
        "up",
        str(canvas),
        "--db",
        str(directory / "runs.db"),
        "--port",
        "0",
        "--max-concurrent-runs",
        "1000",
    ]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        url = None
        while url is None:
            line = process.stdout.readline()
            if not line:
                raise SystemExit("daytonaflow up exited before printing its webhook URL")
            if found := _URL.search(line):
                url = found["url"]
        threading.Thread(target=process.stdout.read, daemon=True).start()
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(KEY.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def finished_runs(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        row = connection.execute("SELECT count(*) FROM runs WHERE finished_at IS NOT NULL").fetchone()
    return int(row[0])


def bench_webhooks(samples: int, scratch: Path) -> None:
    bare = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Accepted)
    threading.Thread(target=bare.serve_forever, daemon=True).start()
    bare_url = f"http://127.0.0.1:{bare.server_address[1]}/"
    accepted, baseline, to_end = [], [], []
    with running_up(scratch) as url, httpx.Client(timeout=30) as client:
        db = scratch / "runs.db"
        for n in range(samples * 5):
            body = f'{{"n": {n}}}'.encode()
            start = time.perf_counter()
            if client.post(bare_url, content=body, headers=signed(body)).status_code != 202:
                raise SystemExit("the bare server did not answer 202")
            baseline.append(time.perf_counter() - start)
            done = finished_runs(db) if db.exists() else 0
            start = time.perf_counter()
            reply = client.post(url, content=body, headers=signed(body))
            accepted.append(time.perf_counter() - start)
            if reply.status_code != 202:
                raise SystemExit(f"up answered {reply.status_code}: {reply.text}")
            while finished_runs(db) <= done:
                time.sleep(0.001)
            to_end.append(time.perf_counter() - start)
    bare.shutdown()
    emit("up.webhook.accepted_p50", p50(accepted) * 1000, "ms")
    emit("baseline.http.bare_202_p50", p50(baseline) * 1000, "ms")
    emit("up.webhook.to_run_end_p50", p50(to_end) * 1000, "ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--home-mib", type=int, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="daytonaflow-bench-catalog-"))
    root.chmod(0o711)  # the sandboxes' uids traverse to their homes
    try:
        with LocalServer(state_dir=root / "state") as server, httpx.Client(timeout=300) as http:
            http.headers["Authorization"] = f"Bearer {server.api_key}"
            api = Api(server, http)
            (root / "scratch").mkdir()
            bench_snapshots(api, args.samples, args.home_mib, root / "scratch")
            bench_volume_write(api, args.samples)
        (root / "up").mkdir()
        bench_webhooks(args.samples, root / "up")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
