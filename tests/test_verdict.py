"""The verdict constructors: each says once where a finding's ids and times come from."""

from __future__ import annotations

from datetime import timedelta

from detections.base import Verdict
from detections.evidence import Actor, window_events
from ssm_detect.findings import Severity
from ssm_detect.models.event_time import to_epoch
from ssm_detect.state.correlate import Mention, Pair, Side
from ssm_detect.state.distinct_window import EventRef, Window
from tests.builders import T0, parse, send_command

START = to_epoch(T0)


def _window(*events: EventRef) -> Window:
    """A window closed by its last event (events given in time order)."""
    return Window(
        start=START,
        end=events[-1],
        events=events,
        members=(),
        member_events={},
        unknown=(),
        capped=False,
    )


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


def test_verdict_of_window_is_decided_by_its_closing_event_not_the_late_one() -> None:
    # GIVEN a window of three calls, the last closing it
    window = _window(EventRef(START, "a"), EventRef(START + 60, "b"), EventRef(START + 600, "c"))

    # WHEN a verdict is built from it
    verdict = Verdict.of_window(
        window, summary="s", severity=Severity.HIGH, severity_reasons=(), resources=(), context={}
    )

    # THEN its ids and times are the window's
    assert verdict.decisive_event_id == "c"
    assert verdict.event_ids == ("a", "b", "c")
    assert verdict.first_seen == T0
    assert verdict.last_seen == T0 + timedelta(minutes=10)


def test_window_events_lists_the_last_ones_each_in_its_own_region() -> None:
    # GIVEN a window whose first call kept its region and whose others kept none
    event = parse(send_command(event_id="c"))
    window = _window(
        EventRef(START, "a", origin="eu-west-1"),
        EventRef(START + 60, "b"),
        EventRef(START + 120, "c"),
    )

    # WHEN its contributing events are listed, at most two
    listed = window_events(event, window, 2)

    # THEN the last two, in the deciding event's region and account when they kept none
    assert [e["event_id"] for e in listed] == ["b", "c"]
    assert {e["region"] for e in listed} == {event.record.aws_region}
    assert {e["account_id"] for e in listed} == {event.account_id}
    assert window_events(event, window, 3)[0]["region"] == "eu-west-1"


def test_verdict_of_pair_is_decided_by_its_second_half_and_spans_both() -> None:
    # GIVEN a pair whose second half came 30 minutes after the first
    pair = Pair(Mention(START, "created", Side.FIRST), Mention(START + 1800, "ran", Side.SECOND))
    executor = Actor.of(parse(send_command(event_id="ran")))

    # WHEN a verdict is built from it
    verdict = Verdict.of_pair(
        pair,
        summary="s",
        severity=Severity.HIGH,
        severity_reasons=(),
        resources=(),
        context={},
        subject=executor,
    )

    # THEN its ids and times are both halves', in order, and the subject is the one named
    assert verdict.decisive_event_id == "ran"
    assert verdict.event_ids == ("created", "ran")
    assert (verdict.first_seen, verdict.last_seen) == (T0, T0 + timedelta(minutes=30))
    assert verdict.subject == executor
    assert verdict.api_call is None
