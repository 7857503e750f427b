"""The server's side of the agent protocol (see ``_agent.py`` for the wire format)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from daytonaflow.localserver.errors import AgentCallError

_LINE_LIMIT = 64 << 20
# A stream's answer line is short; the reader's limit also caps what it buffers ahead of a slow
# consumer (twice the limit), so a download served to a slow client holds kilobytes, not 64 MiB.
_STREAM_LINE_LIMIT = 64 << 10


class AgentStream:
    """An open agent connection after its answer line: raw bytes follow."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, header: dict[str, Any]):
        self.reader = reader
        self.writer = writer
        self.header = header

    async def iter_chunks(self, size: int | None = None) -> AsyncIterator[bytes]:
        remaining = size
        try:
            while remaining is None or remaining > 0:
                chunk = await self.reader.read(65536 if remaining is None else min(remaining, 65536))
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            await self.close()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


class AgentClient:
    """Calls one sandbox's agent over its Unix socket; one connection per call."""

    def __init__(self, socket_path: Path, sandbox_id: str) -> None:
        self.socket_path = socket_path
        self.sandbox_id = sandbox_id

    async def _open(
        self, request: dict[str, Any], limit: int = _LINE_LIMIT
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            reader, writer = await asyncio.open_unix_connection(str(self.socket_path), limit=limit)
        except OSError as error:
            raise AgentCallError(
                502, f"sandbox {self.sandbox_id} agent is unreachable: {error}", code="AGENT_UNREACHABLE"
            ) from None
        writer.write(json.dumps(request).encode() + b"\n")
        return reader, writer

    async def _answer(self, reader: asyncio.StreamReader) -> dict[str, Any]:
        line = await reader.readline()
        if not line:
            raise AgentCallError(
                502, f"sandbox {self.sandbox_id} agent closed the connection", code="AGENT_UNREACHABLE"
            )
        answer: dict[str, Any] = json.loads(line)
        if not answer.get("ok"):
            raise AgentCallError(int(answer.get("status", 500)), str(answer.get("message", "agent error")))
        answer.pop("ok", None)
        return answer

    async def call(self, op: str, **fields: Any) -> dict[str, Any]:
        reader, writer = await self._open({"op": op, **fields})
        try:
            await writer.drain()
            return await self._answer(reader)
        finally:
            writer.close()

    async def stream(self, op: str, **fields: Any) -> AgentStream:
        """Send a request whose answer line is followed by raw bytes."""
        reader, writer = await self._open({"op": op, **fields}, _STREAM_LINE_LIMIT)
        try:
            await writer.drain()
            header = await self._answer(reader)
        except BaseException:
            writer.close()
            raise
        return AgentStream(reader, writer, header)

    async def upload(self, path: str, chunks: AsyncIterator[bytes]) -> dict[str, Any]:
        """Stream a file: the agent first accepts the path, then reads length-prefixed frames."""
        upload = await self.open_upload(path)
        try:
            async for chunk in chunks:
                await upload.write(chunk)
            return await upload.finish()
        finally:
            upload.close()

    async def open_upload(self, path: str) -> AgentUpload:
        """An upload of one file the caller feeds piece by piece (see :class:`AgentUpload`);
        an ``AgentCallError`` when the agent refuses the path."""
        reader, writer = await self._open({"op": "upload", "path": path}, _STREAM_LINE_LIMIT)
        try:
            await writer.drain()
            await self._answer(reader)
        except BaseException:
            writer.close()
            raise
        return AgentUpload(self, reader, writer)

    def connect_blocking(self, port: int, timeout: float = 10.0) -> socket.socket:
        """A plain socket spliced to ``127.0.0.1:port`` inside the sandbox (for WebSocket clients)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(str(self.socket_path))
            sock.sendall(json.dumps({"op": "connect", "port": port}).encode() + b"\n")
            line = bytearray()
            while not line.endswith(b"\n"):
                byte = sock.recv(1)
                if not byte:
                    raise AgentCallError(502, f"sandbox {self.sandbox_id} agent closed the connection")
                line += byte
        except OSError as error:
            sock.close()
            raise AgentCallError(502, f"sandbox {self.sandbox_id} agent is unreachable: {error}") from None
        answer = json.loads(line)
        if not answer.get("ok"):
            sock.close()
            raise AgentCallError(int(answer.get("status", 502)), str(answer.get("message")))
        sock.settimeout(None)
        return sock


class AgentUpload:
    """One file being uploaded: ``write`` its bytes, then ``finish`` for the agent's answer."""

    def __init__(self, client: AgentClient, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._client = client
        self._reader = reader
        self._writer = writer
        self._refused = False

    async def write(self, chunk: bytes) -> None:
        if not chunk or self._refused:
            return
        try:
            self._writer.write(len(chunk).to_bytes(8, "big") + chunk)
            await self._writer.drain()
        except (ConnectionError, OSError):
            self._refused = True  # the agent refused mid-way (e.g. too large): its answer says why

    async def finish(self) -> dict[str, Any]:
        if not self._refused:
            with contextlib.suppress(ConnectionError, OSError):
                self._writer.write((0).to_bytes(8, "big"))
                await self._writer.drain()
        return await self._client._answer(self._reader)

    def close(self) -> None:
        self._writer.close()
