"""State members are strings `"<epoch seconds>|<value>"`: sortable, idempotent in a set.

Values that start with an event id escape it (`event_field`), so a hostile id holding `|`
cannot shift the fields after it.
"""

from __future__ import annotations

from collections.abc import Iterable

_WIDTH = 11  # zero-padded so that string order is time order until the year 5000


def encode(epoch: int, value: str) -> str:
    return f"{epoch:0{_WIDTH}d}|{value}"


def decode(member: str) -> tuple[int, str]:
    stamp, _, value = member.partition("|")
    return int(stamp), value


def decode_all(members: Iterable[str]) -> list[tuple[int, str]]:
    """Decoded members, oldest first; a member that does not decode is ignored."""
    decoded = []
    for member in members:
        stamp, sep, value = member.partition("|")
        if sep and stamp.isdigit():
            decoded.append((int(stamp), value))
    decoded.sort()
    return decoded


def stale(members: Iterable[str], older_than: int) -> frozenset[str]:
    """Members whose time is before `older_than` (epoch seconds)."""
    return frozenset(m for m in members if decode(m)[0] < older_than)


def event_field(event_id: str) -> str:
    """An event id as one `|`-separated field (CloudTrail's GUIDs pass unchanged)."""
    return event_id.replace("%", "%25").replace("|", "%7C")


def event_id_of(field: str) -> str:
    return field.replace("%7C", "|").replace("%25", "%")
