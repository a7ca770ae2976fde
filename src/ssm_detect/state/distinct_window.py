"""Block 2, distinct-in-window: distinct members per key within a sliding event-time window.

The fan-out shape (instances per principal for commands; later targets for sessions, parameter
names for secret reads). Each event contributes itself, the members it names, and the "unknown"
reaches it cannot enumerate (a tag or wildcard target). The item holds three sets:
- events   `"<epoch>|<event id>|<origin>|<note>"` (origin: the event's region, for links;
  note: one short fact about the call a finding names, e.g. the document it ran);
- members  `"<epoch>|<event id>|<member>"`;
- unknown  `"<epoch>|<event id>|<description>"`.
One atomic union adds an event's members and returns the whole item.

Windows. Each event closes one window: the events at or before it, ordered by (event time, event
id), within the window length. The reading is every window that contains this event: its own
and, for an event that arrives late, those of the later events within one window length. A
detection that reports each crossing window gets the same set of decisions whatever the order
the events arrive in (the decision of a window is the same whichever of its events completes
it).

Lateness. Members are kept for `window + LATENESS` of event time (`block.LATENESS`), and the
TTL is the same span after the last write, so an event as late as the delivery path allows
(hours after its window, far beyond twice its length) is still judged on its full window.

Bounded. Unbounded, the item grows with the key's event rate, up to DynamoDB's 400 KB item limit,
after which every update fails. Two bounds keep it well below, whatever the rate:
- Eviction: past `keep[set]` members, `prune` drops a set's oldest in the same batched prune
  that drops stale ones, so the item holds the key's most recent events.
- A hard limit inside the update (`StateUpdate.limits`): should prunes fall behind (concurrent
  writers, a failed prune, an item grown before these bounds), the store refuses the update
  once a set holds `limits[set]`, in the same atomic write, and returns the item as it is. The
  event is still read, on what is held plus its own members, so its own window is judged as
  before; only later windows do not see it.
Why evict the oldest rather than stop adding at the cap: a frozen set would keep events from the
start of a busy spell and, a window on, no window would contain them. A window whose events the
bounds may have cut is marked `capped`: it may count fewer members than were reached, never
more. One event stores at most `stored_per_event[set]` members (its own window counts them all).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from ssm_detect.state import members
from ssm_detect.state.base import StatePrune, StateSnapshot, StateUpdate
from ssm_detect.state.block import LATENESS, Block, StateKey

EVENTS, MEMBERS, UNKNOWN = "events", "members", "unknown"
NOTE_CHARS = 64
# Pruning waits until enough members are stale to be worth a second call. A prune names the
# members it deletes; bounding them bounds the request (an oversized item shrinks over a few
# events instead of in one oversized request).
PRUNE_AT = 32
MAX_PRUNED_PER_SET = 1_000


@dataclass(frozen=True)
class Contribution:
    """One event's part of a window."""

    epoch: int
    event_id: str
    members: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    """Reaches of unknown size (each a short description)."""
    origin: str = ""
    """Where the event happened (its region), kept so a finding can link each event."""
    note: str = ""
    """One short fact about the event a finding names (cut to NOTE_CHARS): kept with the event,
    so a window decided by a later-arriving event still names it."""


@dataclass(frozen=True, order=True)
class EventRef:
    epoch: int
    event_id: str
    origin: str = field(default="", compare=False)
    note: str = field(default="", compare=False)


@dataclass(frozen=True)
class Window:
    start: int
    end: EventRef
    """The event that closes the window."""
    events: tuple[EventRef, ...]
    """The window's events, in (time, id) order."""
    members: tuple[str, ...]
    """Distinct members, in the order the window's events named them."""
    member_events: Mapping[str, EventRef]
    """Member -> the first event of the window that named it."""
    unknown: tuple[str, ...]
    capped: bool
    """The item's bounds may have cut this window's events (counts may be low, never high)."""


@dataclass(frozen=True)
class SetNames:
    """The three sets' attribute names (a detection may keep the names its deployed items use)."""

    events: str = EVENTS
    members: str = MEMBERS
    unknown: str = UNKNOWN


@dataclass(frozen=True)
class Bounds:
    keep: Mapping[str, int]
    """Logical set (EVENTS, MEMBERS, UNKNOWN) -> members kept after a prune."""
    limits: Mapping[str, int]
    """Logical set -> count at which the store refuses an update."""
    stored_per_event: Mapping[str, int]
    """MEMBERS / UNKNOWN -> most members one event stores."""


DEFAULT_BOUNDS = Bounds(
    keep={EVENTS: 1_000, MEMBERS: 1_000, UNKNOWN: 64},
    limits={EVENTS: 1_250, MEMBERS: 1_250, UNKNOWN: 125},
    stored_per_event={MEMBERS: 100, UNKNOWN: 10},
)


