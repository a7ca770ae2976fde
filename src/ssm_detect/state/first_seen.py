"""Block 1, first-seen: has this key been seen within the history window before this event?

Elastic's new-terms semantics (the rare creator; later updaters, activators). Every sighting,
new or not, is one member `"<epoch>|<event id>"` in one set, added by one atomic union; the
reading is "first" when no member lies in `[time - history, (time, event id))`. Order is event
time, then event id, so two sightings in the same second in either arrival order give exactly
one first.

Arrival order: the sightings that are first in time order are first in every order (a sighting
judged earlier can only have seen fewer predecessors). A sighting that arrives before an earlier
one of the same key has been delivered is also judged first on what is known; verdicts are never
retracted, so late arrival can add a first, never lose one (replays sort by event time and never
meet this).

Bounded: past `keep` members the oldest go (a key seen that often is plainly not new); the
item lives `history + LATENESS` after its last write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ssm_detect.state import members
from ssm_detect.state.base import StatePrune, StateSnapshot, StateUpdate
from ssm_detect.state.block import LATENESS, Block, StateKey

DEFAULT_KEEP = 64


@dataclass(frozen=True, order=True)
class Sighting:
    epoch: int
    event_id: str


@dataclass(frozen=True)
class FirstSeenReading:
    first: bool
    previous: Sighting | None
    """The latest earlier sighting within the history window (None when first)."""


class FirstSeen(Block[Sighting, FirstSeenReading]):
    def __init__(
        self, history: timedelta, *, keep: int = DEFAULT_KEEP, attribute: str = "seen"
    ) -> None:
        self.history = history
        self.keep = keep
        self.attribute = attribute

    def update(self, key: StateKey, observation: Sighting) -> StateUpdate:
        member = members.encode(observation.epoch, members.event_field(observation.event_id))
        return StateUpdate(
            key=str(key),
            add={self.attribute: frozenset({member})},
            retention=self.history + LATENESS,
        )

    def read(self, observation: Sighting, snapshot: StateSnapshot) -> FirstSeenReading:
        oldest = observation.epoch - int(self.history.total_seconds())
        earlier = [
            seen
            for seen in self._sightings(snapshot)
            if oldest <= seen.epoch and seen < observation
        ]
        return FirstSeenReading(first=not earlier, previous=max(earlier, default=None))

    def prune(
        self, key: StateKey, observation: Sighting, snapshot: StateSnapshot
    ) -> StatePrune | None:
        del observation
        held = snapshot.get(self.attribute, frozenset())
        if len(held) <= self.keep:
            return None
        newest = sorted(held)[-self.keep :]
        return StatePrune(key=str(key), remove={self.attribute: held - frozenset(newest)})

    def _sightings(self, snapshot: StateSnapshot) -> list[Sighting]:
        return [
            Sighting(epoch, members.event_id_of(value))
            for epoch, value in members.decode_all(snapshot.get(self.attribute, ()))
        ]
