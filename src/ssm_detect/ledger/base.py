"""What the ledger promises.

A suppression window opens at the first firing for a (detection, account, principal) and lasts
the configured length. Every later firing whose event time is within one window length of the
anchor *joins* it: its decisive event is added (a set union: re-delivery changes nothing) and
it updates the open finding instead of creating another. Only the firing that opened the
window sends a notification, and the ledger remembers which sinks have delivered it, so a
retried invocation re-sends exactly what did not get through.

Both operations are single conditional writes; a lost race to open a window turns into a join.

Two invocations can both hold the opening firing: EventBridge delivers an event twice at the
same moment, or two overlapping fan-out calls decide the same window. Before a sink sends the
notification, the sender takes a *send lease* on (window, sink): one conditional write that
succeeds only if the sink has not delivered it and no other live invocation holds the lease.
The holder sends, then records the delivery (which drops the lease) or, on failure, releases
it. A lease outlives the function's timeout, so a crashed holder blocks others only until it
expires; Lambda's retry of the same invocation (same request id, the same owner) takes it
back at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Protocol


@dataclass(frozen=True)
class WindowClaim:
    key: str
    """`ledger#<detection>#<account>#<principal>`."""
    finding_id: str
    """The firing's own deterministic id; it becomes the open finding's id if it opens."""
    member: str
    """`"<epoch>|<decisive event id>"` of the firing."""
    event_epoch: int
    window: timedelta
    now_epoch: int
    """Wall clock, for the finding's CreatedAt and the item's TTL (never for decisions)."""


@dataclass(frozen=True)
class LedgerEntry:
    open_id: str
    """The id of the open finding every firing in the window updates."""
    anchor: int
    members: frozenset[str]
    sent: frozenset[str]
    """Sinks that have delivered the open finding's notification."""
    created_epoch: int
    tracked: bool = True
    """False for a firing too late for any window the ledger still holds: delivered as is."""
    overflow: int = 0
    """Firings counted past the member cap (see the DynamoDB ledger)."""

    @property
    def count(self) -> int:
        return max(len(self.members), 1) + self.overflow


class SendState(Enum):
    TAKEN = "taken"
    """The caller holds the lease: send, then `mark_sent` (or `release` on failure). Also
    returned when the window is gone (replaced by a newer one): send, nothing to record."""
    SENT = "sent"
    """The sink has delivered this window's notification already."""
    HELD = "held"
    """Another invocation holds the lease and may be sending right now."""


@dataclass(frozen=True)
class SendLease:
    key: str
    open_id: str
    sink: str
    owner: str
    """The invocation taking the lease (Lambda's request id, which its retries share)."""
    now_ms: int
    until_ms: int


class FindingLedger(Protocol):
    def claim(self, claim: WindowClaim) -> LedgerEntry:
        """Join the window that contains the firing, or open a new one."""
        ...

    def begin_send(self, lease: SendLease) -> SendState:
        """Take the lease to send the open finding's notification through `lease.sink`."""
        ...

    def mark_sent(self, key: str, open_id: str, sink: str) -> None:
        """Record that `sink` delivered the notification of the open finding `open_id`, and
        drop the sink's lease."""
        ...

    def release(self, lease: SendLease) -> None:
        """Give the lease back after a failed send, if `lease.owner` still holds it."""
        ...
