"""Concurrent create+delete on the local server over kept-alive connections: no request may be reset.

Two passes of ``--concurrent`` sandboxes created and deleted at once against one LocalServer:

- through bare httpx (no retries): ``raw_transport_errors`` counts requests whose connection was
  reset or closed under them (the server's fault, as after a 500 that closed the connection);
- through the components' DaytonaClient (its retry policy): ``client_failures`` counts calls
  that failed anyway.

``leaked_sandboxes`` counts sandboxes left once both passes ended. Loopback only. Prints
``name value unit`` lines. Run: ``python bench/keepalive.py [--concurrent 200]``
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import httpx

from daytonaflow.components import DaytonaClient, DaytonaError
from daytonaflow.localserver import LocalServer


def emit(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:g} {unit}", flush=True)


async def raw_pass(server: LocalServer, count: int) -> tuple[int, int]:
    """(transport errors, other failures) of ``count`` concurrent create+delete with bare httpx."""
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    headers = {"Authorization": f"Bearer {server.api_key}"}
    transport_errors = 0
    failures = 0
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=120) as http:

        async def one() -> None:
            nonlocal transport_errors, failures
            try:
                created = await http.post(f"{server.api_url}/sandbox", json={})
                if created.status_code != 200:
                    failures += 1
                    return
                deleted = await http.delete(f"{server.api_url}/sandbox/{created.json()['id']}")
                failures += deleted.status_code != 200
            except httpx.TransportError as error:
                transport_errors += 1
                print(f"# {error!r} on {error.request.method} {error.request.url.path}", flush=True)

        await asyncio.gather(*(one() for _ in range(count)))
    return transport_errors, failures


async def client_pass(server: LocalServer, count: int) -> int:
    """Failed calls of ``count`` concurrent create+delete through DaytonaClient."""
    client = DaytonaClient(server.api_url, server.api_key)
    failures = 0

    async def one(index: int) -> None:
        nonlocal failures
        try:
            sandbox = await client.create_sandbox({}, idempotency_key=f"keepalive-{index}")
            await client.delete_sandbox(sandbox.id, force=True)
        except DaytonaError:
            failures += 1

    try:
        await asyncio.gather(*(one(index) for index in range(count)))
    finally:
        await client.aclose()
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", type=int, default=200)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="daytonaflow-keepalive-"))
    root.chmod(0o711)  # the unprivileged sandbox uid must traverse to the state directory
    try:
        with LocalServer(state_dir=root / "state") as server:
            started = time.monotonic()
            transport_errors, raw_failures = asyncio.run(raw_pass(server, args.concurrent))
            emit("raw_transport_errors", transport_errors, f"of_{args.concurrent * 2}_requests")
            emit("raw_other_failures", raw_failures, f"of_{args.concurrent}")
            emit(
                "client_failures", asyncio.run(client_pass(server, args.concurrent)), f"of_{args.concurrent}"
            )
            assert server.state is not None
            emit("leaked_sandboxes", len(server.state.manager.list()), "sandboxes")
            emit("elapsed", time.monotonic() - started, "s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
