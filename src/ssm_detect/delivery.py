"""Delivery: findings to sinks, notified once per suppression window and severity level, never
lost on retry, the same whatever order the events arrive in.

Windows are fixed slices of event time (ledger/base.py), so a firing's window and the window's
finding id are functions of the events. Order matters and is the retry design:
1. Claim each firing in the ledger (add it to its window). State first: a retry re-derives the
   same claim, because claims are idempotent.
2. Notify (SNS) the firings whose severity is higher than what the window has notified (its
   first firing, or an escalation), and only through sinks the ledger has not recorded as having
   notified that level; record each delivery right after it succeeds. The findings one event
   raises travel in one notification. So a failure of anything later (Security Hub, say) makes
   Lambda retry without repeating the email. Two invocations holding the same firing at once (an
   event delivered twice at the same moment) meet at the ledger's send lease: one sends, the
   other waits for its record and skips, or fails (Lambda retries it) if the holder is still busy
   after `LEASE_WAIT`.
3. Record every firing (Security Hub upsert by the window's finding id, logs, local output): the
   record is the window's lead with the window's count, events and clock as of the claim, so an
   import repeated or overtaken is harmless and the newest import holds every firing.
Any sink error propagates: the invocation fails and Lambda retries it.
"""

from __future__ import annotations

import time
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from detections import members
from ssm_detect.findings import Finding, Severity, finding_id
from ssm_detect.ledger import (
    FindingLedger,
    LedgerEntry,
    Mark,
    SendLease,
    SendState,
    WindowClaim,
)
from ssm_detect.models.event_time import to_epoch
from ssm_detect.settings import Settings
from ssm_detect.sinks import FindingSink

MAX_EVENT_IDS = 100
# A send lease must outlive the invocation that holds it: longer than the function's timeout
# (60 s in template.yaml; `test_delivery_send_lease_outlives_the_function_timeout` in
# tests/test_delivery.py checks the pair). A holder that dies blocks other invocations until
# then; Lambda's own retry of it (same request id) takes it back.
SEND_LEASE = timedelta(seconds=120)
# How long an invocation waits for another one that holds the lease (a publish takes well
# under a second), polling the ledger, before it fails so that Lambda retries it later.
LEASE_WAIT = timedelta(seconds=10)
LEASE_POLL = timedelta(milliseconds=200)
ESCALATION = "escalation"
"""Context key of a notified escalation: {"from", "to", "changed"}."""


class NotificationInProgressError(RuntimeError):
    """Another invocation is sending this notification and has not recorded it yet."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class DeliveryReport:
    notified: list[Finding] = field(default_factory=list)
    recorded: list[Finding] = field(default_factory=list)
    suppressed: int = 0
    """Firings that updated their window's finding without notifying."""
    notifications: int = 0
    """Notifications sent (one per event's group, per notifier)."""


@dataclass(frozen=True)
class _Claimed:
    firing: Finding
    entry: LedgerEntry
    key: str

    @property
    def level(self) -> int:
        return self.firing.severity.rank


