"""AWS.SSM.HybridActivation: a hybrid activation by a rare principal or for an unexpected role
(issue 13, point 6).

`CreateActivation` mints an activation code and id with which ANY machine that has them can
install the SSM Agent and register as a managed node (`mi-...`) holding the given IAM role's
credentials: an attacker with `ssm:CreateActivation` and `iam:PassRole` turns their own machine
into a node with that role, outside every VPC control. Legitimate activations are rare and made
by a few platform roles for a few known roles.

Fires HIGH when either holds, the reasons saying which:
- the principal made no activation within the history window before this one (the shared
  first-seen block, `ssm_detect.state.first_seen`, keyed by account + principal: Elastic's
  new-terms semantics, as the rare document creator; every activation refreshes it);
- the role is not in `ACTIVATION_ROLES_JSON` (role name or ARN patterns; empty by default, so
  every role is unexpected until the deployment names its hybrid-node roles: more noise, never
  silence).
A known activator handing out an allowed role is not reported. The registration limit and the
expiry are in the finding (a limit of 1,000 is a fleet's worth of machines).

Not done here: linking the activation to the first `mi-` node that registers with it. We looked
for the CloudTrail shape of the agent's registration (`RegisterManagedInstance`, an IAM action
the agent needs) and of a node's first call (`UpdateInstanceInformation` by the activation's
role with session name `mi-...`) in AWS's documentation and public sample records and found no
record to build an event file from; and `UpdateInstanceInformation` is every managed node's
heartbeat (every few minutes, EC2 instances included), so matching it would cost an invocation
per node per heartbeat. No event name is added for it. The finding carries the activation id,
and the runbook the lookup (ssm:DescribeInstanceInformation with the `ActivationIds` filter).
"""

from __future__ import annotations

import fnmatch
from typing import ClassVar

from detections.base import AttackRef, DetectionMetadata, OfCall, Prior, Verdict
from detections.resources import principal_resources
from detections.stateful import Observed, StatefulDetection, caller_key, sighting
from ssm_detect.findings import Resource, ResourceType, Severity
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import CreateActivationCall, SsmEvent
from ssm_detect.state.first_seen import FirstSeen, FirstSeenReading, Sighting

METADATA = DetectionMetadata(
    id="AWS.SSM.HybridActivation",
    title="SSM hybrid activation created by a rare principal or for an unexpected role",
    description=(
        "A principal created a Systems Manager hybrid activation: a code with which any machine "
        "can register as a managed node holding the activation's IAM role. The principal had "
        "made no activation within the history window, or the role is not one the deployment "
        "expects hybrid nodes to use."
    ),
    severity=Severity.HIGH,
    attack=(
        AttackRef(
            tactic_id="TA0003",
            tactic="persistence",
            technique_id="T1078.004",
            technique="Valid Accounts: Cloud Accounts",
        ),
        AttackRef(
            tactic_id="TA0006",
            tactic="credential-access",
            technique_id="T1552",
            technique="Unsecured Credentials (the role's credentials on a machine of their choice)",
        ),
    ),
    seed="ours (issue 13 point 6), with Elastic's new-terms semantics for the principal",
    references=(
        "https://docs.aws.amazon.com/systems-manager/latest/userguide/"
        "hybrid-multicloud-managed-nodes.html",
        "https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateActivation.html",
    ),
    false_positives=(
        "A platform team onboarding on-premises servers or edge devices for the first time.",
        "A new hybrid-node role not yet listed in ACTIVATION_ROLES_JSON.",
    ),
    runbook=(
        "Ask the principal's owner whether the activation is expected. If not: delete it "
        "(ssm:DeleteActivation), list nodes registered with it (ssm:DescribeInstanceInformation, "
        "filter ActivationIds) and deregister them (ssm:DeregisterManagedInstance), and review "
        "what the role allows and the principal's iam:PassRole rights."
    ),
)


class HybridActivationDetection(
    OfCall[CreateActivationCall], StatefulDetection[Sighting, FirstSeenReading]
):
    metadata: ClassVar[DetectionMetadata] = METADATA
    call_type: ClassVar[type] = CreateActivationCall

    def block(self, settings: Settings) -> FirstSeen:
        return FirstSeen(settings.history_window, attribute="activations")

    def observe(self, event: SsmEvent, settings: Settings, prior: Prior) -> Observed[Sighting]:
        del settings, prior
        return Observed(caller_key(event, "activator"), sighting(event))

    def judge(
        self, event: SsmEvent, settings: Settings, reading: FirstSeenReading, prior: Prior
    ) -> tuple[Verdict, ...]:
        del prior
        call = self.call_of(event)
        if call is None:
            return ()
        reasons = []
        if reading.first:
            days = settings.history_window.days
            reasons.append(f"no activation by this principal in the previous {days} days")
        if not role_allowed(call.iam_role, settings.activation_roles):
            reasons.append(f"role {call.iam_role!s} is not in ACTIVATION_ROLES_JSON")
        if not reasons:
            return ()
        return (_verdict(event, call, reading, tuple(reasons)),)


def role_allowed(role: str | None, patterns: tuple[str, ...]) -> bool:
    """Whether an activation's role (a name, a path/name or an ARN) matches an allowed pattern;
    patterns match the name, or the ARN when they are ARNs."""
    if not role:
        return False
    name = role.rsplit("/", 1)[-1]
    return any(
        fnmatch.fnmatchcase(role if pattern.startswith("arn:") else name, pattern)
        for pattern in patterns
    )


def _verdict(
    event: SsmEvent, call: CreateActivationCall, reading: FirstSeenReading, reasons: tuple[str, ...]
) -> Verdict:
    request = call.request
    record = event.record
    resources: tuple[Resource, ...] = ()
    if call.iam_role:
        role = call.iam_role
        arn = role if role.startswith("arn:") else f"arn:aws:iam::{event.account_id}:role/{role}"
        resources = (Resource(type=ResourceType.IAM_ROLE, id=arn, label=role),)
    return Verdict.of_event(
        event,
        summary=(
            f"{event.principal.key} created hybrid activation {call.activation_id or '?'} for "
            f"role {call.iam_role or '(none named)'} ({'; '.join(reasons)})"
        ),
        severity=METADATA.severity,
        severity_reasons=reasons,
        resources=resources + principal_resources(event.principal),
        context={
            "activation_id": call.activation_id,
            "iam_role": call.iam_role,
            "registration_limit": request.registration_limit,
            "expiration_date": request.expiration_date,
            "default_instance_name": request.default_instance_name,
            "description": request.description,
            "first_activation_in_window": reading.first,
            "previous_activation_event_id": reading.previous.event_id if reading.previous else None,
            "source_ip": record.source_ip_address,
            "user_agent": record.user_agent,
        },
    )
