"""AWS.SSM.DistributedCommand: SendCommand fanned out to many instances (Panther).

Panther unions instance ids per (actor, hour bucket) and fires above 2. We differ on purpose:
- a sliding window (default 60 min) instead of hour buckets, so 2 instances at 10:59 and 2 at
  11:01 are one fan-out;
- one atomic update (a set union) that returns the whole window, instead of read-then-write,
  so concurrent invocations cannot both miss the threshold;
- ids from `instanceIds`, the response's `instanceIds` and `targets` keyed `InstanceIds` (any
  case); tag, resource-group and wildcard targets (`instanceIds: ["*"]` included) reach an
  unknown number of instances and count as a fan-out of unknown size.

Automation counts too (issue 12 point 4): a StartAutomationExecution / StartChangeRequestExecution
of a runbook that runs code (`AWS.SSM.AutomationRunsCode`'s judgement) adds the instances its
targets and `InstanceIds` / `TargetParameterName` parameters name, in the same window as the
principal's SendCommands; runbooks that run no code (Config remediation's AWSConfigRemediation-*)
count nothing.

The state is the distinct-in-window block (`ssm_detect.state.distinct_window`) keyed by account
+ principal (principals are global, so one principal's calls in every region count together):
members are instance ids, unknown reaches are the tag / resource-group / wildcard targets, and
each call keeps its region. Its windows, arrival-order independence (a late call is judged
against every window that contains it, even hours late: `block.LATENESS`) and bounds are the
block's; the bounds here are the ones this detection always had: in two windows fewer than
1,000 calls, 1,000 instance members and 64 unknown-size targets, at most 100 instances and 10
such targets stored per call (SendCommand takes at most 50 ids). A window the bounds may have
cut says `state_capped` in its finding.
"""

from __future__ import annotations

from typing import Any, ClassVar

from detections.automation_runs_code import code_reach
from detections.base import (
    CLOUD_ADMINISTRATION_COMMAND,
    AttackRef,
    DetectionMetadata,
    Prior,
    Verdict,
)
from detections.context import reached_instances
from detections.evidence import iso, window_events
from detections.resources import (
    document_resource,
    instance_resource,
    partition_of,
    principal_resources,
)
from detections.stateful import Observed, StatefulDetection, caller_key, counts_caller
from ssm_detect.execution_calls import AutomationCall
from ssm_detect.findings import Resource, ResourceType, Severity
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

CALLS = "calls"  # "<epoch>|<event id>|<region>|<document name>"
INSTANCES = "instances"  # "<epoch>|<event id>|<instance id>"
UNBOUNDED = "unbounded"  # "<epoch>|<event id>|<target>": tag / resource-group / wildcard targets
# The attribute names the deployed items use, so no state is lost on upgrade.
SET_NAMES = SetNames(events=CALLS, members=INSTANCES, unknown=UNBOUNDED)

# The block's bounds (module docstring). With CloudTrail's shapes (36-character event ids, 19- or
# 20-character instance ids) a call member is ~60 bytes with its region plus its document's name
# (cut to the block's 64-character note), at most ~125; an instance member 68 and an unknown-size
# target member at most 305 (its description is cut to 256): at the hard limits the item is at
# most 1,250 x 125 + 1,350 x 68 + 135 x 305 bytes, about 290 KB (DynamoDB's limit: 400 KB).
# Between a bound and its limit is room for one prune batch plus one call's members, so a lone
# writer never meets the limit; the rest is for concurrent writers ahead of their prunes.
KEEP_MEMBERS = {CALLS: 1_000, INSTANCES: 1_000, UNBOUNDED: 64}
MEMBER_LIMITS = {CALLS: 1_250, INSTANCES: 1_250, UNBOUNDED: 125}
STORED_PER_CALL = {INSTANCES: 100, UNBOUNDED: 10}
_LOGICAL = {CALLS: EVENTS, INSTANCES: MEMBERS, UNBOUNDED: UNKNOWN}
BOUNDS = Bounds(
    keep={_LOGICAL[name]: n for name, n in KEEP_MEMBERS.items()},
    limits={_LOGICAL[name]: n for name, n in MEMBER_LIMITS.items()},
    stored_per_event={_LOGICAL[name]: n for name, n in STORED_PER_CALL.items()},
)
_MAX_CONTRIBUTING = 200
_MAX_CONTEXT_IDS = 50
_LARGE_FANOUT = 10
_VERY_LARGE_FANOUT = 50

METADATA = DetectionMetadata(
    id="AWS.SSM.DistributedCommand",
    title="SSM SendCommand fanned out to many instances",
    description=(
        "One principal ran SSM commands on more distinct instances within the window than the "
        "threshold allows, or targeted an unknown number of instances through tags, resource "
        "groups or a wildcard."
    ),
    severity=Severity.INFORMATIONAL,
    attack=(
        CLOUD_ADMINISTRATION_COMMAND,
        AttackRef(
            tactic_id="TA0002",
            tactic="execution",
            technique_id="T1203",
            technique="Exploitation for Client Execution (as tagged by the Panther seed)",
        ),
    ),
    seed="Panther AWS.SSM.DistributedCommand (aws_ssm_distributed_command.py)",
    references=(
        "https://github.com/panther-labs/panther-analysis (rules/aws_cloudtrail_rules/"
        "aws_ssm_distributed_command.py)",
        "https://stratus-red-team.cloud/attack-techniques/AWS/aws.execution.ssm-send-command/",
    ),
    false_positives=(
        "Fleet-wide maintenance by operators or automation roles (patching, inventory).",
        "Deployments that target instances by tag.",
    ),
    runbook=(
        "Determine who issued the commands, the command content and arguments, and which EC2 "
        "instances were affected. Assess whether an attacker created a persistent point of access "
        "on an instance. Review the instances' behaviour logs and their IAM roles' activity."
    ),
)