@dataclass(frozen=True)
class _Held:
    item: _Claimed
    lease: SendLease
    previous: int | None


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
        """The findings of one event: one notification for those that notify."""
        return self.deliver_events([findings], invocation=invocation)

    def deliver_events(
        self, per_event: Sequence[Sequence[Finding]], *, invocation: str = ""
    ) -> DeliveryReport:
        """`per_event` holds the findings of each event. `invocation` names the caller for send
        leases: Lambda's request id, which Lambda's retries of the invocation share (a fresh id
        is made when it is empty)."""
        report = DeliveryReport()
        owner = invocation or uuid.uuid4().hex
        groups = [[self._claim(f) for f in related(group, self.settings)] for group in per_event]
        # Without notifiers (a local replay) the ledger still records what would have been
        # notified, through a sink that sends nothing, so escalations count the same way.
        notifiers = self.notifiers or (_SILENT,)
        for group in groups:
            notified: set[str] = set()
            for sink in notifiers:
                notified |= self._notify_group(group, sink, owner, report)
            for item in group:
                if item.firing.id in notified:
                    report.notified.append(_notice(item, None))
                else:
                    report.suppressed += 1
        latest: dict[str, Finding] = {}
        for item in (item for group in groups for item in group):
            record = window_record(item.entry, item.firing)
            held = latest.get(record.id)
            if held is None or (record.updated_at or NEVER) >= (held.updated_at or NEVER):
                latest[record.id] = record
        report.recorded = list(latest.values())
        if report.recorded:
            for sink in self.recorders:
                self._send(sink, report.recorded)
        return report

    def _notify_group(
        self, group: Sequence[_Claimed], sink: FindingSink, owner: str, report: DeliveryReport
    ) -> set[str]:
        """One notification through `sink` for the firings of one event that raise their
        window's notified level; returns their firing ids."""
        due = _due(group, sink.name)
        held = self._take_leases(due, sink.name, owner) if due else []
        if not held:
            return set()
        try:
            self._send(sink, [_notice(h.item, h.previous) for h in held])
        except Exception:
            self._release(held)
            raise
        report.notifications += sink is not _SILENT
        # One step for every window the notification carried: a failure right after the
        # publish leaves all of them unrecorded (sent again on retry) or none.
        self.ledger.mark_all_sent([Mark(h.item.key, sink.name, h.item.level) for h in held])
        return {h.item.firing.id for h in held}

    def _take_leases(self, due: Sequence[_Claimed], sink: str, owner: str) -> list[_Held]:
        """The send leases of every window the notification carries, all or none: a window
        whose lease another invocation holds makes us give back the ones we took and wait
        (never hold one lease while waiting for another: two invocations could each hold what
        the other waits for)."""
        polls = int(LEASE_WAIT / LEASE_POLL)
        busy: _Claimed | None = None
        for attempt in range(polls + 1):
            taken: list[_Held] = []
            busy = None
            try:
                for item in due:
                    lease = self._lease(item, sink, owner)
                    outcome = self.ledger.begin_send(lease)
                    if outcome.state is SendState.HELD:
                        busy = item
                        break
                    if outcome.state is SendState.TAKEN:
                        taken.append(_Held(item, lease, outcome.previous))
            except Exception:
                self._release(taken)
                raise
            if busy is None:
                return taken
            self._release(taken)
            if attempt < polls:
                self._sleep(LEASE_POLL.total_seconds())
        window = busy.entry.window_id if busy is not None else "?"
        raise NotificationInProgressError(
            f"{sink} notification of {window} is held by another invocation for over "
            f"{LEASE_WAIT.total_seconds():.0f} s; failing so that Lambda retries"
        )

    def _lease(self, item: _Claimed, sink: str, owner: str) -> SendLease:
        now_ms = int(self._clock().timestamp() * 1000)
        return SendLease(
            key=item.key,
            sink=sink,
            level=item.level,
            owner=owner,
            now_ms=now_ms,
            until_ms=now_ms + int(SEND_LEASE.total_seconds() * 1000),
        )

    def _release(self, held: Sequence[_Held]) -> None:
        for h in held:
            self.ledger.release(h.lease)

    def _send(self, sink: FindingSink, findings: Sequence[Finding]) -> None:
        try:
            sink.send(findings)
        except Exception as error:
            if self._on_sink_failure is not None:
                self._on_sink_failure(sink.name, error)
            raise

    def _claim(self, finding: Finding) -> _Claimed:
        window = window_of(finding, self.settings)
        entry = self.ledger.claim(
            WindowClaim(
                key=window.key,
                window_id=window.id,
                member=window.member,
                lead_rank=lead_rank(finding),
                lead=freeze(finding),
                now_ms=int(self._clock().timestamp() * 1000),
                related=frozenset(finding.related_ids),
            )
        )
        return _Claimed(finding, entry, window.key)


NEVER = datetime.min.replace(tzinfo=UTC)


def _due(group: Sequence[_Claimed], sink: str) -> list[_Claimed]:
    """The firings of one event that may raise their window's notified level through `sink`:
    one per window (an event can decide several crossings of one window: the highest)."""
    best: dict[str, _Claimed] = {}
    for item in group:
        if item.entry.notified.get(sink, -1) >= item.level:
            continue
        held = best.get(item.key)
        if held is None or item.level > held.level:
            best[item.key] = item
    return list(best.values())


@dataclass(frozen=True)
class Window:
    key: str
    id: str
    start: int
    member: str


def window_of(finding: Finding, settings: Settings) -> Window:
    """The suppression window a firing belongs to: the slice of event time, aligned on the
    Unix epoch, that holds its decisive event (the 60-minute default: the clock hour, UTC)."""
    length = max(int(settings.suppression_for(finding.detection_id).total_seconds()), 1)
    epoch = to_epoch(finding.last_seen)
    start = epoch - epoch % length
    principal = finding.principal.key
    name = f"window#{start}#{length}"
    return Window(
        key=f"ledger#{finding.detection_id}#{finding.account_id}#{principal}#{start}",
        id=finding_id(finding.detection_id, finding.account_id, principal, name),
        start=start,
        member=members.encode(epoch, _decisive(finding)),
    )


