"""Event-time order over any number of SSM events, in bounded memory (an external merge sort).

Ordering needs every event before the first can be processed: the last file read may hold the
earliest event. Only SSM records (about 1% of a trail) are kept, each as its compact JSON text
with a (time, eventID) key, not as parsed models. When what is held passes a byte budget, it
is sorted and written to a temporary file (a *run*); at the end the runs and what is still held
are merged with `heapq.merge`, which reads one event per run at a time. Memory is the budget
plus one buffered line per run; disk is the SSM records' size.

Sorting on (time, eventID) puts copies of one event next to each other, so duplicates are
dropped with O(1) memory during the merge. Both the sort and the merge are stable, so the copy
read first is the one kept.
"""

from __future__ import annotations

import heapq
import json
import tempfile
from collections.abc import Iterator
from typing import IO, NamedTuple

DEFAULT_MAX_HELD_BYTES = 64 * 1024 * 1024
# Per held event beyond its text: the tuple, the int, the strings' headers. Measured roughly
# with sys.getsizeof; it only has to keep the budget honest, not exact.
_OVERHEAD_BYTES = 250


class HeldEvent(NamedTuple):
    time: int
    """Microseconds since the epoch (CloudTrail's eventTime)."""
    event_id: str
    origin: str
    """Where it was read, for reports: `file:12`, `file:Records[3]`."""
    body: str
    """The record as compact JSON (so without a raw tab or newline); parsed into an SsmEvent
    only when its turn comes."""


def _order(event: HeldEvent) -> tuple[int, str]:
    return event.time, event.event_id


class EventSorter:
    """Collects events in any order; yields each (time, eventID) once, in order."""

    def __init__(self, max_held_bytes: int = DEFAULT_MAX_HELD_BYTES) -> None:
        self._max_held_bytes = max_held_bytes
        self._held: list[HeldEvent] = []
        self._held_bytes = 0
        self._runs: list[IO[str]] = []
        self.added = 0
        self.runs_written = 0
        """Sorted runs that went to disk: 0 unless the budget was exceeded."""
        self.duplicates = 0
        """Copies dropped by `unique_in_order` (known once it has been consumed)."""

    def add(self, event: HeldEvent) -> None:
        self._held.append(event)
        self.added += 1
        self._held_bytes += len(event.body) + len(event.origin) + _OVERHEAD_BYTES
        if self._held_bytes > self._max_held_bytes:
            self._spill()

    def unique_in_order(self) -> Iterator[HeldEvent]:
        """Every event once, by (time, eventID); consumes the sorter."""
        self._held.sort(key=_order)
        # Runs in the order they were written, then what is held: ties go to the earlier read.
        sources = [*(_read_run(run) for run in self._runs), _drain(self._held)]
        previous: tuple[int, str] | None = None
        try:
            for event in heapq.merge(*sources, key=_order):
                key = _order(event)
                if key == previous:
                    self.duplicates += 1
                    continue
                previous = key
                yield event
        finally:
            self.close()

    def take(self) -> list[HeldEvent]:
        """Everything added, in the order added, when nothing went to disk; consumes the
        sorter. For a worker's one file, whose events are sorted where they are merged."""
        if self._runs:
            raise RuntimeError("events were spilled to disk: merge them with unique_in_order")
        held, self._held = self._held, []
        return held

    def close(self) -> None:
        """Delete the runs (temporary files are also deleted if the process dies)."""
        for run in self._runs:
            run.close()
        self._runs = []
        self._held = []

    def _spill(self) -> None:
        self._held.sort(key=_order)
        # Unnamed temporary file: removed by the OS on close or exit, never left behind.
        run = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - closed in close()
        run.writelines(_run_line(event) for event in self._held)
        run.seek(0)
        self._runs.append(run)
        self.runs_written += 1
        self._held = []
        self._held_bytes = 0


def _drain(held: list[HeldEvent]) -> Iterator[HeldEvent]:
    """The sorted list's events in order, each let go as it is handed on: while the detections
    run, their state and the ledger grow as the held events shrink (the peak at 10M records
    was the two together)."""
    held.reverse()  # equal keys keep their order: they come off the end in the order added
    while held:
        yield held.pop()


def _run_line(event: HeldEvent) -> str:
    """The key and origin as a small JSON array, a tab, then the body as it is: compact JSON
    has no raw tab or newline, so the body needs no second escaping (it is most of the line)."""
    header = json.dumps([event.time, event.event_id, event.origin], separators=(",", ":"))
    return f"{header}\t{event.body}\n"


def _read_run(run: IO[str]) -> Iterator[HeldEvent]:
    for line in run:
        header, body = line.rstrip("\n").split("\t", 1)
        time, event_id, origin = json.loads(header)
        yield HeldEvent(time, event_id, origin, body)
