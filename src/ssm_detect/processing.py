"""Payloads through parse, pipeline and sinks: the loop both entry points share.

The difference the Lambda relies on: bad input is reported and skipped (never raised), while
state and sink errors propagate, so Lambda retries the event and, after its retries, sends it
to the dead-letter destination.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from ssm_detect.delivery import DeliveryReport, Dispatcher
from ssm_detect.findings import Finding
from ssm_detect.ingest import BadEvent, Ignored, records_in, to_event
from ssm_detect.pipeline import Pipeline
from ssm_detect.principal import PrincipalKeying
from ssm_detect.ssm_event import SsmEvent


class Telemetry(Protocol):
    def bad_event(self, bad: BadEvent) -> None: ...

    def event_context(self, event_id: str) -> None:
        """Called before each event is processed (sets the log correlation id)."""
        ...


@dataclass
class Summary:
    events_seen: int = 0
    ssm_events: int = 0
    ignored: int = 0
    bad_events: int = 0
    duplicates: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    notified: int = 0
    suppressed: int = 0
    allowlisted: Counter[str] = field(default_factory=Counter)
    bad_reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "events_seen": self.events_seen,
            "ssm_events": self.ssm_events,
            "ignored": self.ignored,
            "bad_events": self.bad_events,
            "duplicates": self.duplicates,
            "findings": dict(self.findings),
            "notified": self.notified,
            "suppressed": self.suppressed,
            "allowlisted": dict(self.allowlisted),
        }


def parse_payload(
    payload: object, keying: PrincipalKeying, summary: Summary, telemetry: Telemetry
) -> Iterator[SsmEvent]:
    """The SSM events in a payload; counts what is ignored and reports what is bad."""
    for raw in records_in(payload):
        summary.events_seen += 1
        parsed = raw if isinstance(raw, BadEvent | Ignored) else to_event(raw, keying)
        if isinstance(parsed, Ignored):
            summary.ignored += 1
        elif isinstance(parsed, BadEvent):
            summary.bad_events += 1
            telemetry.bad_event(parsed)
        else:
            yield parsed


def run_events(
    events: Iterable[SsmEvent],
    pipeline: Pipeline,
    dispatcher: Dispatcher,
    summary: Summary,
    telemetry: Telemetry,
    *,
    invocation: str = "",
) -> DeliveryReport:
    """Detect on each event, then deliver the findings (errors propagate)."""
    produced: list[list[Finding]] = []
    for event in events:
        telemetry.event_context(event.event_id)
        summary.ssm_events += 1
        outcome = pipeline.process(event)
        summary.allowlisted.update(outcome.allowlisted)
        summary.findings.update(f.detection_id for f in outcome.findings)
        if outcome.findings:
            produced.append(outcome.findings)  # one event's findings: one notification
    report = (
        dispatcher.deliver_events(produced, invocation=invocation) if produced else DeliveryReport()
    )
    summary.notified += len(report.notified)
    summary.suppressed += report.suppressed
    return report


def process_payload(
    payload: object,
    pipeline: Pipeline,
    dispatcher: Dispatcher,
    telemetry: Telemetry,
    *,
    invocation: str = "",
) -> Summary:
    """One Lambda invocation's payload, in the order it arrived. `invocation` is Lambda's
    request id (the same on Lambda's retries of this invocation)."""
    summary = Summary()
    events = parse_payload(payload, pipeline.settings.principal_keying, summary, telemetry)
    run_events(events, pipeline, dispatcher, summary, telemetry, invocation=invocation)
    return summary