def related(group: Sequence[Finding], settings: Settings) -> list[Finding]:
    """The findings of one event, each naming the windows of the others decided on the same
    decisive event (RelatedFindings). A late event can decide a later event's window (a fan-out
    it completes): that finding is about the later event, not about the late one's own."""
    ids = [window_of(f, settings).id for f in group]
    decisive = [_decisive(f) for f in group]
    return [
        f.model_copy(
            update={
                "related_ids": tuple(
                    dict.fromkeys(
                        i
                        for i, d in zip(ids, decisive, strict=True)
                        if i != own and d == decisive[n]
                    )
                )
            }
        )
        for n, (f, own) in enumerate(zip(group, ids, strict=True))
    ]


_MOST_EVENTS = 999_999


def lead_rank(finding: Finding) -> str:
    """The lead order (smallest leads): highest severity, then earliest event, then event id,
    then the most contributing events. The last matters for stateful firings: a window decided
    before all of its events had arrived fires again, complete, when the last one arrives (same
    decisive event, same member); the complete version must lead in every arrival order."""
    highest = len(Severity) - 1
    epoch = to_epoch(finding.last_seen)
    fewer = _MOST_EVENTS - min(len(finding.event_ids), _MOST_EVENTS)
    return f"{highest - finding.severity.rank}|{epoch:011d}|{_decisive(finding)}|{fewer:06d}"


def freeze(finding: Finding) -> bytes:
    return zlib.compress(finding.model_dump_json().encode(), 6)


def thaw(data: bytes) -> Finding:
    return Finding.model_validate_json(zlib.decompress(data))


def _decisive(finding: Finding) -> str:
    return finding.event_ids[-1] if finding.event_ids else finding.id


class _Silent:
    name = "local"

    def send(self, findings: Sequence[Finding]) -> None:
        """Nothing to send: the local replay prints its findings itself."""


_SILENT = _Silent()


def window_record(entry: LedgerEntry, firing: Finding) -> Finding:
    """What Security Hub and the logs hold for the window after this claim: the window's lead,
    with the window's id, count, events and time span, and the window's clock."""
    lead = thaw(entry.lead) if entry.lead else firing
    return consolidate(lead, entry)


def _notice(item: _Claimed, previous: int | None) -> Finding:
    """The firing as its notification shows it: under the window's id and count, and, when the
    window had notified a lower level, as an escalation from it."""
    finding = consolidate(item.firing, item.entry)
    if previous is None or previous >= item.level:
        return finding
    before = tuple(Severity)[previous]
    changed = [
        f"{finding.detection_id} fired at {finding.severity.value} on event "
        f"{_decisive(item.firing)}",
        *item.firing.severity_reasons,
    ]
    escalation = {"from": before.value, "to": finding.severity.value, "changed": changed}
    return finding.model_copy(update={"context": {**finding.context, ESCALATION: escalation}})


def consolidate(finding: Finding, entry: LedgerEntry) -> Finding:
    """The firing as an update of its window's finding: its id, count, time span and clock."""
    window = members.decode_all(entry.members)
    times = [to_epoch(finding.first_seen), to_epoch(finding.last_seen), *(t for t, _ in window)]
    own = set(finding.event_ids)
    last = to_epoch(finding.last_seen)
    # Time order: earlier firings of the window, this firing's events, later firings.
    before = [e for t, e in window if e not in own and t <= last]
    after = [e for t, e in window if e not in own and t > last]
    event_ids = (*before, *finding.event_ids, *after)
    created = _from_ms(entry.created_ms) if entry.created_ms else None
    updated = _from_ms(entry.clock_ms) if entry.clock_ms else created
    if entry.count == 1 and entry.clock_ms <= entry.created_ms:
        # A creation: Security Hub's CreatedAt == UpdatedAt. A window of one firing whose clock
        # moved on was claimed again (a redelivery, or the same decision made complete by a late
        # event, which may take the lead): that is an update, and must be newer to count.
        updated = created
    return finding.model_copy(
        update={
            "id": entry.window_id,
            "count": entry.count,
            "first_seen": min(finding.first_seen, _datetime(min(times))),
            "last_seen": max(finding.last_seen, _datetime(max(times))),
            "event_ids": event_ids[-MAX_EVENT_IDS:],
            "related_ids": tuple(sorted(entry.related | set(finding.related_ids))),
            "recorded_at": created,
            "updated_at": updated,
        }
    )


def _datetime(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _from_ms(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
