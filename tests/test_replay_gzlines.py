"""The gzip line reader gives exactly what `gzip` gives, at any chunk boundary."""

from __future__ import annotations

import gzip
import io
import tracemalloc
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssm_detect.replay import gzlines
from ssm_detect.replay.gzlines import GzipLines


def reader(data: bytes) -> GzipLines:
    return GzipLines(io.BytesIO(data))


@pytest.fixture
def tiny_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of a few bytes, so every line crosses chunk and output-bound boundaries."""
    monkeypatch.setattr(gzlines, "_READ_SIZE", 7)
    monkeypatch.setattr(gzlines, "_MAX_STEP_OUTPUT", 5)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=12), st.booleans())
def test_gzip_lines_match_gzip_for_any_content(parts: list[bytes], final_newline: bool) -> None:
    data = b"\n".join(parts) + (b"\n" if final_newline else b"")
    compressed = gzip.compress(data)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gzlines, "_READ_SIZE", 7)
        patch.setattr(gzlines, "_MAX_STEP_OUTPUT", 5)
        assert list(reader(compressed)) == list(gzip.GzipFile(fileobj=io.BytesIO(compressed)))


def test_gzip_lines_reads_concatenated_members(tiny_steps: None) -> None:
    data = gzip.compress(b"one\ntw") + gzip.compress(b"o\nthree\n")
    assert list(reader(data)) == [b"one\n", b"two\n", b"three\n"]


def test_gzip_lines_read_returns_what_readline_left(tiny_steps: None) -> None:
    lines = reader(gzip.compress(b'{"a": 1}\n{"b": 2}\n{"c": 3}'))
    assert lines.readline() == b'{"a": 1}\n'
    assert lines.read() == b'{"b": 2}\n{"c": 3}'
    assert lines.readline() == b""


def test_gzip_lines_truncated_raises_after_the_complete_lines(tiny_steps: None) -> None:
    data = gzip.compress(b"".join(b"line %d\n" % n for n in range(50)))
    lines = reader(data[: len(data) // 2])
    seen = []
    with pytest.raises(EOFError):
        seen.extend(lines)
    assert seen == [b"line %d\n" % n for n in range(len(seen))]
    assert seen


def test_gzip_lines_detects_a_corrupted_checksum() -> None:
    data = bytearray(gzip.compress(b"payload\n"))
    data[-8] ^= 0xFF  # the CRC-32 in the trailer
    with pytest.raises(zlib.error):
        list(reader(bytes(data)))


def test_gzip_lines_bounds_each_step_of_a_highly_compressed_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """10 MB of newlines from a few kilobytes: handed out line by line, never all at once."""
    monkeypatch.setattr(gzlines, "_MAX_STEP_OUTPUT", 64 * 1024)
    lines = reader(gzip.compress(b"\n" * 10_000_000))
    tracemalloc.start()
    try:
        assert lines.readline() == b"\n"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000
