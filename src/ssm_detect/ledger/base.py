"""What the ledger promises.

A suppression window is a fixed slice of *event time*: for a window length L, the window of a
firing decided by an event at time t is [t - t mod L, t - t mod L + L), aligned on the Unix
epoch (60 minutes: each clock hour, UTC). One ledger item per (detection, account, principal,
window) holds the window's firings (the decisive event of each, a set: a redelivery changes
nothing), so which window a firing belongs to, and the window's finding id, depend only on the
events, never on the order in which they arrive.

The item also holds, per notifying sink, the highest severity it has notified for the window:
a firing notifies only if its severity is higher (the first firing, or an escalation), so each
level is notified at most once. Before a sink sends, the sender takes a *send lease* on
(window, sink): one conditional write that succeeds only if the sink has not notified this
level or a higher one and no other live invocation holds the lease. The holder sends, then
records the level (which drops the lease) or, on failure, releases it. A lease outlives the
function's timeout, so a crashed holder blocks others only until it expires; Lambda's retry of
the same invocation (same request id, the same owner) takes it back at once.

Two more things make Security Hub's record of the window independent of arrival order:
- a *clock* per window (milliseconds; the wall clock, but strictly increasing per window:
  `max(now, previous + 1)`), advanced by every claim: the record's `UpdatedAt`. A claim's view
  of the window (its members, hence count, event ids, first and last seen) is the window as of
  that claim, so the import with the newest `UpdatedAt` holds every firing claimed before it;
- a *lead*: the firing the record describes, chosen by a total order over firings (highest
  severity, then earliest event, then event id), not by arrival. The lead is kept in the item,
  so a claim that does not lead still imports the lead's description with the new counts.

Items live `RETENTION` past their last claim: as long as a redelivery of an event can come (see
`REDELIVERY_BOUND`), its firing is recognised and not notified again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from typing import Protocol, runtime_checkable

# How late a redelivery of an event can reach the detector after the event was first handled:
# EventBridge retries handing an event to Lambda for up to 24 h (the template sets 1 h), Lambda
# keeps a failed or throttled async event for up to 6 h (the template sets 1 h, two retries),
# then both send it to a failure queue that keeps it 14 days, from where it is redriven by hand.
REDELIVERY_BOUND = timedelta(days=14) + timedelta(hours=24) + timedelta(hours=6)
# A window's item outlives its last claim by more than that bound (DynamoDB's TTL deletes an
# item after its expiry time, never before).
RETENTION = timedelta(days=16)


@dataclass(frozen=True)
class WindowClaim:
    key: str
    """`ledger#<detection>#<account>#<principal>#<window start epoch>`."""
    window_id: str
    """The window's finding id (a function of detection, account, principal and window)."""
    member: str
    """`"<epoch>|<decisive event id>"` of the firing."""
    lead_rank: str
    """The firing's place in the lead order: the smallest string leads the window."""
    lead: bytes
    """The firing, serialised: kept as the window's lead if it leads."""
    now_ms: int
    """Wall clock (milliseconds): the record's CreatedAt and clock, the item's expiry."""
    related: frozenset[str] = frozenset()
    """The windows of the other findings the firing's event decided (RelatedFindings)."""


@dataclass(frozen=True)
class LedgerEntry:
    window_id: str
    members: frozenset[str]
    notified: dict[str, int] = field(default_factory=dict)
    """Per sink, the highest severity rank it has notified for the window."""
    created_ms: int = 0
    clock_ms: int = 0
    """The window's clock after this claim: Security Hub's UpdatedAt."""
    lead_rank: str = ""
    lead: bytes = b""
    overflow: int = 0
    """Firings counted past the member cap (see the DynamoDB ledger)."""
    related: frozenset[str] = frozenset()
    """Every window related to any firing of this one: the record's RelatedFindings, the same
    whichever event decided the related finding (arrival order can move it between events)."""

    @property
    def count(self) -> int:
        return max(len(self.members), 1) + self.overflow


class SendState(Enum):
    TAKEN = "taken"
    """The caller holds the lease: send, then `mark_sent` (or `release` on failure)."""
    SENT = "sent"
    """The sink has notified this level (or a higher one) for this window already."""
    HELD = "held"
    """Another invocation holds the lease and may be sending right now."""


@dataclass(frozen=True)
class SendLease:
    key: str
    sink: str
    level: int
    """The severity rank to notify."""
    owner: str
    """The invocation taking the lease (Lambda's request id, which its retries share)."""
    now_ms: int
    until_ms: int


@dataclass(frozen=True)
class Mark:
    key: str
    sink: str
    level: int


@dataclass(frozen=True)
class SendOutcome:
    state: SendState
    previous: int | None = None
    """The highest level the sink had notified for the window before (None: nothing)."""


class FindingLedger(Protocol):
    def claim(self, claim: WindowClaim) -> LedgerEntry:
        """Add the firing to its window (creating the window's item if needed), advance the
        window's clock, and make the firing the lead if it outranks the lead held."""
        ...

    def begin_send(self, lease: SendLease) -> SendOutcome:
        """Take the lease to notify `lease.level` through `lease.sink`."""
        ...

    def mark_sent(self, key: str, sink: str, level: int) -> None:
        """Record that `sink` notified `level` for the window, and drop the sink's lease."""
        ...

    def mark_all_sent(self, marks: Sequence[Mark]) -> None:
        """`mark_sent` for every window one notification carried, in one all-or-nothing step
        (so a failure after the publish cannot leave some of them unrecorded)."""
        ...

    def release(self, lease: SendLease) -> None:
        """Give the lease back after a failed send, if `lease.owner` still holds it."""
        ...


@runtime_checkable
class ForgetsWindows(Protocol):
    """A ledger without a clock of its own (the embedded one), told by a replay, whose clock is
    its event time, when windows have aged out."""

    def forget_windows_before(self, start: int) -> int:
        """Drop the windows that started before `start` (epoch seconds); returns how many."""
        ...
