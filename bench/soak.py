"""Soak the embedded backend: many concurrent sandboxes, a hostile mix, crashes, then count the damage.

Each round starts a local server in a child process, creates ``--sandboxes`` sandboxes at once and
turns a tenth of them hostile (deep and over-long directory trees, fd / pty / inotify / message-queue
floods held open, disk fills through plain and open-unlinked files). While the hostile ones hold what
they took, every other sandbox runs a check that needs exactly those resources (a pty, an inotify
instance, a message queue, files, fds); a failure there is a failure of isolation. The second round
SIGKILLs the server mid-round and restarts it on the same state directory; the third SIGKILLs a
``daytonaflow run`` of the hello canvas on the embedded backend and resumes it. Every round ends by
deleting everything and counting what is left.

Prints ``name value unit`` lines: rounds, sandboxes, failures (not the hostile sandboxes' own),
hostile_outcomes, leaked sandboxes, leaked processes, leaked mounts, host disk delta, with the
baseline (disk and processes before the first round) measured in the same run.

Bounded: ``--deadline`` seconds overall, every request with a timeout; loopback only.
Run: ``python bench/soak.py [--rounds 3] [--sandboxes 200]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

MIB = 1 << 20
_AGENT_MARK = b"/opt/daytonaflow/agent.pyc"
_REPO = Path(__file__).resolve().parent.parent

# Sandbox code, each a shell command run through process/execute. Hostile floods run in the
# background and keep what they took until the sandbox is deleted.
_HOLD = "import time\ntime.sleep(3600)\n"
_HOSTILE: dict[str, str] = {
    "deep_tree": (
        'python3 -c \'import os\nfor i in range(1500): os.mkdir("d"); os.chdir("d")\'; '
        'python3 -c \'import os\nfor i in range(60): os.mkdir("x" * 250); os.chdir("x" * 250)\''
    ),
    "fd_flood": (
        "(python3 -c 'import os, time\n"
        "for _ in range(100):\n"
        "    if os.fork() == 0:\n"
        "        fds = []\n"
        "        try:\n"
        '            while True: fds.append(os.open("/dev/null", os.O_RDONLY))\n'
        "        except OSError: pass\n"
        "        time.sleep(3600)\n"
        "time.sleep(3600)') >/dev/null 2>&1 & sleep 2"
    ),
    "pty_flood": (
        "(python3 -c 'import os\nfds = []\ntry:\n"
        '    while True: fds.append(os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY))\n'
        f"except OSError: pass\n{_HOLD}') >/dev/null 2>&1 & sleep 2"
    ),
    "inotify_flood": (
        "(python3 -c 'import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nfds = []\n"
        "while True:\n    fd = libc.inotify_init1(0)\n    if fd < 0: break\n    fds.append(fd)\n"
        f"{_HOLD}') >/dev/null 2>&1 & sleep 2"
    ),
    "mqueue_flood": (
        'python3 -c \'import ctypes, os\nrt = ctypes.CDLL("librt.so.1", use_errno=True)\n'
        "for i in range(1000):\n"
        '    if rt.mq_open(b"/flood%d" % i, os.O_CREAT | os.O_RDWR, 0o600, None) < 0: break\''
    ),
    "disk_fill": "dd if=/dev/zero of=big bs=1M count=400 2>/dev/null; echo done",
    "unlinked_fill": (
        "python3 -c 'import os\n"
        "for n in range(3):\n"
        "    if os.fork() == 0:\n"
        '        fd = os.open("f%d" % n, os.O_CREAT | os.O_WRONLY)\n'
        '        os.unlink("f%d" % n)\n'
        "        block = bytes(1 << 20)\n"
        "        try:\n"
        "            for _ in range(400): os.write(fd, block)\n"
        "        except OSError: pass\n"
        "        os._exit(0)\n"
        "for _ in range(3): os.wait()'"
    ),
}
_BENIGN = (
    "python3 -c 'import ctypes, os\n"
    'pty = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY)\n'
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    'assert libc.inotify_init1(0) >= 0, "no inotify instance left"\n'
    'rt = ctypes.CDLL("librt.so.1", use_errno=True)\n'
    'assert rt.mq_open(b"/benign", os.O_CREAT | os.O_RDWR, 0o600, None) >= 0, "no message queue left"\n'
    'fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(200)]\n'
    'open("note.txt", "w").write("n" * 100000)\n'
    'assert len(open("note.txt").read()) == 100000\n'
    'print("benign-ok")\''
)


def emit(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:g} {unit}", flush=True)


# ---- the server under test, in a child process we can SIGKILL --------------------------------------


def serve_worker(state_dir: Path) -> None:
    """Child-process mode: run a LocalServer, print its addresses, serve until stdin closes."""
    from daytonaflow.localserver import LocalServer, SandboxLimits

    limits = SandboxLimits(
        memory_bytes=256 * MIB, pids=256, cpu_seconds=300, disk_bytes=128 * MIB, tmp_bytes=32 * MIB
    )
    server = LocalServer(state_dir=state_dir, limits=limits, monitor_interval=0.5)
    server.start()
    print(
        json.dumps(
            {
                "api": server.api_url,
                "toolbox": server.toolbox_url,
                "key": server.api_key,
                "adopted": len(server.adopted),
                "isolation": server.isolation.lines() if server.isolation else [],
            }
        ),
        flush=True,
    )
    sys.stdin.read()
    server.stop()


@dataclass
class Server:
    proc: subprocess.Popen[str]
    api: str
    toolbox: str
    key: str
    adopted: int
    isolation: list[str]

    @classmethod
    def start(cls, state_dir: Path) -> Server:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-worker", str(state_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"soak: the local server did not start (exit {proc.wait()})")
        info = json.loads(line)
        return cls(proc, info["api"], info["toolbox"], info["key"], info["adopted"], info["isolation"])

    def stop(self) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


# ---- one round ----------------------------------------------------------------------------------------


@dataclass
class Tally:
    failures: list[str] = field(default_factory=list)
    hostile: Counter[str] = field(default_factory=Counter)
    runner_runs: Counter[str] = field(default_factory=Counter)
    created: int = 0


async def _execute(http: httpx.AsyncClient, server: Server, sandbox_id: str, command: str) -> dict[str, Any]:
    response = await http.post(
        f"{server.toolbox}/{sandbox_id}/process/execute", json={"command": command, "timeout": 120}
    )
    if response.status_code >= 500:
        raise RuntimeError(f"{response.status_code} {response.text[:200]}")
    return dict(response.json())


async def _create_all(http: httpx.AsyncClient, server: Server, count: int, tally: Tally) -> list[str]:
    async def one(index: int) -> str | None:
        try:
            response = await http.post(f"{server.api}/sandbox", json={"labels": {"soak": str(index)}})
            response.raise_for_status()
            return str(response.json()["id"])
        except (httpx.HTTPError, KeyError, ValueError) as error:
            tally.failures.append(f"create #{index}: {error!r}")
            return None

    ids = await asyncio.gather(*(one(i) for i in range(count)))
    created = [i for i in ids if i]
    tally.created += len(created)
    return created


async def _delete_all(http: httpx.AsyncClient, server: Server, tally: Tally) -> None:
    listing = await http.get(f"{server.api}/sandbox")
    listing.raise_for_status()

    async def one(sandbox_id: str) -> None:
        try:
            (await http.delete(f"{server.api}/sandbox/{sandbox_id}")).raise_for_status()
        except httpx.HTTPError as error:
            tally.failures.append(f"delete {sandbox_id}: {error!r}")

    await asyncio.gather(*(one(s["id"]) for s in listing.json()["items"]))


async def _round(
    server_box: list[Server], state_dir: Path, sandboxes: int, kill_server: bool, tally: Tally
) -> None:
    server = server_box[0]
    headers = {"Authorization": f"Bearer {server.key}"}
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(headers=headers, timeout=180, limits=limits) as http:
        ids = await _create_all(http, server, sandboxes, tally)
        kinds = list(_HOSTILE)
        hostile = {sandbox_id: kinds[i % len(kinds)] for i, sandbox_id in enumerate(ids[: len(ids) // 10])}
        benign = [sandbox_id for sandbox_id in ids if sandbox_id not in hostile]

        async def attack(sandbox_id: str, kind: str) -> None:
            try:
                result = await _execute(http, server, sandbox_id, _HOSTILE[kind])
                tally.hostile[f"{kind}:exit_{result.get('exitCode')}"] += 1
            except (httpx.HTTPError, RuntimeError, ValueError) as error:
                tally.hostile[f"{kind}:{type(error).__name__}"] += 1

        await asyncio.gather(*(attack(s, k) for s, k in hostile.items()))

        async def check(sandbox_id: str) -> None:
            try:
                result = await _execute(http, server, sandbox_id, _BENIGN)
            except (httpx.HTTPError, RuntimeError, ValueError) as error:
                tally.failures.append(f"benign {sandbox_id}: {error!r}")
                return
            if "benign-ok" not in str(result.get("result")):
                tally.failures.append(
                    f"benign {sandbox_id}: exit {result.get('exitCode')} {str(result)[-300:]}"
                )

        await asyncio.gather(*(check(s) for s in benign))

    if kill_server:
        server.kill()
        server = Server.start(state_dir)
        server_box[0] = server
        if server.adopted != len(ids):
            tally.failures.append(f"restart adopted {server.adopted} of {len(ids)} sandboxes")
    headers = {"Authorization": f"Bearer {server.key}"}
    async with httpx.AsyncClient(headers=headers, timeout=180) as http:
        await _delete_all(http, server, tally)


# ---- the runner killed mid-run, then resumed ----------------------------------------------------------


def _runner_kills(work: Path, kills: int, tally: Tally) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAYTONA_")}
    env.update(
        XDG_DATA_HOME=str(work / "runner-data"),
        DAYTONAFLOW_DB=str(work / "runs.db"),
        HOME=str(work / "runner-home"),
    )
    (work / "runner-data").mkdir(mode=0o711, exist_ok=True)
    (work / "runner-home").mkdir(exist_ok=True)
    cli = [str(Path(sys.executable).with_name("daytonaflow"))]
    canvas = str(_REPO / "examples" / "hello.yaml")
    for _ in range(kills):
        runner = subprocess.Popen(
            [*cli, "run", canvas, "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        assert runner.stdout is not None
        runner.stdout.readline()  # the run exists: kill it somewhere in its nodes
        time.sleep(random.uniform(0.0, 0.3))
        runner.send_signal(signal.SIGKILL)
        runner.wait()
        runner.stdout.close()
    resumed = subprocess.run([*cli, "runs", "resume"], env=env, capture_output=True, text=True, timeout=600)
    if "Traceback" in resumed.stderr:
        tally.failures.append(f"runs resume: {resumed.stderr[-500:]}")
    listing = subprocess.run(
        [*cli, "runs", "--json", "--limit", str(kills + 5)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    try:
        runs = json.loads(listing.stdout)
    except ValueError:
        tally.failures.append(f"runs --json: {listing.stdout[-300:]} {listing.stderr[-300:]}")
        return
    for run in runs:
        tally.runner_runs[str(run.get("status"))] += 1
        if run.get("status") in ("running", "pending"):
            tally.failures.append(f"run {run.get('id')} still {run.get('status')} after resume")
    sandboxes = subprocess.run(
        [*cli, "sandboxes", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    try:
        left = json.loads(sandboxes.stdout)
    except ValueError:
        tally.failures.append(f"sandboxes --json: {sandboxes.stdout[-300:]} {sandboxes.stderr[-300:]}")
        return
    for sandbox in left:
        tally.failures.append(
            f"sandbox left after the runner was killed and resumed: {sandbox.get('id')} "
            f"state {sandbox.get('state')} labels {sandbox.get('labels')} ({sandbox.get('errorReason')})"
        )


# ---- what is left ---------------------------------------------------------------------------------------


def agent_processes(under: Path) -> int:
    """Sandbox agents whose mounts come from ``under`` (other servers on this host do not count)."""
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (
                    _AGENT_MARK in (entry / "cmdline").read_bytes()
                    and str(under) in (entry / "mountinfo").read_text()
                ):
                    count += 1
    return count


def mounts_under(path: Path) -> int:
    text = Path("/proc/self/mountinfo").read_text()
    return sum(1 for line in text.splitlines() if str(path) in line)


def free_bytes(path: Path) -> int:
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


def leftover_sandbox_dirs(state_dir: Path) -> int:
    root = state_dir / "sandboxes"
    return sum(1 for p in root.iterdir() if p.is_dir()) if root.is_dir() else 0


def _remove(path: Path) -> None:
    """rm copes with trees deeper than Python's recursion limit; the soak must clean up after itself."""
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sandboxes", type=int, default=200)
    parser.add_argument("--runner-kills", type=int, default=5)
    parser.add_argument("--deadline", type=float, default=1200.0, help="seconds for the whole soak")
    parser.add_argument("--serve-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_worker:
        serve_worker(args.serve_worker)
        return
    signal.alarm(int(args.deadline))  # bounded in time whatever happens

    work = Path(tempfile.mkdtemp(prefix="daytonaflow-soak-"))
    work.chmod(0o711)
    state_dir = work / "state"
    disk_before = free_bytes(Path(tempfile.gettempdir()))
    agents_before = agent_processes(work)
    emit("baseline.agent_processes", agents_before, "processes")
    tally = Tally()
    started = time.monotonic()
    try:
        server_box = [Server.start(state_dir)]
        for line in server_box[0].isolation:
            print(f"# {line}", flush=True)
        try:
            for round_index in range(args.rounds):
                asyncio.run(_round(server_box, state_dir, args.sandboxes, round_index == 1, tally))
                if round_index == 2:
                    _runner_kills(work, args.runner_kills, tally)
        finally:
            server_box[0].stop()
        leaked_dirs = leftover_sandbox_dirs(state_dir)
        leaked_mounts = mounts_under(work)
        leaked_agents = agent_processes(work) - agents_before
    finally:
        _remove(work)
    disk_delta = (disk_before - free_bytes(Path(tempfile.gettempdir()))) / MIB

    emit("soak.rounds", args.rounds, "rounds")
    emit("soak.sandboxes", tally.created, "sandboxes")
    emit("soak.wall", round(time.monotonic() - started, 1), "s")
    emit("soak.failures", len(tally.failures), "failures")
    emit("soak.hostile_runs", sum(tally.hostile.values()), "runs")
    emit("soak.leaked_sandboxes", leaked_dirs, "sandboxes")
    emit("soak.leaked_processes", max(leaked_agents, 0), "processes")
    emit("soak.leaked_mounts", leaked_mounts, "mounts")
    emit("soak.host_disk_delta", round(disk_delta, 1), "MiB")
    emit("soak.runner_kills", args.runner_kills if args.rounds >= 3 else 0, "kills")
    for state, count in sorted(tally.runner_runs.items()):
        emit(f"soak.runner_runs_{state}", count, "runs")
    for outcome, count in sorted(tally.hostile.items()):
        print(f"# hostile {outcome}: {count}")
    for failure in tally.failures[:30]:
        print(f"# failure: {failure}")


if __name__ == "__main__":
    main()
