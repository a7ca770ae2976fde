"""State round trips per event, by event name: what each detection's block costs per call.

    .venv/bin/python tools/state_calls.py events/

Each event file (an EventBridge envelope or a bare record) goes through a fresh local pipeline
(in-memory state, default settings), alone, and the store's atomic updates are counted; the
mean per event name is printed. Alone means no given events: a run of a document nobody
flagged still costs its chain's write, a creation its first-seen writes. Set `PYTHONPATH` to
another checkout's `src` to count what that code costs on the same files.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from ssm_detect.ingest import to_event
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent
from ssm_detect.state.base import StateSnapshot, StateUpdate
from ssm_detect.state.memory import MemoryStateStore
from ssm_detect.wiring import local_pipeline


class CountingStore(MemoryStateStore):
    def __init__(self) -> None:
        super().__init__()
        self.updates = 0

    def apply(self, update: StateUpdate) -> StateSnapshot:
        self.updates += 1
        return super().apply(update)


def updates_per_event(folder: Path) -> dict[str, list[int]]:
    settings = Settings()
    counted: dict[str, list[int]] = defaultdict(list)
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        record = data.get("detail", data) if isinstance(data, dict) else None
        if not isinstance(record, dict):
            continue
        event = to_event(record, settings.principal_keying)
        if not isinstance(event, SsmEvent):
            continue  # not SSM, or bad input (the handler counts those)
        store = CountingStore()
        local_pipeline(settings, store).process(event)
        counted[event.record.event_name].append(store.updates)
    return counted


def main(argv: list[str]) -> int:
    folder = Path(argv[1] if len(argv) > 1 else "events")
    for name, updates in sorted(updates_per_event(folder).items()):
        mean = sum(updates) / len(updates)
        sys.stdout.write(f"{name:32s} files={len(updates):3d} state_updates_per_event={mean:.2f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
