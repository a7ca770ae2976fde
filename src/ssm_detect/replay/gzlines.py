"""Lines of a gzip file, decompressed in large steps.

`gzip.GzipFile` hands out lines through an 8 KB buffer. A CloudTrail S3 object is one line of
several megabytes, so reading it that way costs many small inflate calls and joins: about a
fifth of a replay's time on a corpus of S3 objects (docs/backtest.md). This reader inflates
1 MiB of input at a time with zlib, which checks each member's CRC and length. Each step's
output is bounded, so memory is the longest line plus one step, however well the file
compresses; concatenated members are read as `gzip` reads them.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import BinaryIO

_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer around a deflate stream
_READ_SIZE = 1024 * 1024
_MAX_STEP_OUTPUT = 16 * 1024 * 1024


class GzipLines:
    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._chunks = self._inflate()
        self._buffer = b""
        self._offset = 0

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")

    def readline(self) -> bytes:
        """The next line with its newline; the last may lack one; b"" at the end."""
        parts = []
        while (end := self._buffer.find(b"\n", self._offset)) == -1:
            parts.append(self._buffer[self._offset :])
            chunk = next(self._chunks, None)
            if chunk is None:
                self._buffer, self._offset = b"", 0
                return b"".join(parts)
            self._buffer, self._offset = chunk, 0
        parts.append(self._buffer[self._offset : end + 1])
        self._offset = end + 1
        return b"".join(parts)

    def read(self) -> bytes:
        """Everything not yet handed out."""
        rest = [self._buffer[self._offset :], *self._chunks]
        self._buffer, self._offset = b"", 0
        return b"".join(rest)

    def _inflate(self) -> Iterator[bytes]:
        inflater = zlib.decompressobj(_GZIP_WBITS)
        in_member = False
        data = b""
        while data or (data := self._raw.read(_READ_SIZE)):
            in_member = True
            # Output held back by the bound comes out with the next call or with flush().
            if out := inflater.decompress(data, _MAX_STEP_OUTPUT):
                yield out
            data = inflater.unconsumed_tail
            if inflater.eof:
                # Concatenated members (`cat a.gz b.gz`) are one file to gzip, and so here.
                data, in_member = inflater.unused_data, False
                inflater = zlib.decompressobj(_GZIP_WBITS)
        if in_member:
            if tail := inflater.flush():
                yield tail
            if not inflater.eof:
                raise EOFError("the file ends before the compressed stream does")
