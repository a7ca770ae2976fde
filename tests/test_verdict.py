"""The verdict constructors: each says once where a finding's ids and times come from."""

from __future__ import annotations

from datetime import timedelta

from detections.base import Verdict
from ssm_detect.findings import Severity
from tests.builders import T0, parse, send_command


def test_verdict_of_event_is_decided_and_timed_by_that_event() -> None:
    # GIVEN one SendCommand at a known time
    event = parse(send_command(event_id="sc-42", at=T0 + timedelta(minutes=7)))

    # WHEN a verdict is built from it alone
    verdict = Verdict.of_event(
        event, summary="ran", severity=Severity.LOW, context={"document_name": "x"}
    )

    # THEN it is the decisive and only event, first and last seen at its time
    assert verdict.decisive_event_id == "sc-42"
    assert verdict.event_ids == ("sc-42",)
    assert verdict.first_seen == verdict.last_seen == T0 + timedelta(minutes=7)
    assert (verdict.severity, verdict.severity_reasons, verdict.resources) == (
        Severity.LOW,
        (),
        (),
    )
    assert verdict.context == {"document_name": "x"}
