"""Delivery under retries: every finding reaches every sink, no notification is repeated."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest

from ssm_detect.delivery import SEND_LEASE, Dispatcher, NotificationInProgressError, window_of
from ssm_detect.findings import Finding, Severity
from ssm_detect.ingest import to_event
from ssm_detect.ledger import SendLease, SendState
from ssm_detect.ledger.sqlite import SqliteLedger
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent
from ssm_detect.state.memory import MemoryStateStore
from ssm_detect.wiring import local_pipeline
from tests.conftest import ROOT, load_event
from tests.fakes import RecordingSink, SinkDownError

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = Settings()


def send_command_findings(*minutes: int) -> list[Finding]:
    """SendCommand findings for one principal, one per call, `minutes` after the seed event."""
    pipeline = local_pipeline(SETTINGS, MemoryStateStore())
    base = load_event("panther_single_instance_no_cache.json")["detail"]
    found: list[Finding] = []
    for n, offset in enumerate(minutes):
        raw = dict(base, eventID=f"evt-{n}")
        event = to_event(raw, SETTINGS.principal_keying)
        assert isinstance(event, SsmEvent)
        moved = event.record.model_copy(
            update={"event_time": event.record.event_time + timedelta(minutes=offset)}
        )
        event = SsmEvent(moved, event.principal, event.call)
        found += pipeline.process(event).findings
    return [f for f in found if f.detection_id == "AWS.SSM.SendCommand"]


def window(finding: Finding) -> str:
    """The id of the suppression window's finding the firing updates."""
    return window_of(finding, SETTINGS).id


def dispatcher(
    ledger: SqliteLedger, notifier: RecordingSink, recorder: RecordingSink
) -> Dispatcher:
    return Dispatcher(ledger, SETTINGS, (notifier,), (recorder,), clock=lambda: NOW)


def test_delivery_notifies_the_first_firing_and_updates_it_for_repeats() -> None:
    sns, hub = RecordingSink("sns"), RecordingSink("securityhub")
    deliver = dispatcher(SqliteLedger(), sns, hub)
    first, second, third = send_command_findings(0, 10, 20)

    reports = [deliver.deliver([f]) for f in (first, second, third)]

    opened = window(first)
    assert window(second) == window(third) == opened
    assert [f.id for f in sns.received] == [opened]
    assert [(f.id, f.count) for f in hub.received] == [(opened, 1), (opened, 2), (opened, 3)]
    assert hub.received[-1].event_ids == ("evt-0", "evt-1", "evt-2")
    assert [r.suppressed for r in reports] == [0, 1, 1]


def test_delivery_after_the_window_notifies_again() -> None:
    sns, hub = RecordingSink("sns"), RecordingSink("securityhub")
    deliver = dispatcher(SqliteLedger(), sns, hub)
    early, late = send_command_findings(0, 61)
    deliver.deliver([early])
    deliver.deliver([late])
    assert [f.id for f in sns.received] == [window(early), window(late)]
    assert window(early) != window(late)


def test_delivery_retry_after_notifier_failure_notifies_exactly_once() -> None:
    """State written, SNS failed: the retry sends the notification, once."""
    sns, hub = RecordingSink("sns", failures=1), RecordingSink("securityhub")
    deliver = dispatcher(SqliteLedger(), sns, hub)
    (finding,) = send_command_findings(0)
    with pytest.raises(SinkDownError):
        deliver.deliver([finding])
    deliver.deliver([finding])
    assert [f.id for f in sns.received] == [window(finding)]
    assert [f.id for f in hub.received] == [window(finding)]


def test_delivery_retry_after_recorder_failure_does_not_notify_twice() -> None:
    """SNS sent, Security Hub failed: the retry imports the finding and sends no second email."""
    sns, hub = RecordingSink("sns"), RecordingSink("securityhub", failures=2)
    deliver = dispatcher(SqliteLedger(), sns, hub)
    (finding,) = send_command_findings(0)
    for _ in range(2):
        with pytest.raises(SinkDownError):
            deliver.deliver([finding])
    deliver.deliver([finding])
    assert len(sns.received) == 1
    assert [(f.id, f.count) for f in hub.received] == [(window(finding), 1)]


def test_delivery_of_the_same_event_twice_notifies_once() -> None:
    sns, hub = RecordingSink("sns"), RecordingSink("securityhub")
    deliver = dispatcher(SqliteLedger(), sns, hub)
    (finding,) = send_command_findings(0)
    deliver.deliver([finding])
    deliver.deliver([finding])
    assert len(sns.received) == 1
    assert [f.count for f in hub.received] == [1, 1]


