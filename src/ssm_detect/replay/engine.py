"""Replay: read every input, keep the SSM events, order them by event time, detect.

Ordering needs every SSM event before the first is processed, so those (about 1% of a typical
trail) are held in memory; every other record is parsed, counted and dropped as it is read.
A CloudTrail eventID seen twice (overlapping exports, CloudTrail's own duplicates) is processed
once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ssm_detect.delivery import Dispatcher
from ssm_detect.findings import Finding
from ssm_detect.ingest import BadEvent
from ssm_detect.pipeline import Pipeline
from ssm_detect.processing import Summary, parse_payload, run_events
from ssm_detect.replay.sources import Payload, input_files, read_payloads
from ssm_detect.ssm_event import SsmEvent


@dataclass
class ReplayTelemetry:
    """Collects bad input with the file and line it came from."""

    problems: list[str] = field(default_factory=list)
    origin: str = ""
    max_listed: int = 1000

    def bad_event(self, bad: BadEvent) -> None:
        if len(self.problems) < self.max_listed:
            self.problems.append(f"{self.origin}: event {bad.event_id}: {bad.reason}")

    def event_context(self, event_id: str) -> None:
        del event_id


@dataclass
class ReplayResult:
    summary: Summary
    findings: list[Finding]
    """One per open finding (suppression window), with its final count."""
    notifications: list[Finding]
    """What would have been notified (SNS) live: the firing that opened each window."""
    problems: list[str]
    files: int


def replay(
    paths: Iterable[Path],
    pipeline: Pipeline,
    dispatcher: Dispatcher,
    on_file: Callable[[Path], None] | None = None,
) -> ReplayResult:
    summary = Summary()
    telemetry = ReplayTelemetry()
    unique: dict[str, SsmEvent] = {}
    files = 0
    for path in input_files(paths):
        files += 1
        if on_file:
            on_file(path)
        for item in read_payloads(path):
            if isinstance(item, Payload):
                telemetry.origin = item.origin
                events = parse_payload(
                    item.body, pipeline.settings.principal_keying, summary, telemetry
                )
                for event in events:
                    if event.event_id in unique:
                        summary.duplicates += 1
                    else:
                        unique[event.event_id] = event
            else:
                telemetry.origin, bad = item
                summary.bad_events += 1
                telemetry.bad_event(bad)
    ordered = sorted(unique.values(), key=lambda e: (e.record.event_time, e.event_id))
    report = run_events(ordered, pipeline, dispatcher, summary, telemetry)
    return ReplayResult(summary, report.recorded, report.notified, telemetry.problems, files)
