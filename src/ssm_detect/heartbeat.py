"""Heartbeats: proof that each member account and region still reaches the detector.

Every forwarder stack (and the detector's own stack, for its home region) has EventBridge
Scheduler call `ssm:PutParameter` on `/security/ssm-detect/heartbeat` every few minutes (no
parameter name may start with "ssm", hence `/security/`). That call is logged by CloudTrail,
delivered to EventBridge as an "AWS API Call via CloudTrail" event, forwarded through the
member's role and the security bus's policy, and matched by the detector's heartbeat rule: the
path real SSM events take. A stopped trail, a deleted forwarder stack, a broken role or bus
policy, a disabled central rule: each stops the heartbeats of the sources it cuts off.

The detector records the latest heartbeat per (account, region) with one conditional write
(`HeartbeatStore.record`); a scheduled check (`check`) compares them with the check's time and
names the sources silent for longer than the limit, the ones newly silent and the ones that came
back. Nothing here touches the detection path: a heartbeat is recognised from a few dict lookups
and never reaches the detections.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from ssm_detect.findings import Finding, PrincipalRef, Severity, finding_id
from ssm_detect.models.event_time import parse_event_time

HEARTBEAT_PARAMETER = "/security/ssm-detect/heartbeat"
HEARTBEAT_EVENT_NAME = "PutParameter"
SILENCE_DETECTION = "ssm-detect.HeartbeatSilence"
RESUMED_DETECTION = "ssm-detect.HeartbeatResumed"
RETIRE_AFTER = timedelta(days=14)
"""A source silent this long is dropped (an account closed, a region given up); it was
reported when it fell silent and the alarm stayed raised until now."""
_ACCOUNT = re.compile(r"^[0-9]{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$")
_FORWARDER = PrincipalRef(key="ssm-detect-forwarder", type="Forwarder")


@dataclass(frozen=True, order=True)
class Source:
    """One member account and region."""

    account: str
    region: str

    def __str__(self) -> str:
        return f"{self.account}/{self.region}"


@dataclass(frozen=True)
class Beat:
    source: Source
    at: datetime


class HeartbeatStore(Protocol):
    def record(self, beat: Beat) -> None:
        """Keep `beat.at` as the source's latest heartbeat unless a later one is stored."""
        ...

    def latest(self) -> dict[Source, datetime]:
        """Every source's latest heartbeat."""
        ...

    def silenced(self) -> dict[Source, datetime]:
        """Sources reported silent, with the heartbeat they were silent after."""
        ...

    def mark_silent(self, source: Source, since: datetime) -> None: ...

    def clear(self, source: Source, *, forget: bool = False) -> None:
        """Drop the silence mark (and, with `forget`, the heartbeat itself)."""
        ...


def heartbeat_of(payload: object) -> Beat | None:
    """The heartbeat an EventBridge event carries, or None for anything else.

    Only a successful `PutParameter` on the heartbeat parameter, in a CloudTrail event from
    `aws.ssm`, counts. The account and region are CloudTrail's (`recipientAccountId`,
    `awsRegion`), which EventBridge keeps when it forwards across accounts."""
    detail = _heartbeat_detail(payload)
    if detail is None:
        return None
    account, region = detail.get("recipientAccountId"), detail.get("awsRegion")
    if not (isinstance(account, str) and _ACCOUNT.match(account)):
        return None
    if not (isinstance(region, str) and _REGION.match(region)):
        return None
    try:
        return Beat(Source(account, region), parse_event_time(detail.get("eventTime")))
    except (TypeError, ValueError):
        return None


def _heartbeat_detail(payload: object) -> dict[str, Any] | None:
    if not isinstance(payload, dict) or payload.get("source") != "aws.ssm":
        return None
    detail = payload.get("detail")
    if not isinstance(detail, dict) or detail.get("eventName") != HEARTBEAT_EVENT_NAME:
        return None
    parameters = detail.get("requestParameters")
    named = isinstance(parameters, dict) and parameters.get("name") == HEARTBEAT_PARAMETER
    return detail if named and not detail.get("errorCode") else None


def is_silence_check(payload: object) -> bool:
    """The detector's own scheduled rule: EventBridge's "Scheduled Event"."""
    return (
        isinstance(payload, dict)
        and payload.get("source") == "aws.events"
        and payload.get("detail-type") == "Scheduled Event"
    )