def test_delivery_concurrent_invocations_notify_once() -> None:
    """Sixteen invocations for one principal at once, one firing each: one notification."""
    sns, hub = RecordingSink("sns"), RecordingSink("securityhub")
    ledger = SqliteLedger()
    findings = send_command_findings(*range(16))
    threads = [
        threading.Thread(target=dispatcher(ledger, sns, hub).deliver, args=([f],)) for f in findings
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sns.received) == 1
    assert {f.id for f in hub.received} == {sns.received[0].id}
    assert max(f.count for f in hub.received) == 16


def test_delivery_per_detection_suppression_window() -> None:
    settings = Settings(suppression_overrides={"AWS.SSM.SendCommand": timedelta(minutes=5)})
    sns = RecordingSink("sns")
    deliver = Dispatcher(SqliteLedger(), settings, (sns,), (), clock=lambda: NOW)
    for finding in send_command_findings(0, 3, 6):
        deliver.deliver([finding])
    assert len(sns.received) == 2


def test_delivery_marks_recorded_at_from_the_ledger_clock() -> None:
    hub = RecordingSink("securityhub")
    deliver = Dispatcher(SqliteLedger(), SETTINGS, (), (hub,), clock=lambda: NOW)
    deliver.deliver(send_command_findings(0))
    assert hub.received[0].recorded_at == NOW


def test_delivery_send_lease_outlives_the_function_timeout() -> None:
    """A lease shorter than the holder's invocation could let a second sender in while the
    first is still sending."""
    timeout = re.search(r"^      Timeout: (\d+)$", (ROOT / "template.yaml").read_text(), re.M)
    assert timeout is not None
    assert timedelta(seconds=int(timeout[1])) < SEND_LEASE


def test_delivery_waits_for_the_invocation_holding_the_lease_and_skips_its_send() -> None:
    """Two invocations hold the same opening firing: the second waits while the first sends,
    then finds the delivery recorded and sends nothing."""
    ledger, hub = SqliteLedger(), RecordingSink("securityhub")
    (finding,) = send_command_findings(0)
    other = dispatcher(ledger, RecordingSink("sns"), hub)
    other_claim = other._claim(finding)
    level = finding.severity.rank
    taken = ledger.begin_send(SendLease(other_claim.key, "sns", level, "first", 0, 2**62))
    assert taken.state is SendState.TAKEN

    waits: list[float] = []

    def first_finishes_while_we_wait(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:
            ledger.mark_sent(other_claim.key, "sns", level)

    sns = RecordingSink("sns")
    second = Dispatcher(
        ledger, SETTINGS, (sns,), (hub,), clock=lambda: NOW, sleep=first_finishes_while_we_wait
    )
    report = second.deliver([finding], invocation="second")
    assert (sns.received, report.notified, len(waits)) == ([], [], 3)
    assert [f.id for f in hub.received] == [window(finding)]


def test_delivery_fails_for_a_retry_when_the_lease_stays_held() -> None:
    ledger = SqliteLedger()
    (finding,) = send_command_findings(0)
    first = dispatcher(ledger, RecordingSink("sns"), RecordingSink("securityhub"))
    held = first._claim(finding)
    level = finding.severity.rank
    ledger.begin_send(SendLease(held.key, "sns", level, "first", 0, 2**62))
    sns = RecordingSink("sns")
    second = Dispatcher(ledger, SETTINGS, (sns,), (), clock=lambda: NOW, sleep=lambda _: None)
    with pytest.raises(NotificationInProgressError):
        second.deliver([finding], invocation="second")
    assert sns.received == []


def test_delivery_releases_the_lease_when_the_send_fails() -> None:
    ledger, hub = SqliteLedger(), RecordingSink("securityhub")
    (finding,) = send_command_findings(0)
    failing = RecordingSink("sns", failures=1)
    with pytest.raises(SinkDownError):
        dispatcher(ledger, failing, hub).deliver([finding], invocation="first")
    # another invocation (not Lambda's retry of the first) can send at once
    sns = RecordingSink("sns")
    dispatcher(ledger, sns, hub).deliver([finding], invocation="other")
    assert len(sns.received) == 1


def test_delivery_two_firings_of_one_window_from_one_event_notify_once() -> None:
    """A fan-out call can decide several crossings of one window: one notice for the window,
    at the highest level among them."""
    sns, hub = RecordingSink("sns"), RecordingSink("securityhub")
    first, second = send_command_findings(0, 10)
    raised = second.model_copy(update={"severity": Severity.CRITICAL})
    report = dispatcher(SqliteLedger(), sns, hub).deliver([first, raised])
    assert [(f.id, f.severity) for f in sns.received] == [(window(first), Severity.CRITICAL)]
    assert report.notifications == 1
    assert [f.count for f in hub.received] == [2]
