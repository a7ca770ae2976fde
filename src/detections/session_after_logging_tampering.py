"""AWS.SSM.SessionAfterLoggingTampering: a session opened by the principal who just turned
session logging off (issue 13, point 4).

Coverage I's `AWS.SSM.SessionLoggingDisabled` reports the change to the Session Manager
preferences (`SSM-SessionManagerRunShell`) that stops session transcripts; this detection does
not judge that change again. Its verdict (in `prior`) is the first half; so, as long as that
detection may be absent or CloudTrail hides the new content, is any successful change of the
preferences document itself (create, update, delete: a deleted document means default
preferences, which log nothing). It links that change to what usually follows: a
`StartSession` by the same principal, in the same account and region (the
preferences are regional, and so is what they stop logging), within the chain window (default
24 h). Together they read "stopped the recording, then opened a shell": CRITICAL.

State is the shared correlate-through-resource block (`ssm_detect.state.correlate`), keyed by
account + region + principal: the tampering verdict is the first half, each session the second,
so the pair is found whichever arrives first. The key is the tampered preferences' owner
(`logging-tampered#<account>#<region>#<principal>`) so that other tampering detections (a
preferences document deleted, a log bucket policy changed) can record first halves in it too.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from detections.base import (
    CLOUD_ADMINISTRATION_COMMAND,
    DetectionMetadata,
    Prior,
    Verdict,
)
from detections.evidence import Actor, pair_events
from detections.session_context import session_context, session_resources
from detections.session_logging_disabled import DISABLE_CLOUD_LOGS
from detections.stateful import Observed, StatefulDetection
from ssm_detect.findings import Resource, Severity
from ssm_detect.models.event_time import to_epoch
from ssm_detect.models.ssm_calls import HIDDEN
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent, StartSessionCall
from ssm_detect.state.block import StateKey
from ssm_detect.state.correlate import CorrelateThroughResource, Correlation, Mention, Pair, Side

TAMPERING_DETECTIONS = ("AWS.SSM.SessionLoggingDisabled",)
"""Detections whose verdict on an event is the first half of the chain (issue 12's, which runs
earlier in the registry and so is in `prior`)."""
PREFERENCES_DOCUMENT = "SSM-SessionManagerRunShell"
PREFERENCE_CHANGES = frozenset({"CreateDocument", "UpdateDocument", "DeleteDocument"})
"""Calls that change (or, deleted, reset to "no logging") the Session Manager preferences."""
STATE_KIND = "logging-tampered"
# A non-empty S3 bucket or CloudWatch log group in the preferences' JSON or YAML content.
_LOG_DESTINATION = re.compile(
    r"""["']?(s3BucketName|cloudWatchLogGroupName)["']?\s*:\s*["']?[A-Za-z0-9/_.#-]""",
)

METADATA = DetectionMetadata(
    id="AWS.SSM.SessionAfterLoggingTampering",
    title="SSM session opened after its principal turned session logging off",
    description=(
        "A principal changed the Session Manager preferences so that sessions are no longer "
        "logged, and the same principal started a session in that account and region within "
        "the chain window."
    ),
    severity=Severity.CRITICAL,
    attack=(
        CLOUD_ADMINISTRATION_COMMAND,
        DISABLE_CLOUD_LOGS,
    ),
    seed="ours (issue 13 point 4), chaining issue 12's AWS.SSM.SessionLoggingDisabled",
    references=(
        "https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-logging.html",
        "https://stratus-red-team.cloud/attack-techniques/AWS/aws.execution.ssm-start-session/",
        "https://attack.mitre.org/techniques/T1562/008/",
    ),
    false_positives=(
        "An administrator moving session logs to a new bucket in two steps and testing it with "
        "a session in between.",
    ),
    runbook=(
        "Treat the session as unrecorded: terminate it if still open, restore the preferences "
        "(SSM-SessionManagerRunShell), and review the node's own logs and the principal's other "
        "calls around the session."
    ),
)


