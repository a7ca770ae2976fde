"""AWS.SSM.SendCommandProbing: failed SendCommands, then one that succeeds (issue 12 point 7).

Ours. An intruder holding stolen credentials does not know which instances exist, which the
role may reach or which documents it may run: it tries, gets `AccessDenied`,
`InvalidInstanceId`, `InvalidDocument`..., and adjusts until a call goes through. Each failed
call ran nothing (the success-based detections ignore it, and it never counts toward a fan-out);
the burst of failures followed by the success is the tell.

The state is the distinct-in-window block (`ssm_detect.state.distinct_window`) keyed by account +
principal (principals are global, so failures in several regions count together). Every
SendCommand of a non-service principal is an event of the window; a failed call contributes one
member, `<error code>#<event id>` (so each failed call counts once, a redelivery not at all);
a successful call contributes none. A window closed by a successful call that holds at least
`PROBE_FAILURES` failed calls fires, decided on that success (the block reports every window an
event belongs to, so a failure arriving after the success completes the same decision).

Defaults (README, "Tuning"): 3 failed calls within 30 minutes before the success. An operator's
one mistyped instance id, then the corrected call, is 1 failure: no finding. Throttling and
AWS-side errors (`ThrottlingException`, `InternalServerError`, ...) say nothing about the
caller's knowledge and do not count. AWS service principals (State Manager) are skipped like
the fan-out's (`INCLUDE_SERVICE_PRINCIPALS`).

Severity MEDIUM; HIGH when the failures include both a permission error and a target or document
error (permissions and the fleet mapped together) or reach 10.
"""

from __future__ import annotations

from collections import Counter
from typing import ClassVar

from detections.base import (
    CLOUD_ADMINISTRATION_COMMAND,
    AttackRef,
    DetectionMetadata,
    Prior,
    Verdict,
)
from detections.evidence import iso, window_events
from detections.resources import principal_resources
from detections.stateful import Observed, StatefulDetection, caller_key, counts_caller
from ssm_detect.findings import Severity
from ssm_detect.models.event_time import to_epoch
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SendCommandCall, SsmEvent
from ssm_detect.state.distinct_window import (
    EVENTS,
    MEMBERS,
    UNKNOWN,
    Bounds,
    Contribution,
    DistinctInWindow,
    SetNames,
    Window,
)

# Errors that are AWS's or the rate's, not the caller's guess.
NOT_PROBING = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
    }
)
_PERMISSION_WORDS = ("accessdenied", "unauthorized", "notauthorized")
_SEPARATOR = "#"
_MANY_FAILURES = 10
_MAX_LISTED = 50
SET_NAMES = SetNames(events="calls", members="failures", unknown="unused")
# A principal's SendCommands within two windows, failures included: a busy automation role
# is evicted oldest first like the fan-out's; no unknown-size members are ever written.
BOUNDS = Bounds(
    keep={EVENTS: 500, MEMBERS: 500, UNKNOWN: 1},
    limits={EVENTS: 625, MEMBERS: 625, UNKNOWN: 2},
    stored_per_event={MEMBERS: 1, UNKNOWN: 0},
)

METADATA = DetectionMetadata(
    id="AWS.SSM.SendCommandProbing",
    title="SSM SendCommand succeeded after a burst of failed attempts",
    description=(
        "A principal's SendCommand calls failed several times (access denied, invalid instance "
        "or document) within the window, then one succeeded: trial and error until a command ran."
    ),
    severity=Severity.MEDIUM,
    attack=(
        CLOUD_ADMINISTRATION_COMMAND,
        AttackRef(
            tactic_id="TA0007",
            tactic="discovery",
            technique_id="T1580",
            technique="Cloud Infrastructure Discovery",
        ),
    ),
    seed="ours (issue 12 point 7)",
    references=(
        "https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html",
        "https://attack.mitre.org/techniques/T1580/",
        "https://attack.mitre.org/techniques/T1651/",
    ),
    false_positives=(
        "A new script or pipeline being debugged against the wrong instance ids or a role "
        "still missing ssm:SendCommand.",
    ),
    runbook=(
        "Read the failed calls' error messages (what was tried) and the successful command "
        "(ssm:GetCommandInvocation). Confirm with the principal's owner; if unexpected, revoke "
        "the session or key and review the instances the successful command ran on."
    ),
)


