"""The state-store contract every implementation honours.

State is a set of string members per (key, attribute). The only write is an atomic union that
returns the whole item afterwards, so a detection decides on exactly what the store holds after
its own write: two concurrent invocations cannot both miss each other (each sees at least its own
write, and the later of the two sees both). A union is idempotent, so re-applying the same
CloudTrail event changes nothing. Removal (pruning) is a separate, idempotent operation.

An update may carry member limits: a store refuses (writes nothing of) an update to an item in
which any limited set already holds its limit, and returns the item as it is. The check and the
write are one atomic operation, so however many writers race, a limited set never holds more
than `limit - 1 +` the members one update adds: the bound that keeps a DynamoDB item under its
400 KB whatever a principal's call rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

StateSnapshot = Mapping[str, frozenset[str]]
"""Attribute name -> every member it holds after the update."""


@dataclass(frozen=True)
class StateUpdate:
    key: str
    add: Mapping[str, frozenset[str]]
    retention: timedelta
    """How long the item must outlive its latest write; the store sets its TTL from it."""
    limits: Mapping[str, int] = field(default_factory=dict)
    """Attribute -> member count at which the store refuses this update (writes nothing, not
    even the TTL) and returns the item unchanged. A refused update is not an error: the caller
    sees it in the snapshot (its own members are missing) and decides what that means."""


@dataclass(frozen=True)
class StatePrune:
    key: str
    remove: Mapping[str, frozenset[str]]


class StateStore(Protocol):
    def apply(self, update: StateUpdate) -> StateSnapshot:
        """Atomically union `update.add` into the item and return all of its sets, unless a set
        named in `update.limits` already holds its limit: then write nothing and return the
        item as it is."""
        ...

    def prune(self, prune: StatePrune) -> None:
        """Remove members; removing absent members is not an error."""
        ...
