"""Block 3, correlate-through-resource: two events linked through one resource within a window.

The chain shape: a document created (later: updated, an association or automation set up), then
run by any path. The key is the resource (account + region + name: resources are regional). Each
half is a member of its own set, carrying what the other half's finding will need (actors,
instance ids) as a small JSON object:
- first   `"<epoch>|<event id>|<json>"` (e.g. a flagged creation);
- second  `"<epoch>|<event id>|<json>"` (e.g. an execution).
Both halves are recorded, so the link is found whichever arrives first, in one atomic union.

Which pairs. A second event S links to exactly one first: the latest first F (by time, then id)
with `S.time - window <= F.time <= S.time`. The reading of an event is every pair it takes part
in: for a second, its own pair; for a first, every second within the window whose latest first
is this one. So each second within the window of a first gets its pair whatever the arrival
order: several runs of a document that arrive before its creation each get theirs when the
creation arrives. (A second judged before the latest of its firsts arrived is paired with an
earlier first; findings anchored on the second, as the chain's are, are then the same finding.)

Bounded: members live `window + LATENESS` of event time (and the TTL as long after the last
write); past `keep` members per set the oldest go, and the store refuses an update once a set
holds `limit` (the event is still read, with its own member). Data values are cut to
`MAX_DATA_CHARS`, lists to `MAX_DATA_ITEMS`, so one member stays under ~4 KB.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from ssm_detect.state import members
from ssm_detect.state.base import StatePrune, StateSnapshot, StateUpdate
from ssm_detect.state.block import LATENESS, Block, StateKey

# One member's data: strings cut to MAX_DATA_CHARS, lists to MAX_DATA_ITEMS; a member whose JSON
# is still over MAX_DATA_BYTES has every string cut to SHORT_CHARS (only hostile input gets there).
# At the limits an item holds 2 x 80 members of at most ~2.1 KB: under 350 KB, whatever the input;
# real members (actor ARNs, a user agent, a few instance ids) are ~0.7 KB.
MAX_DATA_CHARS = 256
MAX_DATA_ITEMS = 20
MAX_DATA_BYTES = 2_048
SHORT_CHARS = 48
DEFAULT_KEEP = 64
DEFAULT_LIMIT = 80
PRUNE_AT = 32
MAX_PRUNED_PER_SET = 1_000

Data = Mapping[str, Any]
"""A flat JSON object: str / int / bool / None values, or lists of str."""


class Side(StrEnum):
    FIRST = "first"
    SECOND = "second"


@dataclass(frozen=True, order=True)
class Mention:
    """One half of a pair, as recorded."""

    epoch: int
    event_id: str
    side: Side = field(compare=False)
    data: Data = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Pair:
    first: Mention
    second: Mention


@dataclass(frozen=True)
class Correlation:
    pairs: tuple[Pair, ...]
    capped: bool
    """The item's bounds may have dropped halves (pairs may be missing, never invented)."""


class CorrelateThroughResource(Block[Mention, Correlation]):
    def __init__(
        self,
        window: timedelta,
        *,
        keep: int = DEFAULT_KEEP,
        limit: int = DEFAULT_LIMIT,
        names: Mapping[Side, str] | None = None,
    ) -> None:
        self.window = window
        self.keep = keep
        self.limit = limit
        self.names = dict(names or {Side.FIRST: "first", Side.SECOND: "second"})

    @property
    def retention(self) -> timedelta:
        return self.window + LATENESS

    def update(self, key: StateKey, observation: Mention) -> StateUpdate:
        return StateUpdate(
            key=str(key),
            add={self.names[observation.side]: frozenset({_encode(observation)})},
            retention=self.retention,
            limits=dict.fromkeys(self.names.values(), self.limit),
        )

    def read(self, observation: Mention, snapshot: StateSnapshot) -> Correlation:
        own = _encode(observation)
        attr = self.names[observation.side]
        refused = own not in snapshot.get(attr, frozenset())
        firsts = self._mentions(snapshot, Side.FIRST)
        seconds = self._mentions(snapshot, Side.SECOND)
        mine = Mention(observation.epoch, observation.event_id, observation.side, _decode_data(own))
        if observation.side is Side.FIRST:
            firsts = sorted({*firsts, mine})
            candidates = [s for s in seconds if mine.epoch <= s.epoch <= mine.epoch + self._span]
        else:
            candidates = [mine]
        pairs = []
        for second in candidates:
            first = self._latest_first(firsts, second)
            if first is None:
                continue
            if observation.side is Side.FIRST and first != mine:
                continue
            pairs.append(Pair(first=first, second=second))
        capped = refused or any(len(snapshot.get(a, ())) >= self.keep for a in self.names.values())
        return Correlation(pairs=tuple(pairs), capped=capped)

    def prune(
        self, key: StateKey, observation: Mention, snapshot: StateSnapshot
    ) -> StatePrune | None:
        newest = max(
            (members.decode(m)[0] for held in snapshot.values() for m in held),
            default=observation.epoch,
        )
        horizon = max(newest, observation.epoch) - int(self.retention.total_seconds())
        remove = {}
        for attr in self.names.values():
            held = snapshot.get(attr, frozenset())
            stale = members.stale(held, horizon)
            kept = sorted(held - stale)
            excess = len(kept) - self.keep
            dropped = sorted(stale | frozenset(kept[:excess] if excess > 0 else ()))
            remove[attr] = frozenset(dropped[:MAX_PRUNED_PER_SET])
        if sum(len(v) for v in remove.values()) < PRUNE_AT:
            return None
        return StatePrune(key=str(key), remove={k: v for k, v in remove.items() if v})

    @property
    def _span(self) -> int:
        return int(self.window.total_seconds())

    def _latest_first(self, firsts: list[Mention], second: Mention) -> Mention | None:
        inside = [f for f in firsts if second.epoch - self._span <= f.epoch <= second.epoch]
        return max(inside, default=None)

    def _mentions(self, snapshot: StateSnapshot, side: Side) -> list[Mention]:
        found = []
        for epoch, value in members.decode_all(snapshot.get(self.names[side], ())):
            event, _, data = value.partition("|")
            found.append(Mention(epoch, members.event_id_of(event), side, _parse(data)))
        return found


def bounded_data(data: Data) -> dict[str, Any]:
    """`data` cut to what a member keeps (module docstring: strings, lists, the whole)."""
    kept = _cut(data, MAX_DATA_CHARS)
    if len(json.dumps(kept, sort_keys=True).encode()) > MAX_DATA_BYTES:
        kept = _cut(data, SHORT_CHARS)
    return kept


def _cut(data: Data, chars: int) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for name, value in list(data.items())[:MAX_DATA_ITEMS]:
        if isinstance(value, str):
            kept[str(name)[:chars]] = value[:chars]
        elif isinstance(value, list | tuple):
            kept[str(name)[:chars]] = [str(v)[:chars] for v in value[:MAX_DATA_ITEMS]]
        elif value is None or isinstance(value, bool | int):
            kept[str(name)[:chars]] = value
        else:
            kept[str(name)[:chars]] = str(value)[:chars]
    return kept


def _encode(mention: Mention) -> str:
    # Sorted keys: the same observation always encodes to the same member (idempotent union).
    data = json.dumps(bounded_data(mention.data), sort_keys=True, separators=(",", ":"))
    return members.encode(mention.epoch, f"{members.event_field(mention.event_id)}|{data}")


def _decode_data(member: str) -> dict[str, Any]:
    return _parse(members.decode(member)[1].partition("|")[2])


def _parse(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}  # a member written by hand or by an older format: the pair, without data
    return value if isinstance(value, dict) else {}
