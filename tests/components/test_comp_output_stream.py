"""Output that arrives in pieces (a followed command): markers stripped, secrets masked, memory bounded."""

from __future__ import annotations

import random

import pytest

from daytonaflow.components._output import REDACTED, OutputBuffer, bound_output, tail
from daytonaflow.components._step import _Masking
from daytonaflow.components.client import _Demux

SECRET = "s3cr3t-token-value"


def _pieces(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    pieces, start = [], 0
    while start < len(data):
        size = rng.randint(1, 7)
        pieces.append(data[start : start + size])
        start += size
    return pieces


@pytest.mark.parametrize("seed", range(20))
def test_a_secret_split_across_pieces_is_still_masked(seed):
    masking = _Masking([SECRET])
    text = f"token={SECRET}\nagain {SECRET}!"
    shown = "".join(masking.feed(piece) for piece in _pieces(text.encode(), seed)) + masking.flush()
    assert shown == f"token={REDACTED}\nagain {REDACTED}!"
    assert SECRET not in shown


@pytest.mark.parametrize("seed", range(10))
def test_a_character_split_across_pieces_stays_whole(seed):
    masking = _Masking([])
    text = "grüße, 世界 ✓\n" * 5
    shown = "".join(masking.feed(piece) for piece in _pieces(text.encode(), seed)) + masking.flush()
    assert shown == text


def test_without_secrets_output_passes_through_at_once():
    masking = _Masking([])
    assert masking.feed(b"hello\n") == "hello\n"


@pytest.mark.parametrize("seed", range(10))
def test_stream_markers_are_removed_even_when_split_across_frames(seed):
    frames = b"\x01\x01\x01out line\n\x02\x02\x02err line\n\x01\x01\x01done\n"
    demux = _Demux()
    data = b"".join(demux.feed(piece) for piece in _pieces(frames, seed)) + demux.flush()
    assert data == b"out line\nerr line\ndone\n"


@pytest.mark.parametrize(("size", "limit"), [(10, 2048), (5000, 1024), (100_000, 1024), (4096, 4096)])
def test_the_buffer_keeps_what_bounding_the_whole_output_would(size, limit):
    rng = random.Random(size)
    text = "".join(rng.choice("abcdefghij\n") for _ in range(size)) + "THE END"
    buffer = OutputBuffer(limit)
    for piece in _pieces(text.encode(), size):
        buffer.add(piece.decode())
    assert buffer.bounded() == bound_output(text, limit)
    assert buffer.tail() == tail(text, limit)


def test_the_buffer_holds_at_most_twice_its_limit_however_long_the_output():
    buffer = OutputBuffer(1024)
    for _ in range(10_000):
        buffer.add("x" * 1000)
    assert buffer.total == 10_000_000
    assert len(buffer._head) + len(buffer._tail) <= 2 * 1024
