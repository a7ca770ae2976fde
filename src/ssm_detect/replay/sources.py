"""Read CloudTrail from files and folders: S3 log objects, arrays, JSON lines, envelopes.

Each yielded item carries where it came from (`file`, `file:line`) so bad input can be
reported precisely. Unreadable parts of a file are reported and the rest is still read.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ssm_detect.ingest import BadEvent

SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Payload:
    origin: str
    body: object


def input_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files named directly, and CloudTrail-looking files under folders, in a stable order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES)
            )
        else:
            yield path


def read_payloads(path: Path) -> Iterator[Payload | tuple[str, BadEvent]]:
    """The JSON documents in one file: the whole file, or one per line."""
    origin = str(path)
    try:
        data = path.read_bytes()
        if data[:2] == _GZIP_MAGIC:
            data = gzip.decompress(data)
        text = data.decode("utf-8")
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError) as error:
        yield origin, BadEvent("unknown", f"unreadable file: {type(error).__name__}: {error}")
        return
    try:
        yield Payload(origin, json.loads(text))
    except json.JSONDecodeError:
        yield from _json_lines(origin, text)


def _json_lines(origin: str, text: str) -> Iterator[Payload | tuple[str, BadEvent]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{origin}:{number}"
        try:
            yield Payload(where, json.loads(line))
        except json.JSONDecodeError as error:
            yield where, BadEvent("unknown", f"not JSON: {error.msg} at column {error.colno}")
