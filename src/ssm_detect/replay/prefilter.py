"""Which records of a CloudTrail S3 object a replay must parse, decided without parsing them.

A trail is mostly other services: a replay that builds a Python dict for every record spends
most of its time on records it then drops on their `eventSource`. Here an S3 object
(`{"Records": [...]}`) is decoded twice by msgspec, both in C and without building the records:
once into the raw bytes of each record, once into each record's *head* (`eventSource`,
`eventName`, and the keys that make a record a container). Only the records the head cannot
rule out are parsed, by the standard library, exactly as before.

Why this is safe: the head is read by a conforming JSON parser, so escapes (`\\u0073sm`), odd
whitespace and duplicate keys (the last wins, as in `json.loads`) give the values the full parse
gives. A record is ruled out only when the full parse would also drop it unseen:
- its `eventSource` is present, not null and not SSM (the engine's own first test), or
- it is an SSM record whose `eventName` is a string no detection reads (`names`);
and never when it carries `Records`, `detail` or `detail-type` (a container the engine
unpacks). Anything the two decoders disagree on, or that is not an object in a list under
`Records`, makes the whole file fall back to the general reader (sources.py), which reports
bad input precisely. tests/test_replay_prefilter.py checks this on generated records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import msgspec

from ssm_detect.event_names import SSM_EVENT_SOURCE

_ABSENT = msgspec.UNSET


class _Head(msgspec.Struct):
    """What decides whether a record is needed; every other key is skipped unread."""

    eventSource: object = None  # noqa: N815 - CloudTrail's own key
    eventName: object = None  # noqa: N815
    Records: object = _ABSENT
    detail: object = _ABSENT
    detail_type: object = msgspec.field(default=_ABSENT, name="detail-type")


class _Heads(msgspec.Struct):
    Records: list[_Head]
    detail: object = _ABSENT
    detail_type: object = msgspec.field(default=_ABSENT, name="detail-type")


class _Raws(msgspec.Struct):
    Records: list[msgspec.Raw]


_HEADS = msgspec.json.Decoder(_Heads)
_RAWS = msgspec.json.Decoder(_Raws)


@dataclass(frozen=True, slots=True)
class Split:
    """An S3 object's records: how many there are, and the raw bytes of those needed."""

    total: int
    needed: list[tuple[int, bytes]]
    """(index in `Records`, the record's JSON) for the records the engine must parse."""


Needed = Callable[[_Head], bool]


def needs_parsing(event_names: Iterable[str] | None = None) -> Needed:
    """The test for one head. With `event_names`, SSM records of other calls are ruled out too;
    without, only other services are (the engine's own test, nothing more)."""
    names = frozenset(event_names) if event_names is not None else None

    def needed(head: _Head) -> bool:
        if head.Records is not _ABSENT or head.detail is not _ABSENT:
            return True
        if head.detail_type is not _ABSENT:
            return True
        source = head.eventSource
        if source is not None and source != SSM_EVENT_SOURCE:
            return False
        if names is None or source is None:
            return True
        return not isinstance(head.eventName, str) or head.eventName in names

    return needed


def split_records(document: bytes, needed: Needed) -> Split | None:
    """The records of a `{"Records": [...]}` document that `needed` keeps; None when the
    document is anything else (or JSON msgspec reads differently), for the general reader."""
    if not _utf8(document):
        return None  # msgspec skips unread strings unchecked; the general reader reports it
    try:
        heads = _HEADS.decode(document)
        if heads.detail is not _ABSENT or heads.detail_type is not _ABSENT:
            return None  # an envelope that happens to hold `Records`: the engine's case
        kept = [index for index, head in enumerate(heads.Records) if needed(head)]
        if not kept:
            return Split(len(heads.Records), [])
        raws = _RAWS.decode(document).Records
    except (msgspec.DecodeError, RecursionError):
        return None
    if len(raws) != len(heads.Records):
        return None
    return Split(len(raws), [(index, bytes(raws[index])) for index in kept])


def _utf8(document: bytes) -> bool:
    """Whether the document is UTF-8, as `json.loads` requires (ASCII, the usual case, is
    checked many times faster than decoding)."""
    if document.isascii():
        return True
    try:
        document.decode()
    except UnicodeDecodeError:
        return False
    return True