class DistributedCommandDetection(StatefulDetection[Contribution, tuple[Window, ...]]):
    metadata: ClassVar[DetectionMetadata] = METADATA

    def applies_to(self, event: SsmEvent, settings: Settings) -> bool:
        # Failed calls ran nothing, so they do not count toward a fan-out.
        return (
            event.record.succeeded
            and counts_caller(event, settings)
            and _reached(event.call) is not None
        )

    def block(self, settings: Settings) -> DistinctInWindow:
        return DistinctInWindow(settings.fanout_window, bounds=BOUNDS, names=SET_NAMES)

    def observe(
        self, event: SsmEvent, settings: Settings, prior: Prior
    ) -> Observed[Contribution] | None:
        del settings, prior
        call = event.call
        reached = _reached(call)
        if reached is None or not isinstance(call, SendCommandCall | AutomationCall):
            return None
        explicit, unbounded = reached
        return Observed(
            caller_key(event, "fanout"),
            Contribution(
                epoch=to_epoch(event.record.event_time),
                event_id=event.event_id,
                members=explicit,
                unknown=unbounded,
                origin=event.record.aws_region,
                note=_short_name(call.document_name),
            ),
        )

    def judge(
        self, event: SsmEvent, settings: Settings, reading: tuple[Window, ...], prior: Prior
    ) -> tuple[Verdict, ...]:
        """A verdict for every crossing window that contains this event: in time order that is
        only the window ending at it; a late event may complete later windows too, and
        reporting each keeps the set of findings independent of arrival order."""
        del prior
        if _reached(event.call) is None:
            return ()
        threshold = settings.fanout_threshold
        return tuple(
            _verdict(event, settings, window)
            for window in reading
            if len(window.members) > threshold or window.unknown
        )


def _reached(call: object) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(explicit instance ids, unknown-size targets) a call reaches; None for calls that count
    nothing (other calls, runbooks that run no code)."""
    if isinstance(call, SendCommandCall):
        return reached_instances(call)
    if isinstance(call, AutomationCall):
        reach = code_reach(call)
        return None if reach is None else (reach.instance_ids, reach.unknown)
    return None


def _verdict(event: SsmEvent, settings: Settings, window: Window) -> Verdict:
    severity, reasons = _severity(window)
    account = event.account_id
    decisive = window.end.event_id  # the call that closes the window
    listed = window.members[:_MAX_CONTEXT_IDS]
    # The window's facts only, never the deciding call's (its id, comment, document, source
    # address): out of order a window is decided by whichever of its events arrives last, and
    # the finding must be the same in every order. Each call is its own SendCommand finding,
    # linked through RelatedFindings.
    context: dict[str, Any] = {
        "closing_event_id": decisive,
        "document_name": window.end.note or None,
        "documents": list(dict.fromkeys(e.note for e in window.events if e.note))[:10],
        "distinct_instances": len(window.members),
        "window_instance_ids": list(listed),
        "unknown_size_targets": list(window.unknown),
        "fanout_size": "unknown" if window.unknown else len(window.members),
        "threshold": settings.fanout_threshold,
        "window_start": iso(window.start),
        "window_end": iso(window.end.epoch),
        "contributing_event_ids": [e.event_id for e in window.events],
        "contributing_events": window_events(event, window, _MAX_CONTRIBUTING),
    }
    if window.capped:
        context["state_capped"] = (
            "this principal's fan-out state is at its bound: its oldest calls are dropped, so "
            "counts cover its most recent calls and may be lower than reached"
        )
    partition = partition_of(event.principal.arn or event.principal.role_arn)
    instances = tuple(
        instance_resource(
            i, window.member_events[i].origin or event.record.aws_region, account, partition
        )
        for i in listed
    )
    document = (
        (
            document_resource(
                window.end.note, window.end.origin or event.record.aws_region, account, partition
            ),
        )
        if window.end.note
        else ()
    )
    targets = tuple(Resource(type=ResourceType.TARGET, id=t[:256]) for t in window.unknown[:10])
    reach = "an unknown number of" if window.unknown else len(window.members)
    return Verdict.of_window(
        window,
        summary=(
            f"{event.principal.key} ran commands on {reach} instances within "
            f"{int(settings.fanout_window.total_seconds() // 60)} minutes"
        ),
        severity=severity,
        severity_reasons=reasons,
        resources=instances + document + targets + principal_resources(event.principal),
        context=context,
    )


def _severity(window: Window) -> tuple[Severity, tuple[str, ...]]:
    severity = METADATA.severity
    reasons: list[str] = []
    if window.unknown:
        severity = severity.raised()
        reasons.append("raised: targets an unknown number of instances (tags/wildcard)")
    if len(window.members) >= _VERY_LARGE_FANOUT:
        severity = severity.raised(2)
        reasons.append(f"raised two steps: {len(window.members)} distinct instances")
    elif len(window.members) >= _LARGE_FANOUT:
        severity = severity.raised()
        reasons.append(f"raised: {len(window.members)} distinct instances")
    return severity, tuple(reasons)


def _short_name(document: str | None) -> str:
    """The document's name as the finding shows it (an ARN reduced to its name)."""
    name = document or ""
    return name.rsplit("/", 1)[-1] if name.startswith("arn:") else name
