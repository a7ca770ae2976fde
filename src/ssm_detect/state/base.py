"""The state-store contract every implementation honours.

State is a set of string members per (key, attribute). The only write is an atomic union that
returns the whole item afterwards, so a detection decides on exactly what the store holds after
its own write: two concurrent invocations cannot both miss each other (each sees at least its own
write, and the later of the two sees both). A union is idempotent, so re-applying the same
CloudTrail event changes nothing. Removal (pruning) is a separate, idempotent operation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class StatePrune:
    key: str
    remove: Mapping[str, frozenset[str]]


class StateStore(Protocol):
    def apply(self, update: StateUpdate) -> StateSnapshot:
        """Atomically union `update.add` into the item and return all of its sets."""
        ...

    def prune(self, prune: StatePrune) -> None:
        """Remove members; removing absent members is not an error."""
        ...