class DistinctInWindow(Block[Contribution, tuple[Window, ...]]):
    def __init__(
        self,
        window: timedelta,
        *,
        bounds: Bounds = DEFAULT_BOUNDS,
        names: SetNames = SetNames(),
    ) -> None:
        self.window = window
        self.bounds = bounds
        self.names = names
        self._attr = {EVENTS: names.events, MEMBERS: names.members, UNKNOWN: names.unknown}

    @property
    def retention(self) -> timedelta:
        return self.window + LATENESS

    def update(self, key: StateKey, observation: Contribution) -> StateUpdate:
        own = self._own(observation, stored=True)
        return StateUpdate(
            key=str(key),
            add={self._attr[name]: held for name, held in own.items() if held},
            retention=self.retention,
            limits={self._attr[name]: limit for name, limit in self.bounds.limits.items()},
        )

    def read(self, observation: Contribution, snapshot: StateSnapshot) -> tuple[Window, ...]:
        """Every window containing this event, earliest end first."""
        own = self._own(observation, stored=False)
        held = {name: snapshot.get(self._attr[name], frozenset()) | own[name] for name in own}
        refused = not own[EVENTS] <= snapshot.get(self._attr[EVENTS], frozenset())
        length = int(self.window.total_seconds())
        events = [_event_ref(m) for m in members.decode_all(held[EVENTS])]
        reached = [_by_event(m) for m in members.decode_all(held[MEMBERS])]
        unknown = [_by_event(m) for m in members.decode_all(held[UNKNOWN])]
        me = EventRef(
            observation.epoch,
            observation.event_id,
            observation.origin,
            observation.note[:NOTE_CHARS],
        )
        closing = sorted({me} | {e for e in events if me < e and e.epoch <= me.epoch + length})
        origin = {(e.epoch, e.event_id): e for e in events}
        windows = []
        for end in closing:
            start = end.epoch - length

            def inside(ref: tuple[int, str], start: int = start, end: EventRef = end) -> bool:
                return start <= ref[0] and ref <= (end.epoch, end.event_id)

            first_by_member: dict[str, EventRef] = {}
            for ref, value in reached:
                if inside(ref) and value not in first_by_member:
                    first_by_member[value] = origin.get(ref, EventRef(*ref))
            windows.append(
                Window(
                    start=start,
                    end=end,
                    events=tuple(e for e in events if inside((e.epoch, e.event_id))),
                    members=tuple(first_by_member),
                    member_events=first_by_member,
                    unknown=tuple(dict.fromkeys(v for ref, v in unknown if inside(ref))),
                    capped=refused or self._evicted_into(snapshot, start),
                )
            )
        return tuple(windows)

    def prune(
        self, key: StateKey, observation: Contribution, snapshot: StateSnapshot
    ) -> StatePrune | None:
        # The event's own time counts: a refused update left it out of `snapshot`, and an item
        # held at its limit must still age.
        newest = max(
            (members.decode(m)[0] for m in snapshot.get(self._attr[EVENTS], ())),
            default=observation.epoch,
        )
        horizon = max(newest, observation.epoch) - int(self.retention.total_seconds())
        remove = {}
        for name, attr in self._attr.items():
            held = snapshot.get(attr, frozenset())
            stale = members.stale(held, horizon)
            kept = sorted(held - stale)  # member order is time order
            excess = len(kept) - self.bounds.keep.get(name, len(kept))
            dropped = sorted(stale | frozenset(kept[:excess] if excess > 0 else ()))
            remove[attr] = frozenset(dropped[:MAX_PRUNED_PER_SET])
        if sum(len(v) for v in remove.values()) < PRUNE_AT:
            return None
        return StatePrune(key=str(key), remove={k: v for k, v in remove.items() if v})

    def _own(self, observation: Contribution, *, stored: bool) -> dict[str, frozenset[str]]:
        """The members this event adds, every set present (possibly empty); with `stored`, at
        most `stored_per_event` of a set (the first, in the event's own order)."""
        reached, unknown = observation.members, observation.unknown
        if stored:
            reached = reached[: self.bounds.stored_per_event.get(MEMBERS, len(reached))]
            unknown = unknown[: self.bounds.stored_per_event.get(UNKNOWN, len(unknown))]
        epoch, event = observation.epoch, members.event_field(observation.event_id)
        origin = f"|{observation.origin}" if observation.origin or observation.note else ""
        if observation.note:
            origin += "|" + members.event_field(observation.note[:NOTE_CHARS])
        return {
            EVENTS: frozenset({members.encode(epoch, event + origin)}),
            MEMBERS: frozenset(members.encode(epoch, f"{event}|{m}") for m in reached),
            UNKNOWN: frozenset(members.encode(epoch, f"{event}|{u}") for u in unknown),
        }

    def _evicted_into(self, snapshot: StateSnapshot, start: int) -> bool:
        """A set at its eviction bound whose oldest member is inside the window: eviction may
        have dropped some of the window's members."""
        for name, keep in self.bounds.keep.items():
            held = snapshot.get(self._attr[name], frozenset())
            if len(held) >= keep and members.decode(min(held))[0] >= start:
                return True
        return False


def _event_ref(member: tuple[int, str]) -> EventRef:
    """`(epoch, "<event id>|<origin>|<note>")`; members written before origins or notes were
    kept have none."""
    event, _, rest = member[1].partition("|")
    origin, _, note = rest.partition("|")
    return EventRef(member[0], members.event_id_of(event), origin, members.event_id_of(note))


def _by_event(member: tuple[int, str]) -> tuple[tuple[int, str], str]:
    """`(epoch, "<event id>|<value>")` -> `((epoch, event id), value)`."""
    epoch, rest = member
    event, _, value = rest.partition("|")
    return (epoch, members.event_id_of(event)), value
