"""AWS.SSM.DistributedCommand: SendCommand fanned out to many instances (Panther).

Panther unions instance ids per (actor, hour bucket) and fires above 2. We differ on purpose:
- a sliding window (default 60 min) instead of hour buckets, so 2 instances at 10:59 and 2 at
  11:01 are one fan-out;
- one atomic update (a set union) that returns the whole window, instead of read-then-write,
  so concurrent invocations cannot both miss the threshold;
- ids from `instanceIds`, the response's `instanceIds` and `targets` keyed `InstanceIds` (any
  case); tag, resource-group and wildcard targets reach an unknown number of instances and
  count as a fan-out of unknown size.

Order independence: each call closes one window: the calls at or before it, ordered by (event
time, event id), within the window length. An event that arrives late is checked against every
window that contains it (its own and those of later calls within one window length), so the
same calls fire the same findings whatever order they arrive in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from detections import members
from detections.base import (
    CLOUD_ADMINISTRATION_COMMAND,
    NO_PRIOR,
    AttackRef,
    Detection,
    DetectionMetadata,
    Prior,
    Verdict,
)
from detections.context import send_command_context, send_command_resources
from detections.resources import principal_resources
from ssm_detect.findings import Resource, ResourceType, Severity
from ssm_detect.models.event_time import to_epoch
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SendCommandCall, SsmEvent
from ssm_detect.state import StatePrune, StateSnapshot, StateUpdate

INSTANCES = "instances"  # "<epoch>|<event id>|<instance id>"
CALLS = "calls"  # "<epoch>|<event id>"
UNBOUNDED = "unbounded"  # "<epoch>|<event id>|<target>": tag / resource-group / wildcard targets

_EXPLICIT_TARGET_KEY = "instanceids"
_WILDCARD = "*"
# Members are kept for two windows so a late event still sees the calls around it; pruning waits
# until enough are stale to be worth a second call, or the item grows past a size we accept.
_RETENTION_WINDOWS = 2
_PRUNE_AT_STALE = 32
_MAX_INSTANCE_MEMBERS = 2000
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


@dataclass(frozen=True)
class _Window:
    end: int
    instances: tuple[str, ...]
    unbounded_targets: tuple[str, ...]
    calls: tuple[tuple[int, str], ...]

    def crosses(self, threshold: int) -> bool:
        return len(self.instances) > threshold or bool(self.unbounded_targets)


class DistributedCommandDetection(Detection):
    metadata: ClassVar[DetectionMetadata] = METADATA

    def applies_to(self, event: SsmEvent, settings: Settings) -> bool:
        # Failed calls ran nothing, so they do not count toward a fan-out.
        return (
            isinstance(event.call, SendCommandCall)
            and event.record.succeeded
            and (settings.include_service_principals or not event.principal.is_aws_service)
        )

    def state_update(
        self, event: SsmEvent, settings: Settings, prior: Prior = NO_PRIOR
    ) -> StateUpdate | None:
        del prior
        call = event.call
        if not isinstance(call, SendCommandCall):
            return None
        epoch = to_epoch(event.record.event_time)
        explicit, unbounded = reached_instances(call)
        add = {
            CALLS: frozenset({members.encode(epoch, event.event_id)}),
            INSTANCES: frozenset(members.encode(epoch, f"{event.event_id}|{i}") for i in explicit),
            UNBOUNDED: frozenset(members.encode(epoch, f"{event.event_id}|{t}") for t in unbounded),
        }
        return StateUpdate(
            key=_state_key(event),
            add={name: values for name, values in add.items() if values},
            retention=settings.fanout_window * _RETENTION_WINDOWS,
        )

    def evaluate(
        self, event: SsmEvent, settings: Settings, state: StateSnapshot, prior: Prior = NO_PRIOR
    ) -> Verdict | None:
        verdicts = self.evaluate_all(event, settings, state, prior)
        return verdicts[0] if verdicts else None

    def evaluate_all(
        self, event: SsmEvent, settings: Settings, state: StateSnapshot, prior: Prior = NO_PRIOR
    ) -> tuple[Verdict, ...]:
        """A verdict for every crossing window that contains this event: in time order that is
        only the window ending at it; a late event may complete later windows too, and
        reporting each keeps the set of findings independent of arrival order."""
        del prior
        call = event.call
        if not isinstance(call, SendCommandCall):
            return ()
        return tuple(
            _verdict(event, call, settings, window)
            for window in _crossing_windows(event, settings, state)
        )

    def state_prune(
        self, event: SsmEvent, settings: Settings, state: StateSnapshot
    ) -> StatePrune | None:
        newest = max((members.decode(m)[0] for m in state.get(CALLS, ())), default=0)
        horizon = newest - int((settings.fanout_window * _RETENTION_WINDOWS).total_seconds())
        remove = {name: members.stale(held, horizon) for name, held in state.items()}
        instances = state.get(INSTANCES, frozenset()) - remove.get(INSTANCES, frozenset())
        if len(instances) > _MAX_INSTANCE_MEMBERS:
            # A principal this busy has crossed the threshold many times over; the oldest
            # members cannot change a verdict any more.
            excess = sorted(instances)[: len(instances) - _MAX_INSTANCE_MEMBERS]
            remove[INSTANCES] = remove.get(INSTANCES, frozenset()) | frozenset(excess)
        if sum(len(v) for v in remove.values()) < _PRUNE_AT_STALE:
            return None
        return StatePrune(key=_state_key(event), remove={k: v for k, v in remove.items() if v})


def reached_instances(call: SendCommandCall) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(explicit instance ids, descriptions of targets that reach an unknown number)."""
    explicit = [i for i in call.instance_ids if i != _WILDCARD]
    unbounded = [f"instanceIds={_WILDCARD}"] if _WILDCARD in call.instance_ids else []
    for target in call.targets:
        if target.key.lower() == _EXPLICIT_TARGET_KEY and _WILDCARD not in target.values:
            explicit.extend(target.values)
        else:
            unbounded.append(f"{target.key}={','.join(target.values)}"[:256])
    return tuple(dict.fromkeys(explicit)), tuple(dict.fromkeys(unbounded))


