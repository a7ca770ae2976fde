"""Delivery: findings to sinks, notified once per suppression window, never lost on retry.

Order matters and is the retry design:
1. Claim each firing in the ledger (join the open window, or open one). State first: a retry
   re-derives the same claim, because claims are idempotent.
2. Notify (SNS) only for the firing that opened the window, and only through sinks the ledger
   has not recorded as delivered; record each delivery right after it succeeds. So a failure of
   anything later (Security Hub, say) makes Lambda retry without repeating the email. Two
   invocations holding the same opening firing at once (an event delivered twice at the same
   moment) meet at the ledger's send lease: one sends, the other waits for its record and
   skips, or fails (Lambda retries it) if the holder is still busy after `LEASE_WAIT`.
3. Record every firing (Security Hub upsert by the open finding's id, logs, local output): an
   import under an existing id updates that finding, so repeating it is harmless.
Any sink error propagates: the invocation fails and Lambda retries it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from detections import members
from ssm_detect.findings import Finding
from ssm_detect.ledger import FindingLedger, LedgerEntry, SendLease, SendState, WindowClaim
from ssm_detect.models.event_time import to_epoch
from ssm_detect.settings import Settings
from ssm_detect.sinks import FindingSink

MAX_EVENT_IDS = 100
# A send lease must outlive the invocation that holds it: longer than the function's timeout
# (60 s in template.yaml; tests/test_template.py checks the pair). A holder that dies blocks
# other invocations until then; Lambda's own retry of it (same request id) takes it back.
SEND_LEASE = timedelta(seconds=120)
# How long an invocation waits for another one that holds the lease (a publish takes well
# under a second), polling the ledger, before it fails so that Lambda retries it later.
LEASE_WAIT = timedelta(seconds=10)
LEASE_POLL = timedelta(milliseconds=200)


class NotificationInProgressError(RuntimeError):
    """Another invocation is sending this notification and has not recorded it yet."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class DeliveryReport:
    notified: list[Finding] = field(default_factory=list)
    recorded: list[Finding] = field(default_factory=list)
    suppressed: int = 0
    """Firings that joined an open window instead of notifying again."""


@dataclass(frozen=True)
class _Claimed:
    finding: Finding
    entry: LedgerEntry
    key: str
    opener: bool


class Dispatcher:
    def __init__(
        self,
        ledger: FindingLedger,
        settings: Settings,
        notifiers: Sequence[FindingSink] = (),
        recorders: Sequence[FindingSink] = (),
        *,
        clock: Callable[[], datetime] = _utc_now,
        on_sink_failure: Callable[[str, Exception], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ledger = ledger
        self.settings = settings
        self.notifiers = tuple(notifiers)
        self.recorders = tuple(recorders)
        self._clock = clock
        self._on_sink_failure = on_sink_failure
        self._sleep = sleep

    def deliver(self, findings: Sequence[Finding], *, invocation: str = "") -> DeliveryReport:
        """`invocation` names the caller for send leases: Lambda's request id, which Lambda's
        retries of the invocation share (a fresh id is made when it is empty)."""
        report = DeliveryReport()
        owner = invocation or uuid.uuid4().hex
        claimed = [self._claim(finding) for finding in findings]
        for item in claimed:
            if not item.opener:
                report.suppressed += 1
                continue
            sent = [self._notify(item, sink, owner) for sink in self.notifiers]
            if any(sent) or not self.notifiers:
                report.notified.append(item.finding)
        latest = {item.finding.id: item.finding for item in claimed}
        report.recorded = list(latest.values())
        if report.recorded:
            for sink in self.recorders:
                self._send(sink, report.recorded)
        return report

    def _notify(self, item: _Claimed, sink: FindingSink, owner: str) -> bool:
        """Send the opening firing's notification through `sink` unless it has been sent;
        True if this call sent it."""
        if sink.name in item.entry.sent:
            return False  # delivered by an earlier attempt of this invocation's event
        if not item.entry.tracked:
            self._send(sink, [item.finding])
            return True
        lease = self._take_lease(item, sink.name, owner)
        if lease is None:
            return False  # another invocation sent it while this one waited
        try:
            self._send(sink, [item.finding])
        except Exception:
            self.ledger.release(lease)
            raise
        self.ledger.mark_sent(item.key, item.entry.open_id, sink.name)
        return True

    def _take_lease(self, item: _Claimed, sink: str, owner: str) -> SendLease | None:
        polls = int(LEASE_WAIT / LEASE_POLL)
        for attempt in range(polls + 1):
            now_ms = int(self._clock().timestamp() * 1000)
            lease = SendLease(
                key=item.key,
                open_id=item.entry.open_id,
                sink=sink,
                owner=owner,
                now_ms=now_ms,
                until_ms=now_ms + int(SEND_LEASE.total_seconds() * 1000),
            )
            state = self.ledger.begin_send(lease)
            if state is SendState.TAKEN:
                return lease
            if state is SendState.SENT:
                return None
            if attempt < polls:
                self._sleep(LEASE_POLL.total_seconds())
        raise NotificationInProgressError(
            f"{sink} notification of {item.entry.open_id} is held by another invocation for "
            f"over {LEASE_WAIT.total_seconds():.0f} s; failing so that Lambda retries"
        )

    def _send(self, sink: FindingSink, findings: Sequence[Finding]) -> None:
        try:
            sink.send(findings)
        except Exception as error:
            if self._on_sink_failure is not None:
                self._on_sink_failure(sink.name, error)
            raise

    def _claim(self, finding: Finding) -> _Claimed:
        key = ledger_key(finding)
        decisive = finding.event_ids[-1] if finding.event_ids else finding.id
        epoch = to_epoch(finding.last_seen)
        entry = self.ledger.claim(
            WindowClaim(
                key=key,
                finding_id=finding.id,
                member=members.encode(epoch, decisive),
                event_epoch=epoch,
                window=self.settings.suppression_for(finding.detection_id),
                now_epoch=to_epoch(self._clock()),
            )
        )
        return _Claimed(
            finding=consolidate(finding, entry),
            entry=entry,
            key=key,
            opener=entry.open_id == finding.id or not entry.tracked,
        )


def ledger_key(finding: Finding) -> str:
    return f"ledger#{finding.detection_id}#{finding.account_id}#{finding.principal.key}"


def consolidate(finding: Finding, entry: LedgerEntry) -> Finding:
    """The firing as an update of the window's open finding: its id, count and time span."""
    window = members.decode_all(entry.members)
    times = [to_epoch(finding.first_seen), to_epoch(finding.last_seen), *(t for t, _ in window)]
    own = set(finding.event_ids)
    last = to_epoch(finding.last_seen)
    # Time order: earlier firings of the window, this firing's events, later firings.
    before = [e for t, e in window if e not in own and t <= last]
    after = [e for t, e in window if e not in own and t > last]
    event_ids = (*before, *finding.event_ids, *after)
    return finding.model_copy(
        update={
            "id": entry.open_id,
            "count": entry.count,
            "first_seen": min(finding.first_seen, _datetime(min(times))),
            "last_seen": max(finding.last_seen, _datetime(max(times))),
            "event_ids": event_ids[-MAX_EVENT_IDS:],
            "recorded_at": _datetime(entry.created_epoch) if entry.created_epoch else None,
        }
    )


def _datetime(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)
