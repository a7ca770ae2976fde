"""AWS.SSM.SessionAfterLoggingTampering: a preferences change that stops logging, then a session
by the same principal in the same account and region, whichever arrives first."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from detections.base import Verdict
from detections.session_after_logging_tampering import (
    TAMPERING_DETECTIONS,
    SessionAfterLoggingTamperingDetection,
)
from ssm_detect.findings import Finding, Severity
from ssm_detect.settings import Settings
from ssm_detect.state.correlate import Side
from tests.builders import T0, Runner, iso, load_record, minutes, parse

CHANGE = "logging_tamper_1_preferences_logging_off.json"
SESSION = "logging_tamper_2_session_same_principal.json"
OTHER = "logging_tamper_session_other_principal.json"


def at(name: str, moment: datetime, event_id: str, region: str = "us-west-2") -> dict[str, Any]:
    record = load_record(name)
    record["eventTime"] = iso(moment)
    record["eventID"] = event_id
    record["awsRegion"] = region
    return record


def run(records: list[dict[str, Any]]) -> list[list[Finding]]:
    runner = Runner(None, [SessionAfterLoggingTamperingDetection()])
    return [runner.process(r) for r in records]


def test_tampering_then_session_is_critical_with_both_actors() -> None:
    results = run([at(CHANGE, T0, "c1"), at(SESSION, T0 + minutes(30), "s1")])

    assert results[0] == []
    (finding,) = results[1]
    assert finding.severity is Severity.CRITICAL
    assert finding.event_ids == ("c1", "s1")
    assert set(finding.context["actors"]) == {"tamperer", "session"}
    assert [e["event_id"] for e in finding.context["contributing_events"]] == ["c1", "s1"]


def test_tampering_found_whichever_arrives_first() -> None:
    in_order = run([at(CHANGE, T0, "c1"), at(SESSION, T0 + minutes(30), "s1")])[1]
    late = run([at(SESSION, T0 + minutes(30), "s1"), at(CHANGE, T0, "c1")])

    assert late[0] == []
    assert [f.id for f in late[1]] == [f.id for f in in_order]


@pytest.mark.parametrize(
    ("session", "delay", "region"),
    [
        (OTHER, minutes(30), "us-west-2"),  # another principal
        (SESSION, minutes(30), "eu-west-1"),  # another region's preferences
        (SESSION, timedelta(hours=25), "us-west-2"),  # outside the 24 h chain window
        (SESSION, -minutes(5), "us-west-2"),  # a session before the change
    ],
)
def test_tampering_no_chain(session: str, delay: timedelta, region: str) -> None:
    results = run([at(CHANGE, T0, "c1"), at(session, T0 + delay, "s1", region)])

    assert results == [[], []]


def test_tampering_visible_change_that_keeps_logging_is_no_first_half() -> None:
    change = at(CHANGE, T0, "c1")
    content = json.loads(change["requestParameters"]["content"])
    content["inputs"]["s3BucketName"] = "session-logs-111122223333"
    change["requestParameters"]["content"] = json.dumps(content)

    assert run([change, at(SESSION, T0 + minutes(30), "s1")]) == [[], []]


def test_tampering_hidden_change_is_high_not_critical() -> None:
    change = at(CHANGE, T0, "c1")
    change["requestParameters"]["content"] = "HIDDEN_DUE_TO_SECURITY_REASONS"

    (finding,) = run([change, at(SESSION, T0 + minutes(30), "s1")])[1]

    assert finding.severity is Severity.HIGH


def test_tampering_verdict_of_the_logging_detection_is_a_first_half() -> None:
    """Issue 12's detection, earlier in the registry, marks any event it judges as tampering."""
    detection = SessionAfterLoggingTamperingDetection()
    record = load_record("session_shell_operator.json")  # any event: the prior decides
    prior = {TAMPERING_DETECTIONS[0]: Verdict("x", "e", ("e",), T0, T0, Severity.HIGH)}

    observed = detection.observe(parse(record), Settings(), prior)

    assert observed is not None
    assert observed.observation.side is Side.FIRST
    assert observed.observation.data["logging"] == "off"
