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

Bounded state. The item holds a member per call, per instance and per unknown-size target for
two windows, so unbounded it grows with the principal's call rate: fleet automation at one call
a second reaches DynamoDB's 400 KB item limit in about two hours, and from then on every update
of the item fails (retries, dead letters, no detection for that principal). Two bounds keep it
well below the limit, whatever the rate:
- Eviction: past `KEEP_MEMBERS`, `state_prune` drops a set's oldest members in the same
  batched prune that drops stale ones, so the item holds the principal's most recent calls
  (1,000 calls: the last ~17 minutes at one call a second).
- A hard limit inside the update (`StateUpdate.limits`): should prunes fall behind (many
  concurrent invocations, a failed prune, an item grown before these bounds), the store refuses
  the update once a set holds its `MEMBER_LIMITS`, in the same atomic `UpdateItem`, and returns
  the item as it is. The event is still evaluated, on what is held plus its own members, so its
  own window is judged as before; only later windows do not see it.
Why evict the oldest rather than stop adding at the cap: a frozen set would keep calls from the
start of a busy spell and, an hour on, no window would contain them. Why not drop past-window
members in the update itself: DynamoDB deletes set members only by value, which the update does
not know before it runs; and at one call a second even one window's calls alone (3,600 x ~116
bytes with their instances) would be over the limit. What it costs: a window with more calls than
the state holds is judged on its most recent ones, so it may count fewer instances than it
reached, never more. Such a principal is far above the threshold unless its recent calls keep to
at most threshold instances, exactly when it should not fire; its findings still open and join
suppression windows as before, and say `state_capped` in their context. A principal that stays
under the bounds (in two windows fewer than 1,000 calls, 1,000 instance members and 64 unknown-
size targets; at most 100 instances and 10 such targets a call) is judged exactly as without
them.
"""

from __future__ import annotations

from collections.abc import Mapping
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
# The bounds of the module docstring. With CloudTrail's shapes (36-character event ids, 19- or
# 20-character instance ids) a call member is 48 bytes, an instance member 68 and an unknown-size
# target member at most 305 (its description is cut to 256): the steady state of a one-instance-
# a-second principal is ~120 KB (measured in tests/test_dynamodb_local_limits.py), and at the
# hard limits the item is at most 1,250 x 48 + 1,350 x 68 + 135 x 305 bytes, about 193 KB.
# (The counts bound any item; these sizes assume CloudTrail's shapes: the parser admits event ids
# of up to 256 characters, with which the same counts would make a larger item.)
# Between a bound and its limit is room for one prune batch plus one call's members, so a lone
# writer never meets the limit; the rest is for concurrent writers ahead of their prunes.
KEEP_MEMBERS = {CALLS: 1_000, INSTANCES: 1_000, UNBOUNDED: 64}
MEMBER_LIMITS = {CALLS: 1_250, INSTANCES: 1_250, UNBOUNDED: 125}
# One call may name up to 50 instances (SendCommand's own limit; the parser allows far more):
# beyond these, its members are not stored, which later windows see as a smaller fan-out of a
# call that crossed the threshold on its own. The call's own verdict counts all of them.
STORED_PER_CALL = {INSTANCES: 100, UNBOUNDED: 10}
# A prune names the members it deletes; bounding them bounds the request, and an item that grew
# before these bounds shrinks over a few events instead of in one oversized request.
_MAX_PRUNED_PER_SET = 1_000
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
        add = _own_members(event, call, STORED_PER_CALL)
        return StateUpdate(
            key=_state_key(event),
            add={name: values for name, values in add.items() if values},
            retention=settings.fanout_window * _RETENTION_WINDOWS,
            limits=MEMBER_LIMITS,
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
        # The store may have refused this event's members (a set at its limit): decide on what
        # it holds plus them, so the event's own window is judged all the same.
        own = _own_members(event, call)
        capped = not own[CALLS] <= state.get(CALLS, frozenset()) or any(
            len(state.get(name, ())) >= keep for name, keep in KEEP_MEMBERS.items()
        )
        held = {name: state.get(name, frozenset()) | own[name] for name in own}
        return tuple(
            _verdict(event, call, settings, window, capped=capped)
            for window in _crossing_windows(event, settings, held)
        )

    def state_prune(
        self, event: SsmEvent, settings: Settings, state: StateSnapshot
    ) -> StatePrune | None:
        # The event's own time counts: a refused update left it out of `state`, and an item
        # held at its limit must still age.
        own = to_epoch(event.record.event_time)
        newest = max((members.decode(m)[0] for m in state.get(CALLS, ())), default=own)
        horizon = max(newest, own) - int(
            (settings.fanout_window * _RETENTION_WINDOWS).total_seconds()
        )
        remove = {}
        for name, held in state.items():
            stale = members.stale(held, horizon)
            kept = sorted(held - stale)  # member order is time order
            excess = len(kept) - KEEP_MEMBERS.get(name, len(kept))
            # Past the bound, the oldest go (module docstring: bounded state).
            dropped = sorted(stale | frozenset(kept[:excess] if excess > 0 else ()))
            remove[name] = frozenset(dropped[:_MAX_PRUNED_PER_SET])
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


def _own_members(
    event: SsmEvent, call: SendCommandCall, stored: Mapping[str, int] | None = None
) -> dict[str, frozenset[str]]:
    """The members this call adds, every set present (possibly empty); with `stored`, at most
    that many of a set's members (the first, in the call's own order: deterministic)."""
    epoch = to_epoch(event.record.event_time)
    explicit, unbounded = reached_instances(call)
    if stored is not None:
        explicit = explicit[: stored[INSTANCES]]
        unbounded = unbounded[: stored[UNBOUNDED]]
    return {
        CALLS: frozenset({members.encode(epoch, event.event_id)}),
        INSTANCES: frozenset(members.encode(epoch, f"{event.event_id}|{i}") for i in explicit),
        UNBOUNDED: frozenset(members.encode(epoch, f"{event.event_id}|{t}") for t in unbounded),
    }


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
    event: SsmEvent, call: SendCommandCall, settings: Settings, window: _Window, *, capped: bool
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
    if capped:
        context["state_capped"] = (
            "this principal's fan-out state is at its bound: its oldest calls are dropped, so "
            "counts cover its most recent calls and may be lower than reached"
        )
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
