"""Bounding output kept in payloads and errors, with a marker that says what was cut."""

from __future__ import annotations

from collections.abc import Iterable

REDACTED = "[REDACTED]"


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
    marker_template = "\n[... daytonaflow truncated {} bytes of output ...]\n"
    marker_size = len(marker_template.format(len(data)).encode())
    keep = max(0, limit_bytes - marker_size)
    head_size = keep // 2
    tail_size = keep - head_size
    dropped = len(data) - head_size - tail_size
    marker = marker_template.format(dropped)
    return _cut(data, head_size, from_end=False) + marker + _cut(data, tail_size, from_end=True), True


def tail(text: str, limit_bytes: int) -> str:
    """The last ``limit_bytes`` of ``text``, marked when something before it was cut."""
    data = text.encode("utf-8")
    if len(data) <= limit_bytes:
        return text
    return "[... earlier output truncated ...]\n" + _cut(data, limit_bytes, from_end=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of a secret value replaced (longest first, non-trivial ones)."""
    for value in sorted({secret for secret in secrets if len(secret) >= 4}, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text
