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
    return _bounded(data, data, len(data), limit_bytes)


def tail(text: str, limit_bytes: int) -> str:
    """The last ``limit_bytes`` of ``text``, marked when something before it was cut."""
    data = text.encode("utf-8")
    return _tail(data, len(data), limit_bytes)


def _bounded(head: bytes, end: bytes, total: int, limit: int) -> tuple[str, bool]:
    """What :func:`bound_output` keeps of ``total`` bytes that start with ``head`` and end with ``end``."""
    if total <= limit:
        return head.decode("utf-8", errors="ignore"), False
    marker_size = len(_MARKER.format(total).encode())
    keep = max(0, limit - marker_size)
    head_size = keep // 2
    tail_size = keep - head_size
    marker = _MARKER.format(total - head_size - tail_size)
    kept_end = _cut(end, tail_size, from_end=True) if tail_size else ""
    return _cut(head, head_size, from_end=False) + marker + kept_end, True


def _tail(end: bytes, total: int, limit: int) -> str:
    if total <= limit:
        return end.decode("utf-8", errors="ignore")
    return _TAIL_MARKER + _cut(end, limit, from_end=True)


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

    def bounded(self) -> tuple[str, bool]:
        return _bounded(bytes(self._head), bytes(self._tail), self.total, self.limit)

    def tail(self) -> str:
        return _tail(bytes(self._tail), self.total, self.limit)
