"""Following a session command's logs over a WebSocket, as Daytona's toolbox serves it."""

from __future__ import annotations

import asyncio
import json
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from localserver_testkit import Api
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

pytestmark = pytest.mark.sandbox

STDOUT = b"\x01\x01\x01"
STDERR = b"\x02\x02\x02"
OMITTED = re.compile(rb"\[daytonaflow: (\d+) bytes of output omitted\]")


@dataclass
class Followed:
    """What a follower received, demultiplexed the way Daytona's SDKs do it."""

    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    close_code: int | None = None
    close_reason: str = ""
    closed_at: float = 0.0
    messages: int = 0

    def add(self, message: bytes) -> None:
        self.messages += 1
        target = self.stdout
        for part in re.split(b"(\x01\x01\x01|\x02\x02\x02)", message):
            if part == STDOUT:
                target = self.stdout
            elif part == STDERR:
                target = self.stderr
            else:
                target += part


def _session_command(api: Api, sandbox_id: str, command: str) -> str:
    assert api.toolbox("POST", sandbox_id, "/process/session", json={"sessionId": "s"}).status_code == 201
    response = api.toolbox(
        "POST", sandbox_id, "/process/session/s/exec", json={"command": command, "runAsync": True}
    )
    assert response.status_code == 202, response.text
    command_id: str = response.json()["cmdId"]
    return command_id


def _follow_url(api: Api, sandbox_id: str, command_id: str) -> str:
    url = f"{api.server.toolbox_url}/{sandbox_id}/process/session/s/command/{command_id}/logs?follow=true"
    return "ws" + url.removeprefix("http")


async def _follow(url: str, headers: dict[str, str], **on_open: Any) -> Followed:
    followed = Followed()
    async with connect(url, additional_headers=headers, max_size=None) as websocket:
        if "then" in on_open:
            on_open["then"]()
        try:
            async for message in websocket:
                followed.add(message if isinstance(message, bytes) else message.encode())
        except ConnectionClosed:
            pass
        followed.closed_at = time.time()
        followed.close_code = websocket.close_code
        followed.close_reason = websocket.close_reason or ""
    return followed


def _auth(api: Api) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.server.api_key}"}


def test_followed_stdout_and_stderr_arrive_under_their_markers_and_the_end_is_a_1000_close(
    api: Api, sandbox: dict[str, Any]
) -> None:
    command_id = _session_command(api, sandbox["id"], "echo to-out; echo to-err >&2; echo more-out; exit 3")
    followed = asyncio.run(_follow(_follow_url(api, sandbox["id"], command_id), _auth(api)))
    assert followed.stdout == b"to-out\nmore-out\n"
    assert followed.stderr == b"to-err\n"
    assert followed.close_code == 1000


def test_following_a_finished_command_sends_all_its_output_then_closes_with_1000(
    api: Api, sandbox: dict[str, Any]
) -> None:
    command_id = _session_command(api, sandbox["id"], "echo early; echo late >&2")
    deadline = time.monotonic() + 30
    path = f"/process/session/s/command/{command_id}"
    while api.toolbox("GET", sandbox["id"], path).json()["exitCode"] is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    followed = asyncio.run(_follow(_follow_url(api, sandbox["id"], command_id), _auth(api)))
    assert (followed.stdout, followed.stderr, followed.close_code) == (b"early\n", b"late\n", 1000)


def test_the_follow_closes_within_milliseconds_of_the_exit_though_a_background_child_holds_its_output(
    api: Api, sandbox: dict[str, Any]
) -> None:
    """The end is told by the exit itself, not found by a poll: a child left running with the
    command's stdout open (so that stream never ends) must not delay it. The exit's time goes to
    a file, so that no output arrives near the exit to wake the follower by chance."""
    command = "echo begun; sleep 30 & sleep 1; date +%s.%N > /tmp/exited-at"
    command_id = _session_command(api, sandbox["id"], command)
    followed = asyncio.run(_follow(_follow_url(api, sandbox["id"], command_id), _auth(api)))
    assert (followed.stdout, followed.close_code) == (b"begun\n", 1000)
    exited_at = float(api.run(sandbox["id"], "cat /tmp/exited-at")["result"])
    assert followed.closed_at - exited_at < 0.3


