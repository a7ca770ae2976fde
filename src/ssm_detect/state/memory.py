"""An in-memory state store for replays and tests; same semantics as DynamoDB's."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Mapping

from ssm_detect.state.base import StatePrune, StateSnapshot, StateUpdate


class MemoryStateStore:
    def __init__(self) -> None:
        self._items: defaultdict[str, defaultdict[str, set[str]]] = defaultdict(
            lambda: defaultdict(set)
        )
        self._lock = threading.Lock()

    def apply(self, update: StateUpdate) -> StateSnapshot:
        with self._lock:
            item = self._items[update.key]
            if not _refused(item, update.limits):
                for name, added in update.add.items():
                    item[name].update(added)
            return {name: frozenset(held) for name, held in item.items() if held}

    def prune(self, prune: StatePrune) -> None:
        with self._lock:
            item = self._items.get(prune.key)
            if item is None:
                return
            for name, removed in prune.remove.items():
                item[name].difference_update(removed)


def _refused(item: Mapping[str, set[str]], limits: Mapping[str, int]) -> bool:
    """A limited set already holds its limit: the update writes nothing (base.StateUpdate)."""
    return any(len(item.get(name, ())) >= limit for name, limit in limits.items())
