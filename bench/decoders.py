"""How the replay's decompressor and JSON decoders were chosen: each candidate over one corpus.

    python -m bench.decoders bench/corpus/r100000-s7-v1

Times (one run each, in one process, files already in memory) for gunzip by the standard
library, isal and zlib-ng, then for turning the inflated S3 objects into records: json, orjson
and msgspec building every record, msgspec splitting each object into its records' raw bytes,
and msgspec reading only each record's head (what ssm_detect/replay/prefilter.py does).
"""

from __future__ import annotations

import gzip
import json
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import msgspec
import orjson
import zlib_ng.gzip_ng
from isal import igzip


class _Raws(msgspec.Struct):
    Records: list[msgspec.Raw]


class _Head(msgspec.Struct):
    eventSource: object = None  # noqa: N815
    eventName: object = None  # noqa: N815


class _Heads(msgspec.Struct):
    Records: list[_Head]


def _time(name: str, work: Callable[[], int]) -> None:
    started = time.perf_counter()
    count = work()
    print(f"{name:52} {time.perf_counter() - started:7.2f} s   ({count:,})")


def main(folder: Path) -> None:
    files = sorted(folder.rglob("*.json.gz"))
    compressed = [f.read_bytes() for f in files]
    print(f"{len(files)} objects, {sum(map(len, compressed)):,} bytes compressed")
    _time("gunzip: gzip.decompress", lambda: sum(len(gzip.decompress(d)) for d in compressed))
    _time(
        "gunzip: zlib.decompress(wbits=31)",
        lambda: sum(len(zlib.decompress(d, 31)) for d in compressed),
    )
    _time(
        "gunzip: isal igzip.decompress", lambda: sum(len(igzip.decompress(d)) for d in compressed)
    )
    _time(
        "gunzip: zlib-ng gzip_ng.decompress",
        lambda: sum(len(zlib_ng.gzip_ng.decompress(d)) for d in compressed),
    )
    inflated = [igzip.decompress(d) for d in compressed]
    raws, heads = msgspec.json.Decoder(_Raws), msgspec.json.Decoder(_Heads)
    _time("parse: json.loads", lambda: sum(len(json.loads(d)["Records"]) for d in inflated))
    _time("parse: orjson.loads", lambda: sum(len(orjson.loads(d)["Records"]) for d in inflated))
    _time(
        "parse: msgspec.json.decode",
        lambda: sum(len(msgspec.json.decode(d)["Records"]) for d in inflated),
    )
    _time(
        "split: msgspec into raw records",
        lambda: sum(len(raws.decode(d).Records) for d in inflated),
    )
    _time(
        "heads: msgspec eventSource + eventName only",
        lambda: sum(len(heads.decode(d).Records) for d in inflated),
    )
    _time(
        "floor: gzip.decompress + json.loads",
        lambda: sum(len(json.loads(gzip.decompress(d))["Records"]) for d in compressed),
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
