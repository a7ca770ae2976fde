"""Read CloudTrail from files and folders: S3 log objects, arrays, JSON lines, envelopes.

Files are streamed. A JSON-lines file is read one line at a time; a whole-document file (an S3
log object is one line of `{"Records": [...]}`) must be parsed whole, and is released when its
records have been handed on. Each record carries where it came from (`file:12` for a line,
`file:Records[3]` for an element of a document) so bad input can be reported precisely.
Unreadable parts of a file are reported and everything readable is still read.
"""

from __future__ import annotations

import io
import json
import re
import zlib
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, cast

from isal import igzip, isal_zlib

from ssm_detect.replay.gzlines import GzipLines
from ssm_detect.replay.prefilter import Needed, needs_parsing, split_records

SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")
_LINE_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")
_GZIP_MAGIC = b"\x1f\x8b"
_BUFFER_SIZE = 1024 * 1024
_ENVELOPE_KEYS = ("detail-type", "detail")
# What a damaged file raises while it is being read; everything read before it still counts.
_READ_ERRORS = (OSError, EOFError, zlib.error)
# How much of a file is read to tell an S3 log object (`{"Records": [...]}`) from the rest.
_PEEK = 64 * 1024
_DOCUMENT_START = re.compile(rb'\A\s*\{\s*"Records"\s*:')
_KEEP_EVERYTHING = needs_parsing()
# CloudTrail writes objects of a few megabytes; anything far larger is read as a stream.
_MAX_LOG_OBJECT_BYTES = 512 * 1024 * 1024
_GZIP_WBITS = 16 + zlib.MAX_WBITS
# Declared as an instance in isal's stubs; at run time it is the exception class.
_ISAL_ERROR = cast(type[Exception], isal_zlib.error)
# What json.loads raises on text that is not a JSON value we can hold: RecursionError for
# nesting deeper than the interpreter's recursion limit (`[[[[...` a thousand levels).
_PARSE_ERRORS = (ValueError, RecursionError)