def _crossing_windows(event: SsmEvent, settings: Settings, state: StateSnapshot) -> list[_Window]:
    """The windows containing this event that cross the threshold, earliest first."""
    length = int(settings.fanout_window.total_seconds())
    own = (to_epoch(event.record.event_time), event.event_id)
    calls = members.decode_all(state.get(CALLS, ()))
    instances = [_by_call(m) for m in members.decode_all(state.get(INSTANCES, ()))]
    unbounded = [_by_call(m) for m in members.decode_all(state.get(UNBOUNDED, ()))]
    closing = sorted({own} | {c for c in calls if own < c and c[0] <= own[0] + length})
    crossing = []
    for end in closing:

        def inside(call: tuple[int, str], end: tuple[int, str] = end) -> bool:
            return end[0] - length <= call[0] and call <= end

        window = _Window(
            end=end[0],
            instances=tuple(dict.fromkeys(value for call, value in instances if inside(call))),
            unbounded_targets=tuple(
                dict.fromkeys(value for call, value in unbounded if inside(call))
            ),
            calls=tuple(c for c in calls if inside(c)),
        )
        if window.crosses(settings.fanout_threshold):
            crossing.append(window)
    return crossing


def _by_call(member: tuple[int, str]) -> tuple[tuple[int, str], str]:
    """`(epoch, "<event id>|<value>")` -> `((epoch, event id), value)`."""
    epoch, rest = member
    event_id, _, value = rest.partition("|")
    return (epoch, event_id), value


def _verdict(
    event: SsmEvent, call: SendCommandCall, settings: Settings, window: _Window
) -> Verdict:
    severity, reasons = _severity(window)
    start = window.end - int(settings.fanout_window.total_seconds())
    decisive = window.calls[-1][1]  # the call that closes the window
    listed = window.instances[:_MAX_CONTEXT_IDS]
    context = send_command_context(event, call) | {
        "distinct_instances": len(window.instances),
        "window_instance_ids": list(listed),
        "unknown_size_targets": list(window.unbounded_targets),
        "fanout_size": "unknown" if window.unbounded_targets else len(window.instances),
        "threshold": settings.fanout_threshold,
        "window_start": _iso(start),
        "window_end": _iso(window.end),
        "contributing_event_ids": [eid for _, eid in window.calls],
    }
    targets = tuple(
        Resource(type=ResourceType.TARGET, id=t[:256]) for t in window.unbounded_targets[:10]
    )
    times = [t for t, _ in window.calls]
    reach = "an unknown number of" if window.unbounded_targets else len(window.instances)
    return Verdict(
        summary=(
            f"{event.principal.key} ran commands on {reach} instances within "
            f"{int(settings.fanout_window.total_seconds() // 60)} minutes"
        ),
        decisive_event_id=decisive,
        event_ids=tuple(eid for _, eid in window.calls),
        first_seen=_datetime(min(times)),
        last_seen=_datetime(max(times)),
        severity=severity,
        severity_reasons=reasons,
        resources=send_command_resources(event, call, listed)
        + targets
        + principal_resources(event.principal),
        context=context,
    )


def _severity(window: _Window) -> tuple[Severity, tuple[str, ...]]:
    severity = METADATA.severity
    reasons: list[str] = []
    if window.unbounded_targets:
        severity = severity.raised()
        reasons.append("raised: targets an unknown number of instances (tags/wildcard)")
    if len(window.instances) >= _VERY_LARGE_FANOUT:
        severity = severity.raised(2)
        reasons.append(f"raised two steps: {len(window.instances)} distinct instances")
    elif len(window.instances) >= _LARGE_FANOUT:
        severity = severity.raised()
        reasons.append(f"raised: {len(window.instances)} distinct instances")
    return severity, tuple(reasons)


def _state_key(event: SsmEvent) -> str:
    return f"fanout#{event.account_id}#{event.principal.key}"


def _datetime(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _iso(epoch: int) -> str:
    return _datetime(epoch).isoformat().replace("+00:00", "Z")
