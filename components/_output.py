"""Bounding output kept in payloads and errors, with a marker that says what was cut."""

from __future__ import annotations

from collections.abc import Iterable

REDACTED = "[REDACTED]"
_MARKER = "\n[... daytonaflow truncated {} bytes of output ...]\n"
_TAIL_MARKER = "[... earlier output truncated ...]\n"


def _cut(data: bytes, size: int, *, from_end: bool) -> str:
    piece = data[-size:] if from_end else data[:size]
    # A cut may split a UTF-8 sequence; drop the broken character rather than fail.
    return piece.decode("utf-8", errors="ignore")


def bound_output(text: str, limit_bytes: int) -> tuple[str, bool]:
    """``text`` if it fits in ``limit_bytes`` (UTF-8); else its head and tail around a marker.

    Returns the kept text and whether anything was cut. The head shows how a run started,
    the tail how it ended (where errors usually are).
    """
    data = text.encode("utf-8")
    if len(data) <= limit_bytes:
        return text, False
    marker_size = len(_MARKER.format(len(data)).encode())
    keep = max(0, limit_bytes - marker_size)
    head_size = keep // 2
    tail_size = keep - head_size
    dropped = len(data) - head_size - tail_size
    marker = _MARKER.format(dropped)
    return _cut(data, head_size, from_end=False) + marker + _cut(data, tail_size, from_end=True), True


def tail(text: str, limit_bytes: int) -> str:
    """The last ``limit_bytes`` of ``text``, marked when something before it was cut."""
    data = text.encode("utf-8")
    if len(data) <= limit_bytes:
        return text
    return _TAIL_MARKER + _cut(data, limit_bytes, from_end=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of a secret value replaced (longest first, non-trivial ones)."""
    for value in sorted({secret for secret in secrets if len(secret) >= 4}, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text


class OutputBuffer:
    """Output that arrives in pieces, of which only what a payload can show is kept: the first
    and the last ``limit`` bytes. :meth:`bounded` and :meth:`tail` answer as :func:`bound_output`
    and :func:`tail` would for the whole text, in memory bounded by the limit, however long it ran.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self._head = bytearray()
        self._tail = bytearray()

    def add(self, text: str) -> None:
        data = text.encode("utf-8")
        self.total += len(data)
        if len(self._head) < self.limit:
            self._head += data[: self.limit - len(self._head)]
        self._tail += data[-self.limit :]
        if len(self._tail) > self.limit:
            del self._tail[: len(self._tail) - self.limit]

    def text(self) -> str:
        """Everything, when it all fits in the limit (else :meth:`bounded`)."""
        return self.bounded()[0]

    def bounded(self) -> tuple[str, bool]:
        if self.total <= self.limit:
            return bytes(self._head).decode("utf-8", errors="ignore"), False
        marker_size = len(_MARKER.format(self.total).encode())
        keep = max(0, self.limit - marker_size)
        head_size = keep // 2
        tail_size = keep - head_size
        marker = _MARKER.format(self.total - head_size - tail_size)
        head = _cut(bytes(self._head), head_size, from_end=False)
        end = _cut(bytes(self._tail), tail_size, from_end=True) if tail_size else ""
        return head + marker + end, True

    def tail(self) -> str:
        if self.total <= self.limit:
            return bytes(self._head).decode("utf-8", errors="ignore")
        return _TAIL_MARKER + _cut(bytes(self._tail), self.limit, from_end=True)