def test_a_follow_with_a_bad_key_is_refused_with_401(api: Api, sandbox: dict[str, Any]) -> None:
    command_id = _session_command(api, sandbox["id"], "echo hi")
    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(_follow(_follow_url(api, sandbox["id"], command_id), {"Authorization": "Bearer wrong"}))
    assert refused.value.response.status_code == 401
    assert b'"code":"UNAUTHORIZED"' in refused.value.response.body


def test_a_follow_of_an_unknown_command_is_refused_with_404(api: Api, sandbox: dict[str, Any]) -> None:
    _session_command(api, sandbox["id"], "echo hi")
    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(_follow(_follow_url(api, sandbox["id"], "no-such-command"), _auth(api)))
    assert refused.value.response.status_code == 404


def test_a_follow_in_an_unknown_sandbox_is_refused_with_404(api: Api) -> None:
    url = _follow_url(api, "00000000-0000-0000-0000-000000000000", "c")
    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(_follow(url, _auth(api)))
    assert refused.value.response.status_code == 404


def test_deleting_the_sandbox_mid_follow_closes_with_1011_and_a_reason(api: Api) -> None:
    sandbox_id = api.create()["id"]
    command_id = _session_command(api, sandbox_id, "echo started; sleep 600")
    url = _follow_url(api, sandbox_id, command_id)

    async def follow_then_delete() -> Followed:
        following = asyncio.create_task(_follow(url, _auth(api)))
        await asyncio.sleep(1.0)
        assert (await asyncio.to_thread(api.delete, sandbox_id)).status_code == 200
        return await asyncio.wait_for(following, 30)

    followed = asyncio.run(follow_then_delete())
    assert followed.stdout == b"started\n"
    assert followed.close_code == 1011
    assert "stopped or deleted" in followed.close_reason


def test_a_follower_does_not_keep_its_sandbox_from_auto_stopping(api: Api) -> None:
    sandbox_id = api.create(autoStopInterval=0.05)["id"]  # three seconds idle
    try:
        command_id = _session_command(api, sandbox_id, "sleep 600")
        url = _follow_url(api, sandbox_id, command_id)
        followed = asyncio.run(asyncio.wait_for(_follow(url, _auth(api)), 60))
        assert followed.close_code == 1011
        deadline = time.monotonic() + 30
        while api.api("GET", f"/sandbox/{sandbox_id}").json()["state"] != "stopped":
            assert time.monotonic() < deadline, "the sandbox never auto-stopped"
            time.sleep(0.05)
    finally:
        api.delete(sandbox_id)


_SLOW_READER = """
import asyncio, json, re, sys
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

OMITTED = re.compile(rb"\\[daytonaflow: (\\d+) bytes of output omitted\\]")

async def main(url, token):
    kept = omitted = 0
    headers = {"Authorization": f"Bearer {token}"}
    async with connect(url, additional_headers=headers, max_size=None, max_queue=4) as websocket:
        try:
            async for message in websocket:
                assert isinstance(message, bytes) and message.startswith(b"\\x01\\x01\\x01")
                omitted += sum(int(count) for count in OMITTED.findall(message))
                kept += OMITTED.sub(b"", message).count(b"a")
                await asyncio.sleep(0.005)  # a reader slower than the flood
        except ConnectionClosed:
            pass
        print(json.dumps([kept, omitted, websocket.close_code]))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def test_a_flood_through_the_follow_completes_with_bounded_server_memory(
    api: Api, sandbox: dict[str, Any]
) -> None:
    """200 MB through one follow: a slow reader gets the omitted marker for what it missed; the
    server (this process) never holds the flood. The reader runs in its own process so that its
    buffers do not count against the server's peak."""
    flood = 200_000_000
    command_id = _session_command(api, sandbox["id"], f"head -c {flood} /dev/zero | tr '\\0' a")
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    reader = subprocess.run(
        [sys.executable, "-c", _SLOW_READER, _follow_url(api, sandbox["id"], command_id), api.server.api_key],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - peak_before
    assert reader.returncode == 0, reader.stderr
    kept, omitted, close_code = json.loads(reader.stdout)
    assert close_code == 1000
    assert kept + omitted == flood
    assert omitted > 0  # the reader was slow enough to miss some
    assert growth < 32_000_000, f"the server grew by {growth} bytes"
