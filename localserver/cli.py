"""``daytonaflow serve``: run the local server in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from daytonaflow.errors import DaytonaflowError
from daytonaflow.localserver.errors import UnsafeSandboxUidsError
from daytonaflow.localserver.isolation import DEFAULT_SANDBOX_UIDS, check_uid_range
from daytonaflow.localserver.server import LocalServer, default_state_dir

API_KEY_ENV = "DAYTONAFLOW_SERVE_API_KEY"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="daytonaflow serve",
        description="Serve a local Daytona-compatible API whose sandboxes are bubblewrap namespaces.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3986, help="API port (default: 3986; 0 picks one)")
    parser.add_argument(
        "--proxy-port", type=int, default=0, help="preview proxy port (default: 0, picks a free one)"
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV) or None,
        help=f"API key to require (default: ${API_KEY_ENV}, else a new random key; the variable keeps "
        "the key out of the process list)",
    )
    parser.add_argument(
        "--state-dir", type=Path, default=None, help=f"where sandboxes live (default: {default_state_dir()})"
    )
    default_uids = f"{DEFAULT_SANDBOX_UIDS.start}-{DEFAULT_SANDBOX_UIDS.stop - 1}"
    parser.add_argument(
        "--sandbox-uids",
        type=_uid_range,
        default=DEFAULT_SANDBOX_UIDS,
        metavar="FIRST-LAST",
        help=f"as root, the host uids given one per sandbox (default: {default_uids}); 'shared' runs "
        "every sandbox as nobody. A normal user's sandboxes always share that user's uid.",
    )
    parser.add_argument(
        "--disk-mode",
        choices=("auto", "loop", "accounting"),
        default="auto",
        help="how the disk quota is enforced: loop (each home its own filesystem; needs root and loop "
        "devices), accounting (the server counts and kills), auto (loop where possible; default)",
    )
    return parser


def _uid_range(text: str) -> range | None:
    if text == "shared":
        return None
    first, dash, last = text.partition("-")
    if not (dash and first.isdigit() and last.isdigit()) or not 0 < int(first) <= int(last):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not FIRST-LAST (two uids, FIRST above 0, LAST not below FIRST) nor 'shared'"
        )
    uids = range(int(first), int(last) + 1)
    try:
        check_uid_range(uids)
    except UnsafeSandboxUidsError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return uids


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    server = LocalServer(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        state_dir=args.state_dir,
        proxy_port=args.proxy_port,
        sandbox_uids=args.sandbox_uids,
        disk_mode=args.disk_mode,
    )
    stop = threading.Event()

    def _request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server.start()
        except (DaytonaflowError, OSError) as error:
            print(f"daytonaflow serve: {error}", file=sys.stderr)
            return 1
        for line in server.banner():
            print(line, flush=True)
        print(f"export DAYTONA_API_URL={server.api_url} DAYTONA_API_KEY={server.api_key}", flush=True)
        print("Serving; press Ctrl+C to stop.", flush=True)
        while not stop.wait(0.5):
            pass
        print("Stopping: ending every sandbox's processes...", flush=True)
        server.stop()
        print("Stopped.", flush=True)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