def check_time(payload: Mapping[str, Any]) -> datetime:
    """The scheduled time of the check, so that a check is judged as of when it was due."""
    return parse_event_time(payload.get("time"))


@dataclass
class SilenceReport:
    silent: dict[Source, datetime] = field(default_factory=dict)
    """Every source whose latest heartbeat is older than the limit, with that heartbeat."""
    newly_silent: list[Source] = field(default_factory=list)
    resumed: list[Source] = field(default_factory=list)
    retired: list[Source] = field(default_factory=list)
    watched: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "watched": self.watched,
            "silent": {str(s): at.isoformat() for s, at in sorted(self.silent.items())},
            "newly_silent": [str(s) for s in self.newly_silent],
            "resumed": [str(s) for s in self.resumed],
            "retired": [str(s) for s in self.retired],
        }


def check(
    latest: Mapping[Source, datetime],
    silenced: Mapping[Source, datetime],
    now: datetime,
    limit: timedelta,
) -> SilenceReport:
    """Which sources are silent as of `now`; which fell silent or came back since the marks."""
    report = SilenceReport()
    for source, at in sorted(latest.items()):
        if now - at > RETIRE_AFTER:
            report.retired.append(source)
        elif now - at > limit:
            report.silent[source] = at
            if source not in silenced:
                report.newly_silent.append(source)
        else:
            report.watched += 1
            if source in silenced:
                report.resumed.append(source)
    return report


def run_check(
    store: HeartbeatStore, now: datetime, limit: timedelta
) -> tuple[SilenceReport, list[Finding]]:
    """Read the heartbeats, decide, move the marks; the findings to deliver."""
    report = check(store.latest(), store.silenced(), now, limit)
    findings = []
    for source in report.newly_silent:
        findings.append(silence_finding(source, report.silent[source], now, limit))
        store.mark_silent(source, report.silent[source])
    for source in report.resumed:
        findings.append(resumed_finding(source, now))
        store.clear(source)
    for source in report.retired:
        store.clear(source, forget=True)
    return report, findings


def silence_finding(source: Source, last: datetime, now: datetime, limit: timedelta) -> Finding:
    minutes = int((now - last).total_seconds() // 60)
    event_id = f"silence-{source.region}-{int(last.timestamp())}"
    return Finding(
        id=finding_id(SILENCE_DETECTION, source.account, _FORWARDER.key, event_id),
        detection_id=SILENCE_DETECTION,
        title=f"No SSM events can be trusted from {source}: heartbeat silent for {minutes} min",
        description=(
            f"The detector has received no heartbeat from account {source.account} in "
            f"{source.region} since {last.isoformat()} (limit {int(limit.total_seconds() // 60)}"
            " min). SSM activity there is not being watched: CloudTrail may be stopped, or the "
            "forwarder rule, role, schedule or the security bus policy changed or deleted."
        ),
        severity=Severity.HIGH,
        account_id=source.account,
        region=source.region,
        principal=_FORWARDER,
        event_ids=(event_id,),
        first_seen=last,
        last_seen=now,
        context={"last_heartbeat": last.isoformat(), "silent_minutes": minutes},
        runbook=(
            "In that account and region: is the organisation trail logging (cloudtrail "
            "get-trail-status)? Does the ssm-detect-forwarder stack instance exist, with its "
            "rules ENABLED and its schedule running? Is the forwarder's dead-letter queue "
            "filling? Treat the gap as unwatched time: replay the trail's files for it "
            "(docs/deploy.md, 'Best effort delivery')."
        ),
    )


def resumed_finding(source: Source, now: datetime) -> Finding:
    event_id = f"resumed-{source.region}-{int(now.timestamp())}"
    return Finding(
        id=finding_id(RESUMED_DETECTION, source.account, _FORWARDER.key, event_id),
        detection_id=RESUMED_DETECTION,
        title=f"Heartbeat from {source} resumed",
        description=(
            f"Heartbeats from account {source.account} in {source.region} arrive again. "
            "Replay the trail's files for the silent period to cover what was missed."
        ),
        severity=Severity.INFORMATIONAL,
        account_id=source.account,
        region=source.region,
        principal=_FORWARDER,
        event_ids=(event_id,),
        first_seen=now,
        last_seen=now,
    )