class SendCommandProbingDetection(StatefulDetection[Contribution, tuple[Window, ...]]):
    metadata: ClassVar[DetectionMetadata] = METADATA

    def applies_to(self, event: SsmEvent, settings: Settings) -> bool:
        return isinstance(event.call, SendCommandCall) and counts_caller(event, settings)

    def block(self, settings: Settings) -> DistinctInWindow:
        return DistinctInWindow(settings.probe_window, bounds=BOUNDS, names=SET_NAMES)

    def observe(
        self, event: SsmEvent, settings: Settings, prior: Prior
    ) -> Observed[Contribution] | None:
        del settings, prior
        record = event.record
        if not record.succeeded and record.error_code in NOT_PROBING:
            return None  # says nothing about the caller, and is not a success either
        failure = () if record.succeeded else (failure_member(record.error_code, event.event_id),)
        return Observed(
            caller_key(event, "probing"),
            Contribution(
                epoch=to_epoch(record.event_time),
                event_id=event.event_id,
                members=failure,
                origin=record.aws_region,
            ),
        )

    def judge(
        self, event: SsmEvent, settings: Settings, reading: tuple[Window, ...], prior: Prior
    ) -> tuple[Verdict, ...]:
        """A verdict for every window closed by a success that holds enough failures: for an
        event in time order only its own window; a late failure completes later ones."""
        del prior
        return tuple(
            _verdict(event, settings, window, failures)
            for window in reading
            if (failures := _failures_before_success(window)) is not None
            and len(failures) >= settings.probe_failures
        )


def failure_member(error_code: str | None, event_id: str) -> str:
    return f"{(error_code or 'Unknown')[:64]}{_SEPARATOR}{event_id}"


def _failures_before_success(window: Window) -> list[tuple[str, str]] | None:
    """The failed calls (error code, event id) since the window's previous success, when a
    successful call closes the window; None when the closing call itself failed."""
    failed = {m: m.rpartition(_SEPARATOR) for m in window.members}
    failed_ids = {event_id for _, _, event_id in failed.values()}
    if window.end.event_id in failed_ids:
        return None
    earlier = [e for e in window.events if e.event_id not in failed_ids and e < window.end]
    since = max(earlier, default=None)
    return [
        (code, event_id)
        for member, (code, _, event_id) in failed.items()
        if since is None or window.member_events[member] > since
    ]


def _verdict(
    event: SsmEvent, settings: Settings, window: Window, failures: list[tuple[str, str]]
) -> Verdict:
    """Built from the window alone (not from the event being processed, which may be a late
    failure), so the finding is the same whichever of its calls arrives last."""
    severity, reasons = _severity(failures)
    codes = Counter(code for code, _ in failures)
    context = {
        "failed_calls": len(failures),
        "error_codes": dict(codes.most_common(20)),
        "failed_event_ids": [event_id for _, event_id in failures[:_MAX_LISTED]],
        "success_event_id": window.end.event_id,
        "threshold": settings.probe_failures,
        "window_start": iso(window.start),
        "window_end": iso(window.end.epoch),
        "contributing_events": window_events(event, window, 200),
    }
    if window.capped:
        context["state_capped"] = (
            "this principal's probing state is at its bound: counts cover its most recent "
            "calls and may be lower than made"
        )
    minutes = int(settings.probe_window.total_seconds() // 60)
    return Verdict.of_window(
        window,
        summary=(
            f"{event.principal.key} had {len(failures)} failed SendCommand calls "
            f"({', '.join(sorted(codes))[:200]}) within {minutes} minutes, then one succeeded"
        ),
        severity=severity,
        severity_reasons=reasons,
        resources=principal_resources(event.principal),
        context=context,
    )


def _severity(failures: list[tuple[str, str]]) -> tuple[Severity, tuple[str, ...]]:
    permission = any(_is_permission(code) for code, _ in failures)
    other = any(not _is_permission(code) for code, _ in failures)
    if permission and other:
        return Severity.HIGH, (
            "raised to HIGH: permission errors and target/document errors both (permissions "
            "and the fleet mapped together)",
        )
    if len(failures) >= _MANY_FAILURES:
        return Severity.HIGH, (f"raised to HIGH: {len(failures)} failed calls",)
    return METADATA.severity, ()


def _is_permission(code: str) -> bool:
    lowered = code.lower()
    return any(word in lowered for word in _PERMISSION_WORDS)