class SessionAfterLoggingTamperingDetection(StatefulDetection[Mention, Correlation]):
    metadata: ClassVar[DetectionMetadata] = METADATA

    def applies_to(self, event: SsmEvent, settings: Settings) -> bool:
        del settings
        # Sessions are the second half; the first is a preferences change (or, in `observe`,
        # the verdict of an earlier tampering detection on the same event).
        return event.record.succeeded and (
            isinstance(event.call, StartSessionCall) or changes_preferences(event)
        )

    def block(self, settings: Settings) -> CorrelateThroughResource:
        return CorrelateThroughResource(settings.chain_window)

    def observe(
        self, event: SsmEvent, settings: Settings, prior: Prior
    ) -> Observed[Mention] | None:
        del settings
        if changes_preferences(event) or any(d in prior for d in TAMPERING_DETECTIONS):
            side = Side.FIRST
        elif isinstance(event.call, StartSessionCall):
            side = Side.SECOND
        else:
            return None
        key = StateKey(
            STATE_KIND, event.account_id, event.principal.key, region=event.record.aws_region
        )
        data = Actor.of(event).as_data()
        if side is Side.FIRST:
            # What the new preferences say when the record shows them; a tampering verdict on
            # another kind of call (no preferences content to read) stands as "off".
            request = event.record.request_parameters or {}
            preferences = request.get("name") == PREFERENCES_DOCUMENT
            data["logging"] = _logging_after(request) if preferences else "off"
        return Observed(key, Mention(to_epoch(event.record.event_time), event.event_id, side, data))

    def judge(
        self, event: SsmEvent, settings: Settings, reading: Correlation, prior: Prior
    ) -> tuple[Verdict, ...]:
        del prior
        return tuple(
            _verdict(event, settings, pair, capped=reading.capped) for pair in reading.pairs
        )


def changes_preferences(event: SsmEvent) -> bool:
    """A call on the Session Manager preferences document that may stop logging, read from the
    record itself: a change whose visible content still names a log destination does not."""
    record = event.record
    request = record.request_parameters or {}
    if record.event_name not in PREFERENCE_CHANGES or request.get("name") != PREFERENCES_DOCUMENT:
        return False
    return _logging_after(request) != "on"


def _logging_after(request: dict[str, Any]) -> str:
    """ "on" when the new content names an S3 bucket or log group, "off" when it is visible and
    names neither, "unknown" when CloudTrail hides it (or the call deletes the document)."""
    content = request.get("content")
    if not isinstance(content, str) or content == HIDDEN:
        return "unknown"
    return "on" if _LOG_DESTINATION.search(content) else "off"


def _verdict(event: SsmEvent, settings: Settings, pair: Pair, *, capped: bool) -> Verdict:
    tamperer = Actor.from_data(dict(pair.first.data))
    session = Actor.from_data(dict(pair.second.data))
    hours = int(settings.chain_window.total_seconds() // 3600)
    reasons: tuple[str, ...] = (
        f"session within {hours} h of the same principal's preferences change",
    )
    severity = METADATA.severity
    if pair.first.data.get("logging") != "off":
        severity = Severity.HIGH
        reasons = (*reasons, "HIGH, not CRITICAL: the new preferences were not visible")
    context: dict[str, Any] = {
        "tampering_event_id": pair.first.event_id,
        "session_event_id": pair.second.event_id,
        "chain_window_hours": hours,
        "actors": {"tamperer": tamperer.as_context(), "session": session.as_context()},
        "contributing_events": pair_events(pair, tamperer, session),
    }
    call = event.call
    resources: tuple[Resource, ...] = ()
    if isinstance(call, StartSessionCall) and event.event_id == pair.second.event_id:
        context |= session_context(event, call)
        resources = session_resources(event, call)
    if capped:
        context["state_capped"] = "the chain state is at its bound: older halves may be missing"
    return Verdict.of_pair(
        pair,
        summary=(
            f"{session.principal_key} started a session "
            f"{(pair.second.epoch - pair.first.epoch) // 60} minutes after turning session "
            "logging off"
        ),
        severity=severity,
        severity_reasons=reasons,
        resources=resources,
        context=context,
        subject=session,
    )
