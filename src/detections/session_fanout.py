"""AWS.SSM.SessionFanout: one principal opens sessions on many managed nodes (issue 13, point 1).

The session counterpart of AWS.SSM.DistributedCommand, on the same shared block
(`ssm_detect.state.distinct_window`): the members are the distinct `StartSession` targets of one
principal (account + normalised principal, as every principal-keyed state) within a sliding
event-time window, and every window containing the event that crosses the threshold (default:
more than 2 targets in 60 minutes) is reported, so the findings do not depend on arrival order.
An operator who opens two sessions, or the same node's shell many times, stays below it; a stolen
key walking the fleet node by node does not. Targets are kept with their region (a node id is
regional), so the same id in two regions counts twice and each resource links to its own region.

Failed calls opened nothing and do not count. AWS service principals are skipped unless
`INCLUDE_SERVICE_PRINCIPALS` (as for the command fan-out); allowlisted principals cost no state.
"""

from __future__ import annotations

from typing import ClassVar

from detections.base import (
    CLOUD_ADMINISTRATION_COMMAND,
    AttackRef,
    DetectionMetadata,
    Prior,
    Verdict,
)
from detections.evidence import iso, window_events
from detections.resources import partition_of, principal_resources
from detections.session_context import session_context, target_resource
from detections.stateful import Observed, StatefulDetection, caller_key, counts_caller
from ssm_detect.findings import Severity
from ssm_detect.models.event_time import to_epoch
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SsmEvent, StartSessionCall
from ssm_detect.state.distinct_window import Contribution, DistinctInWindow, Window

_MAX_LISTED = 50
_MAX_CONTRIBUTING = 50
_LARGE_FANOUT = 10
_VERY_LARGE_FANOUT = 50
_SEPARATOR = "/"  # member = "<region>/<target>"

REMOTE_SERVICES = AttackRef(
    tactic_id="TA0008",
    tactic="lateral-movement",
    technique_id="T1021",
    technique="Remote Services",
)
"""Sessions reach other nodes (shared with the tunnel detection)."""

METADATA = DetectionMetadata(
    id="AWS.SSM.SessionFanout",
    title="SSM Session Manager sessions opened on many managed nodes",
    description=(
        "One principal started Session Manager sessions (shells, tunnels or commands) on more "
        "distinct managed nodes within the window than the threshold allows."
    ),
    severity=Severity.MEDIUM,
    attack=(
        CLOUD_ADMINISTRATION_COMMAND,
        REMOTE_SERVICES,
    ),
    seed="Panther AWS.SSM.DistributedCommand's distinct-in-window logic applied to StartSession; "
    "Stratus Red Team aws.execution.ssm-start-session",
    references=(
        "https://stratus-red-team.cloud/attack-techniques/AWS/aws.execution.ssm-start-session/",
        "https://github.com/panther-labs/panther-analysis (rules/aws_cloudtrail_rules/"
        "aws_ssm_distributed_command.py)",
        "https://attack.mitre.org/techniques/T1021/",
    ),
    false_positives=(
        "An on-call engineer checking several nodes during an incident.",
        "Tools that open sessions node by node (fleet scripts over Session Manager).",
    ),
    runbook=(
        "List the principal's sessions (ssm:DescribeSessions, state History) and, where session "
        "logging is on, read their transcripts. Confirm with the principal's owner; if "
        "unexpected, terminate open sessions, revoke the role session or disable the key, and "
        "review the nodes' instance roles' activity."
    ),
)


class SessionFanoutDetection(StatefulDetection[Contribution, tuple[Window, ...]]):
    metadata: ClassVar[DetectionMetadata] = METADATA

    def applies_to(self, event: SsmEvent, settings: Settings) -> bool:
        call = event.call
        return (
            isinstance(call, StartSessionCall)
            and call.target is not None
            and event.record.succeeded
            and counts_caller(event, settings)
        )

    def block(self, settings: Settings) -> DistinctInWindow:
        return DistinctInWindow(settings.session_fanout_window)

    def observe(
        self, event: SsmEvent, settings: Settings, prior: Prior
    ) -> Observed[Contribution] | None:
        del settings, prior
        call = event.call
        if not isinstance(call, StartSessionCall) or not call.target:
            return None
        region = event.record.aws_region
        return Observed(
            caller_key(event, "sessions"),
            Contribution(
                epoch=to_epoch(event.record.event_time),
                event_id=event.event_id,
                members=(f"{region}{_SEPARATOR}{call.target}",),
                origin=region,
            ),
        )

    def judge(
        self, event: SsmEvent, settings: Settings, reading: tuple[Window, ...], prior: Prior
    ) -> tuple[Verdict, ...]:
        """A verdict for every crossing window containing this event (arrival-order
        independent, as the command fan-out)."""
        del prior
        call = event.call
        if not isinstance(call, StartSessionCall):
            return ()
        threshold = settings.session_fanout_threshold
        return tuple(
            _verdict(event, call, settings, window)
            for window in reading
            if len(window.members) > threshold
        )


def _verdict(
    event: SsmEvent, call: StartSessionCall, settings: Settings, window: Window
) -> Verdict:
    account = event.account_id
    listed = window.members[:_MAX_LISTED]
    partition = partition_of(event.principal.arn or event.principal.role_arn)
    targets = [member.partition(_SEPARATOR) for member in listed]
    severity, reasons = _severity(len(window.members))
    context = session_context(event, call) | {
        "distinct_targets": len(window.members),
        "window_targets": [f"{target} ({region})" for region, _, target in targets],
        "threshold": settings.session_fanout_threshold,
        "window_start": iso(window.start),
        "window_end": iso(window.end.epoch),
        "contributing_events": window_events(event, window, _MAX_CONTRIBUTING),
    }
    if window.capped:
        context["state_capped"] = (
            "this principal's session state is at its bound: counts cover its most recent "
            "sessions and may be lower than reached"
        )
    minutes = int(settings.session_fanout_window.total_seconds() // 60)
    return Verdict.of_window(
        window,
        summary=(
            f"{event.principal.key} opened sessions on {len(window.members)} distinct managed "
            f"nodes within {minutes} minutes"
        ),
        severity=severity,
        severity_reasons=reasons,
        resources=tuple(
            target_resource(target, region, account, partition) for region, _, target in targets
        )
        + principal_resources(event.principal),
        context=context,
    )


def _severity(distinct: int) -> tuple[Severity, tuple[str, ...]]:
    if distinct >= _VERY_LARGE_FANOUT:
        return METADATA.severity.raised(2), (f"raised two steps: {distinct} distinct nodes",)
    if distinct >= _LARGE_FANOUT:
        return METADATA.severity.raised(), (f"raised: {distinct} distinct nodes",)
    return METADATA.severity, ()