class _ByteStream(Protocol):
    """A plain or gzip file opened for reading: iterated by line, or read whole."""

    def read(self) -> bytes: ...

    def __iter__(self) -> Iterator[bytes]: ...


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One JSON value that should be a CloudTrail record or an EventBridge envelope."""

    origin: str
    body: object


@dataclass(frozen=True, slots=True)
class RecordList:
    """The elements of a parsed document (`Records` of an S3 log object, or an array), handed
    on as one item: positions are formatted only for the few records that need reporting or
    keeping, not for the millions that are other services."""

    origin: str
    key: str
    """`Records`, or empty for a top-level array."""
    items: list[object]

    def origin_of(self, index: int) -> str:
        return f"{self.origin}:{self.key}[{index}]"


@dataclass(frozen=True, slots=True)
class Problem:
    """Input that could not be read at all: reported with its position and counted."""

    origin: str
    reason: str


@dataclass(frozen=True, slots=True)
class FilteredRecords:
    """An S3 log object read by the prefilter (prefilter.py): `total` records, of which only
    `needed` (index, record JSON) could matter; the others are other services' calls, or SSM
    calls no detection reads, and are only counted."""

    origin: str
    total: int
    needed: list[tuple[int, bytes]]

    def origin_of(self, index: int) -> str:
        return f"{self.origin}:Records[{index}]"


SourceItem = RawRecord | RecordList | FilteredRecords | Problem


def input_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files named directly, and CloudTrail-looking files under folders, in a stable order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES)
            )
        else:
            yield path


def read_file(path: Path, needed: Needed = _KEEP_EVERYTHING) -> Iterator[SourceItem]:
    """Every record in one file, each with its position, and a Problem for each bad part.

    An S3 log object goes through the prefilter with `needed` (by default: drop other
    services' records only); anything else, or anything the prefilter declines, is read by the
    general reader below."""
    if not path.name.endswith(_LINE_SUFFIXES):
        fast = log_object(path, needed)
        if fast is not None:
            yield fast
            return
    with ExitStack() as stack:
        try:
            raw: BinaryIO = stack.enter_context(path.open("rb", buffering=_BUFFER_SIZE))
        except OSError as error:
            yield Problem(str(path), f"unreadable: {_describe_read_error(error)}")
            return
        yield from _read_stream(raw, str(path), lines=path.name.endswith(_LINE_SUFFIXES))


def read_object(
    data: bytes, origin: str, needed: Needed = _KEEP_EVERYTHING
) -> Iterator[SourceItem]:
    """An object already in memory (fetched from S3), read as `read_file` reads a file named
    `origin`."""
    lines = origin.endswith(_LINE_SUFFIXES)
    fast = None if lines else _log_object_bytes(data, origin, needed)
    if fast is not None:
        yield fast
        return
    yield from _read_stream(io.BytesIO(data), origin, lines=lines)


def is_log_object_name(name: str) -> bool:
    return name.endswith(SUFFIXES)


def _read_stream(raw: BinaryIO, origin: str, *, lines: bool) -> Iterator[SourceItem]:
    cursor = _Cursor(origin)
    try:
        stream = _open(raw)
        if lines:
            yield from _json_lines(stream, cursor)
        else:
            yield from _document_or_lines(stream, cursor)
    except _READ_ERRORS as error:
        # Everything before the damage has been handed on; the position is where it starts.
        yield Problem(cursor.next_position(), f"unreadable: {_describe_read_error(error)}")


def log_object(path: Path, needed: Needed) -> FilteredRecords | None:
    """The file as an S3 log object through the prefilter, or None for the general reader
    (another shape, a file too large to hold compressed, or damage: the general reader reports
    where)."""
    try:
        if path.stat().st_size > _MAX_LOG_OBJECT_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    return _log_object_bytes(data, str(path), needed)


def _log_object_bytes(data: bytes, origin: str, needed: Needed) -> FilteredRecords | None:
    try:
        gzipped = data[:2] == _GZIP_MAGIC
        head = _inflater().decompress(data[:_PEEK], _PEEK) if gzipped else data[:_PEEK]
        if not _DOCUMENT_START.match(head):
            return None
        # isal's igzip reads concatenated members as gzip does (measured: docs/performance.md).
        document = cast(bytes, igzip.decompress(data)) if gzipped else data  # type: ignore[no-untyped-call]
    except (*_READ_ERRORS, _ISAL_ERROR):
        return None
    split = split_records(document, needed)
    if split is None:
        return None
    return FilteredRecords(origin, split.total, split.needed)


def _inflater() -> isal_zlib.Decompress:
    return isal_zlib.decompressobj(wbits=_GZIP_WBITS)


def document_item(document: object, origin: str) -> RawRecord | RecordList:
    """A parsed document as records: an S3 log object's `Records` and an array's elements are
    a list; an envelope or a bare record is itself the record."""
    if isinstance(document, list):
        return RecordList(origin, "", document)
    if (
        isinstance(document, dict)
        and isinstance(document.get("Records"), list)
        and not any(key in document for key in _ENVELOPE_KEYS)
    ):
        return RecordList(origin, "Records", document["Records"])
    return RawRecord(origin, document)


@dataclass
class _Cursor:
    """Where reading has got to, so a failure mid-file names the line it stopped at."""

    file: str
    line: int = 0

    def next_position(self) -> str:
        """The line being read when reading failed (the file itself before the first line)."""
        return f"{self.file}:{self.line + 1}" if self.line else self.file


def _open(raw: BinaryIO) -> _ByteStream:
    magic = raw.read(2)
    raw.seek(0)
    return GzipLines(raw) if magic == _GZIP_MAGIC else raw


def _document_or_lines(stream: _ByteStream, cursor: _Cursor) -> Iterator[SourceItem]:
    """A `.json` file is one document (possibly pretty-printed) or JSON lines; the first lines
    tell which without reading the whole file when it is JSON lines."""
    first = _next_content_line(stream, cursor)
    if first is None:
        return
    first_number = cursor.line
    try:
        document = json.loads(first)
    except _PARSE_ERRORS:
        # Not a complete value on its own: a pretty-printed document, or JSON lines whose
        # first line is broken. The document must be read whole either way.
        yield from _whole_or_lines(first + stream.read(), cursor)
        return
    second = _next_content_line(stream, cursor)
    if second is None:
        del first  # the document is parsed: don't hold its text while records are handed on
        yield document_item(document, cursor.file)
        return
    yield document_item(document, f"{cursor.file}:{first_number}")
    del first, document
    yield from _line(second, cursor)
    yield from _json_lines(stream, cursor)


def _whole_or_lines(text: bytes, cursor: _Cursor) -> Iterator[SourceItem]:
    try:
        document = json.loads(text)
    except _PARSE_ERRORS as error:
        lines = text.splitlines()
        if len(lines) > 1 and _parses(next((s for s in lines[1:] if s.strip()), b"")):
            # The rest reads as JSON lines: only the first line is broken.
            cursor.line = 0
            yield from _json_lines(iter(lines), cursor)
        else:
            yield Problem(cursor.file, _describe_json_error(error))
        return
    del text
    yield document_item(document, cursor.file)


def _json_lines(lines: Iterable[bytes], cursor: _Cursor) -> Iterator[SourceItem]:
    for line in lines:
        cursor.line += 1
        if line.strip():
            yield from _line(line, cursor)


def _line(line: bytes, cursor: _Cursor) -> Iterator[SourceItem]:
    origin = f"{cursor.file}:{cursor.line}"
    try:
        document = json.loads(line)
    except _PARSE_ERRORS as error:
        yield Problem(origin, _describe_json_error(error, one_line=True))
        return
    yield document_item(document, origin)


def _next_content_line(stream: _ByteStream, cursor: _Cursor) -> bytes | None:
    for line in stream:
        cursor.line += 1
        if line.strip():
            return line
    return None


def _parses(text: bytes) -> bool:
    try:
        json.loads(text)
    except _PARSE_ERRORS:
        return False
    return True


def _describe_json_error(error: Exception, *, one_line: bool = False) -> str:
    """Where the text stops being JSON: the column of a line, or line and column of a file."""
    if isinstance(error, RecursionError):
        return "nested too deeply to parse"
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8: byte {error.start} cannot be decoded"
    if isinstance(error, json.JSONDecodeError):
        if one_line or error.lineno == 1:
            # `pos` counts from the line's start; lineno would count its trailing newline.
            return f"not JSON: {error.msg} at column {error.pos + 1}"
        return f"not JSON: {error.msg} at line {error.lineno} column {error.colno}"
    return f"not JSON: {error}"


def _describe_read_error(error: Exception) -> str:
    if isinstance(error, EOFError):
        return "truncated gzip (the file ends before the compressed stream does)"
    if isinstance(error, zlib.error):
        return f"corrupt gzip: {error}"
    return f"{type(error).__name__}: {error}"
