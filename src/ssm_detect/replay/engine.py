"""Replay: read every input, keep the SSM events, order them by event time, detect.

Reading streams (see sources.py): each record is looked at once, counted, and dropped unless it
is an SSM call. SSM records are held as compact JSON with their (eventTime, eventID) key, in
bounded memory (ordering.py spills sorted runs to temporary files and merges them), and parsed
into an SsmEvent only when their turn comes. A CloudTrail eventID seen twice at the same time
(overlapping exports, CloudTrail's own duplicates) is processed once.

`Intake` is shared with `seed-history`, which reads the same way and applies state only.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from ssm_detect.delivery import Dispatcher, freeze, thaw
from ssm_detect.findings import Finding
from ssm_detect.ingest import BadEvent, Ignored, event_id_of, records_in, to_event
from ssm_detect.ledger.base import RETENTION, ForgetsWindows
from ssm_detect.models.cloudtrail import SSM_EVENT_SOURCE
from ssm_detect.models.event_time import parse_event_time, to_epoch
from ssm_detect.pipeline import Pipeline
from ssm_detect.principal import PrincipalKeying
from ssm_detect.processing import Summary, run_events
from ssm_detect.replay import reader
from ssm_detect.replay.ordering import DEFAULT_MAX_HELD_BYTES, EventSorter, HeldEvent
from ssm_detect.replay.prefilter import needs_parsing
from ssm_detect.replay.progress import NoProgress, ReplayProgress
from ssm_detect.replay.sources import (
    FilteredRecords,
    RawRecord,
    RecordList,
    SourceItem,
    input_files,
    read_file,
)
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent

# Findings are handed to the ledger every this many events, so the firings waiting for delivery
# stay bounded however long the replay; the ledger carries the windows across batches.
DELIVERY_BATCH = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A record holding these is a container (S3 object, envelope) that ingest.records_in unpacks.
_CONTAINER_KEYS = frozenset({"Records", "detail", "detail-type"})
_MICROSECOND = timedelta(microseconds=1)
Window = tuple[datetime, datetime]
"""[start, end): records whose eventTime is outside are counted as ignored."""


@dataclass
class ProblemLog:
    """Bad input, one printable line each, file and position first.

    Bounded: a corrupt terabyte must not fill memory with complaints. Every problem is counted
    in the summary; the first `max_listed` are kept to be shown."""

    max_listed: int = 1000
    lines: list[str] = field(default_factory=list)
    unlisted: int = 0

    def add(self, origin: str, reason: str, event_id: str | None = None) -> None:
        if len(self.lines) >= self.max_listed:
            self.unlisted += 1
            return
        # "unknown" is ingest's placeholder when a record names no id: the position says more.
        about = f"event {event_id}: " if event_id and event_id != "unknown" else ""
        # Paths and event ids come from the input: one line each, whatever they contain.
        self.lines.append(_printable(f"{origin}: {about}{reason}"))

    def add_line(self, line: str) -> None:
        """A line another ProblemLog made (a worker's)."""
        if len(self.lines) >= self.max_listed:
            self.unlisted += 1
        else:
            self.lines.append(line)


@dataclass(frozen=True)
class FileIntake:
    """What one file contributed: counts, problems, and its SSM records for ordering."""

    summary: Summary
    problems: list[str]
    unlisted_problems: int
    held: list[HeldEvent]


class Intake:
    """Records in, counted; SSM records held for ordering; ordered SsmEvents out."""

    def __init__(
        self,
        keying: PrincipalKeying,
        *,
        max_held_bytes: int = DEFAULT_MAX_HELD_BYTES,
        problems: ProblemLog | None = None,
        window: Window | None = None,
    ) -> None:
        self.keying = keying
        self.window = window
        self._bounds = None if window is None else (_micros(window[0]), _micros(window[1]))
        self.summary = Summary()
        self.problems = problems or ProblemLog()
        self._sorter = EventSorter(max_held_bytes)

    @property
    def held(self) -> int:
        """SSM records held for ordering so far (duplicates included)."""
        return self._sorter.added

    @property
    def spilled_runs(self) -> int:
        return self._sorter.runs_written

    def add(self, items: Iterable[SourceItem]) -> None:
        for item in items:
            if isinstance(item, FilteredRecords):
                self._add_filtered(item)
            elif isinstance(item, RecordList):
                self._add_list(item)
            elif isinstance(item, RawRecord):
                self._add_record(item.body, item.origin)
            else:
                self.summary.bad_events += 1
                self.problems.add(item.origin, item.reason)

    def events(self, progress: ReplayProgress | None = None) -> Iterator[SsmEvent]:
        """The held SSM events once each, in event-time order, parsed as the Lambda parses."""
        for held in self._sorter.unique_in_order():
            if progress is not None:
                progress.advance()
            parsed = to_event(json.loads(held.body), self.keying)
            if isinstance(parsed, SsmEvent):
                yield parsed
            elif isinstance(parsed, BadEvent):
                self._bad(held.origin, parsed)
        self.summary.duplicates += self._sorter.duplicates

    def _add_list(self, records: RecordList) -> None:
        """The hot loop of a replay (every record of every S3 object): other services are
        counted and dropped on one dictionary lookup, before any position is formatted."""
        for index, body in enumerate(records.items):
            if isinstance(body, dict) and not _CONTAINER_KEYS.intersection(body):
                source = body.get("eventSource")
                if source is not None and source != SSM_EVENT_SOURCE:
                    self.summary.events_seen += 1
                    self.summary.ignored += 1
                    continue
            self._add_record(body, records.origin_of(index))

    def _add_filtered(self, records: FilteredRecords) -> None:
        """What the prefilter kept is parsed as any record is; the rest is only counted."""
        dropped = records.total - len(records.needed)
        self.summary.events_seen += dropped
        self.summary.ignored += dropped
        for index, text in records.needed:
            origin = records.origin_of(index)
            try:
                body = json.loads(text)
            except (ValueError, RecursionError) as error:
                self.summary.events_seen += 1
                self._bad(origin, BadEvent("unknown", f"not JSON: {type(error).__name__}"))
                continue
            self._add_record(body, origin)

    def merge(self, part: FileIntake) -> None:
        """One file read by a worker process (`read_inputs(jobs=...)`), in file order."""
        self.summary.events_seen += part.summary.events_seen
        self.summary.ignored += part.summary.ignored
        self.summary.bad_events += part.summary.bad_events
        for line in part.problems:
            self.problems.add_line(line)
        self.problems.unlisted += part.unlisted_problems
        for event in part.held:
            self._sorter.add(event)

    def take_file(self) -> FileIntake:
        """What this Intake read, handed back whole (a worker's Intake reads one file)."""
        return FileIntake(
            self.summary, self.problems.lines, self.problems.unlisted, self._sorter.take()
        )

    def _add_record(self, body: object, origin: str) -> None:
        if isinstance(body, dict) and not _CONTAINER_KEYS.intersection(body):
            self._add_raw(body, origin)
            return
        for raw in records_in(body):
            if isinstance(raw, dict):
                self._add_raw(raw, origin)
            else:
                self.summary.events_seen += 1
                self._ignored_or_bad(origin, raw)

    def _add_raw(self, raw: dict[str, Any], origin: str) -> None:
        self.summary.events_seen += 1
        kept = held_event(raw, origin)
        if isinstance(kept, HeldEvent) and not self._in_window(kept):
            self.summary.ignored += 1  # outside --start / --end: another replay's business
        elif isinstance(kept, HeldEvent):
            self._sorter.add(kept)
        else:
            self._ignored_or_bad(origin, kept)

    def _in_window(self, event: HeldEvent) -> bool:
        return self._bounds is None or self._bounds[0] <= event.time < self._bounds[1]

    def _ignored_or_bad(self, origin: str, outcome: BadEvent | Ignored) -> None:
        if isinstance(outcome, Ignored):
            self.summary.ignored += 1
        else:
            self._bad(origin, outcome)

    def _bad(self, origin: str, bad: BadEvent) -> None:
        self.summary.bad_events += 1
        self.problems.add(origin, bad.reason, bad.event_id)


def held_event(raw: dict[str, Any], origin: str) -> HeldEvent | BadEvent | Ignored:
    """An SSM record reduced to its sort key and text. Other services are ignored here on one
    dictionary lookup, before any model is built or id cleaned for printing: that is what
    keeps a replay close to the cost of parsing the JSON."""
    source = raw.get("eventSource")
    if source is not None and source != SSM_EVENT_SOURCE:
        return Ignored("")
    if source is None:
        return BadEvent(event_id_of(raw), "not a CloudTrail record: no eventSource")
    event_id = raw.get("eventID")
    if not isinstance(event_id, str) or not event_id:
        return BadEvent(event_id_of(raw), "no eventID")
    if "eventTime" not in raw:
        return BadEvent(event_id_of(raw), "no eventTime")
    try:
        moment = parse_event_time(raw["eventTime"])
    except ValueError as error:
        return BadEvent(event_id_of(raw), f"eventTime: {error}")
    body = json.dumps(raw, separators=(",", ":"))
    return HeldEvent(_micros(moment), event_id, origin, body)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


@dataclass
class ReplayResult:
    summary: Summary
    findings: list[Finding]
    """One per open finding (suppression window), with its final count; `summary.notified`
    counts those live processing would have notified."""
    problems: list[str]
    files: int
    unlisted_problems: int = 0
    spilled_runs: int = 0
    oldest_event: datetime | None = None
    """Event time of the earliest event read (events come in time order)."""


def read_inputs(
    paths: Iterable[Path],
    keying: PrincipalKeying,
    *,
    progress: ReplayProgress | None = None,
    max_held_bytes: int = DEFAULT_MAX_HELD_BYTES,
    jobs: int = 1,
    event_names: frozenset[str] | None = None,
    window: Window | None = None,
) -> tuple[Intake, int]:
    """Read every file under `paths` into an Intake; also returns how many files were read.

    With `jobs` > 1, files are read by that many worker processes and handed back in file
    order, so the Intake (and so the replay) is the same as with one. `event_names`: the SSM
    calls any detection reads, for the prefilter (prefilter.py); None keeps every SSM record."""
    progress = progress or NoProgress()
    files = list(input_files(paths))
    sizes = [_size(path) for path in files]
    progress.phase("reading", sum(sizes))
    intake = Intake(keying, max_held_bytes=max_held_bytes, window=window)
    if jobs > 1 and len(files) > 1:
        parts = _read_in_workers(files, keying, event_names, jobs, window)
        for part, size in zip(parts, sizes, strict=True):
            if isinstance(part, FilteredRecords):
                intake.add((part,))  # parsed here, as one process parses it
            else:
                intake.merge(part)
            progress.advance(size)
        return intake, len(files)
    needed = needs_parsing(event_names)
    for path, size in zip(files, sizes, strict=True):
        intake.add(read_file(path, needed))
        progress.advance(size)
    return intake, len(files)


def read_one_file(
    path: Path,
    keying: PrincipalKeying,
    event_names: frozenset[str] | None,
    window: Window | None = None,
) -> FileIntake:
    """One file, in a worker process: everything it holds, ready to merge."""
    # One file's SSM records: no budget (the parent's sorter has one).
    intake = Intake(keying, max_held_bytes=sys.maxsize, window=window)
    intake.add(read_file(path, needs_parsing(event_names)))
    return intake.take_file()


def _read_in_workers(
    files: list[Path],
    keying: PrincipalKeying,
    event_names: frozenset[str] | None,
    jobs: int,
    window: Window | None,
) -> Iterator[FilteredRecords | FileIntake]:
    """Each file read in a reader process (reader.py), results in file order, at most 2 per
    reader in flight (memory stays bounded however many files)."""
    with ProcessPoolExecutor(max_workers=jobs, mp_context=_reader_context()) as pool:
        waiting = iter(files)

        def submit(path: Path) -> Future[FilteredRecords | FileIntake]:
            return pool.submit(reader.read_part, path, keying.value, event_names, window)

        pending = deque(submit(path) for path in islice(waiting, 2 * jobs))
        while pending:
            part = pending.popleft().result()
            following = next(waiting, None)
            if following is not None:
                pending.append(submit(following))
            yield part


def _reader_context() -> multiprocessing.context.BaseContext:
    """How reader processes start: forked from this process when that is safe, else from a
    fork server; never each spawned as a fresh interpreter, which re-runs the `ssm-detect`
    script's imports in every reader (about a tenth of a second of CPU each, before this module
    and the CLI were made light, half a second).

    Forking is safe on Linux while this process has one thread: the pool forks its readers
    before it starts its own threads, and a reader only reads files and returns (it never
    touches what it inherited, such as an open SQLite state store, and leaves by `os._exit`).
    With another thread running (the progress bar on a terminal), a lock that thread holds at
    the fork would stay held in the child forever: the readers then come from a fork server,
    one fresh single-threaded interpreter that imports the reader module (and the script) once
    and forks each reader from itself."""
    if sys.platform == "linux" and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", reader.__name__])
    return context


def replay(
    paths: Iterable[Path],
    pipeline: Pipeline,
    dispatcher: Dispatcher,
    *,
    progress: ReplayProgress | None = None,
    max_held_bytes: int = DEFAULT_MAX_HELD_BYTES,
    on_final: Callable[[Finding], None] | None = None,
    delivery_batch: int = DELIVERY_BATCH,
    jobs: int = 1,
    event_names: frozenset[str] | None = None,
    window: Window | None = None,
) -> ReplayResult:
    """Every input through the pipeline in event-time order.

    Findings are kept until the end (`result.findings`), or, with `on_final`, handed to it as
    soon as their suppression window has closed and then forgotten, so that memory does not
    grow with the number of findings either."""
    progress = progress or NoProgress()
    intake, files = read_inputs(
        paths,
        pipeline.settings.principal_keying,
        progress=progress,
        max_held_bytes=max_held_bytes,
        jobs=jobs,
        event_names=event_names,
        window=window,
    )
    return detect(
        intake,
        files,
        pipeline,
        dispatcher,
        progress=progress,
        on_final=on_final,
        delivery_batch=delivery_batch,
    )


def detect(
    intake: Intake,
    files: int,
    pipeline: Pipeline,
    dispatcher: Dispatcher,
    *,
    progress: ReplayProgress | None = None,
    on_final: Callable[[Finding], None] | None = None,
    delivery_batch: int = DELIVERY_BATCH,
) -> ReplayResult:
    """What an Intake holds (from files, S3 or Athena) through the pipeline in time order."""
    progress = progress or NoProgress()
    progress.phase("detecting", intake.held)
    held = _OpenFindings(pipeline.settings)
    events = intake.events(progress)
    times = _EventTimes()
    kept = _ledger_keeps(pipeline)
    while True:
        # Each batch is parsed as it is detected on, never held whole: a thousand parsed
        # events would be megabytes that grow with the input until the first batch is full.
        before = times.count
        batch = times.passing(islice(events, delivery_batch))
        report = run_events(batch, pipeline, dispatcher, intake.summary, _NO_TELEMETRY)
        now = times.newest
        if times.count == before or now is None:
            break
        held.update(report.recorded)
        if isinstance(dispatcher.ledger, ForgetsWindows):
            dispatcher.ledger.forget_windows_before(to_epoch(now - kept))
        if on_final is not None:
            for finding in held.closed(now):
                on_final(finding)
    findings = held.take_all()
    if on_final is not None:
        for finding in findings:
            on_final(finding)
        findings = []
    return ReplayResult(
        summary=intake.summary,
        findings=findings,
        problems=intake.problems.lines,
        files=files,
        unlisted_problems=intake.problems.unlisted,
        spilled_runs=intake.spilled_runs,
        oldest_event=times.oldest,
    )


class _EventTimes:
    """The event times of what has passed through `passing`: the first, the latest, how many."""

    def __init__(self) -> None:
        self.count = 0
        self.oldest: datetime | None = None
        self.newest: datetime | None = None

    def passing(self, events: Iterable[SsmEvent]) -> Iterator[SsmEvent]:
        for event in events:
            self.count += 1
            self.newest = event.record.event_time
            self.oldest = self.oldest or self.newest
            yield event


def _ledger_keeps(pipeline: Pipeline) -> timedelta:
    """How far behind the latest event the embedded ledger keeps windows (it has no clock of
    its own: ledger/sqlite.py): no later event can claim a window that ended before, since
    events come in time order and a firing claims its decisive event's window, and DynamoDB's
    TTL would have deleted it by then live (ledger/base.py's RETENTION after its last claim).
    So a replay of months holds about RETENTION's worth of windows."""
    longest = max(
        (pipeline.settings.suppression_for(d.metadata.id) for d in pipeline.detections),
        default=pipeline.settings.suppression_window,
    )
    return RETENTION + longest


class _OpenFindings:
    """The replay's open findings, each held compressed (as the ledger holds a window's lead)
    until no later event can join it: a Finding object is several times its JSON, and a
    window's worth of them would grow memory with the input."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._held: dict[str, tuple[datetime, bytes]] = {}

    def update(self, recorded: Iterable[Finding]) -> None:
        """A later firing of an open finding replaces it: it carries the updated count."""
        for finding in recorded:
            closes = finding.last_seen + self._settings.suppression_for(finding.detection_id)
            self._held[finding.id] = (closes, freeze(finding))

    def closed(self, now: datetime) -> list[Finding]:
        """Findings no later event can join, forgotten here: events come in time order, and a
        firing joins an open finding only within one suppression window of its last event
        (delivery.py)."""
        done = [key for key, (closes, _) in self._held.items() if closes < now]
        return [thaw(self._held.pop(key)[1]) for key in done]

    def take_all(self) -> list[Finding]:
        findings = [thaw(frozen) for _, frozen in self._held.values()]
        self._held.clear()
        return findings


class _NoTelemetry:
    """run_events' hooks: bad input was already reported by the Intake, with its position."""

    def bad_event(self, bad: BadEvent) -> None:
        del bad

    def event_context(self, event_id: str) -> None:
        del event_id


_NO_TELEMETRY = _NoTelemetry()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # reported when it is read


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)
