"""AWS.SSM.SecureStringHarvesting: one principal decrypts many parameters (issue 13, point 5).

Anchors: Panther `AWS.SSM.DecryptSSMParams` (MEDIUM, T1555: more than 10 distinct names per
actor and hour bucket, from `GetParameter`/`GetParameters` with `withDecryption`), Elastic's
new-terms "SecureString parameter request with decryption flag", and Stratus
`ssm-retrieve-securestring-parameters` (DescribeParameters, then 30 names via `GetParameters` in
batches of 10).

Ours, on the shared distinct-in-window block (`ssm_detect.state.distinct_window`), keyed by
account + principal: every decrypting read (`GetParameter`, `GetParameters`,
`GetParametersByPath` with `withDecryption: true`) adds the names it reads; the finding fires for
every window containing the event in which the principal decrypted more than the threshold
(default 10, as Panther; window 60 minutes, sliding instead of Panther's hour buckets) of
distinct names, counted across batches and calls. Parameters are regional: a member is
`name:<region>:<name>`, so `/db/password` in two regions is two secrets.
- `GetParametersByPath` names a path, not the names it returned (CloudTrail does not log the
  response): a path counts as one member (`path:<region>:<path>`); a recursive read of the root
  `/` decrypts every parameter of the region and fires by itself (a reach of unknown size).
- `DescribeParameters` by the same principal adds an enumeration member
  (`enumeration:<region>:<event id>`); a crossing window that holds one is raised to HIGH
  ("after enumeration", Stratus's first step). It is not a read and is not counted.
- HIGH as well when the principal is a person or a long-term key (IAM user, root, federated
  user, Identity Center user or permission-set role, an `AKIA` access key) rather than a
  workload role: applications read their own secrets all the time, people rarely read many.
- An application role that reads its own five SecureStrings every minute decrypts 5 distinct
  names per window and never fires; a workload role that legitimately reads more is put in
  `ALLOWLIST_JSON` under this detection's id, which also spares its events the state call.

Failed reads (AccessDenied, ParameterNotFound) decrypted nothing and do not count. An
unreadable `withDecryption` counts as a decrypting read and is named in the finding.
These calls reach the function only through the read-only rule (template.yaml,
`DecryptedParameterReadsRule`; README "Read-only rule: volume and cost").
"""

from __future__ import annotations

from typing import ClassVar

from detections.base import AttackRef, DetectionMetadata, Prior, Verdict
from detections.evidence import iso, window_events
from detections.resources import partition_of, principal_resources
from detections.stateful import Observed, StatefulDetection, caller_key, counts_caller
from ssm_detect.findings import Resource, ResourceType, Severity
from ssm_detect.models.event_time import to_epoch
from ssm_detect.principal import Principal
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import DescribeParametersCall, ParameterReadCall, SsmEvent
from ssm_detect.state.distinct_window import (
    EVENTS,
    MEMBERS,
    UNKNOWN,
    Bounds,
    Contribution,
    DistinctInWindow,
    Window,
)

NAME, PATH, ENUMERATION = "name", "path", "enumeration"
ROOT_PATH = "/"
_PEOPLE = frozenset({"IAMUser", "Root", "FederatedUser", "IdentityCenterUser"})
_IDENTITY_CENTER_MARKERS = ("/AWSReservedSSO_", "/aws-reserved/sso.amazonaws.com/")
_LONG_TERM_KEY_PREFIX = "AKIA"
_MAX_LISTED = 50
# Bounds far tighter than the block's defaults: the read-only rule delivers every decrypting
# read of every workload, and a DynamoDB update is billed by the item's size. A busy reader's
# item stays about 10 KB instead of 160 KB (README "Read-only rule: volume and cost"); what it
# costs is exactness above the bound, which is far above the threshold (a window counts at
# most KEEP members: enough to fire, `capped` says so).
_KEEP_PER_THRESHOLD = 4
_MIN_KEEP = 64
_HEADROOM = 64
_MAX_CONTRIBUTING = 50

METADATA = DetectionMetadata(
    id="AWS.SSM.SecureStringHarvesting",
    title="SSM Parameter Store: many parameters decrypted by one principal",
    description=(
        "One principal decrypted more distinct Parameter Store parameters (GetParameter, "
        "GetParameters, GetParametersByPath with withDecryption) within the window than the "
        "threshold allows, or decrypted every parameter of a region by path."
    ),
    severity=Severity.MEDIUM,
    attack=(
        AttackRef(
            tactic_id="TA0006",
            tactic="credential-access",
            technique_id="T1555",
            technique="Credentials from Password Stores",
        ),
        AttackRef(
            tactic_id="TA0006",
            tactic="credential-access",
            technique_id="T1552",
            technique="Unsecured Credentials",
        ),
    ),
    seed="Panther AWS.SSM.DecryptSSMParams; Elastic new-terms 'SecureString parameter request "
    "with decryption flag'; Stratus aws.credential-access.ssm-retrieve-securestring-parameters",
    references=(
        "https://stratus-red-team.cloud/attack-techniques/AWS/"
        "aws.credential-access.ssm-retrieve-securestring-parameters/",
        "https://github.com/panther-labs/panther-analysis (rules/aws_cloudtrail_rules/"
        "aws_ssm_decrypt_ssm_params.py)",
        "https://attack.mitre.org/techniques/T1555/",
    ),
    false_positives=(
        "Applications and deployment roles that read many of their own secrets at start-up "
        "(allowlist them by role under this detection's id).",
        "An engineer migrating or auditing parameters.",
    ),
    runbook=(
        "Determine whether the parameters hold credentials and whether the principal had a "
        "reason to read them. If not: revoke the session or disable the key, rotate every "
        "decrypted secret, and review the principal's calls after the reads (what the secrets "
        "open: databases, third-party APIs)."
    ),
)


class SecureStringHarvestingDetection(StatefulDetection[Contribution, tuple[Window, ...]]):
    metadata: ClassVar[DetectionMetadata] = METADATA

    def applies_to(self, event: SsmEvent, settings: Settings) -> bool:
        call = event.call
        reads = isinstance(call, ParameterReadCall) and call.decrypts
        return (
            (reads or isinstance(call, DescribeParametersCall))
            and event.record.succeeded
            and counts_caller(event, settings)
        )

    def block(self, settings: Settings) -> DistinctInWindow:
        return DistinctInWindow(settings.secret_read_window, bounds=bounds(settings))

    def observe(
        self, event: SsmEvent, settings: Settings, prior: Prior
    ) -> Observed[Contribution] | None:
        del settings, prior
        contribution = _contribution(event)
        if contribution is None:
            return None
        return Observed(caller_key(event, "secrets"), contribution)

    def judge(
        self, event: SsmEvent, settings: Settings, reading: tuple[Window, ...], prior: Prior
    ) -> tuple[Verdict, ...]:
        """A verdict for every crossing window that contains this event and ends at a read (a
        late DescribeParameters can raise a later window, never open one of its own)."""
        del prior
        return tuple(
            _verdict(event, settings, window)
            for window in reading
            if not _ends_with_enumeration(window) and _crosses(window, settings)
        )


def bounds(settings: Settings) -> Bounds:
    """The state bounds for the configured threshold: at least four times it kept."""
    keep = max(_MIN_KEEP, _KEEP_PER_THRESHOLD * settings.secret_read_threshold)
    return Bounds(
        keep={EVENTS: keep, MEMBERS: keep, UNKNOWN: 16},
        limits={EVENTS: keep + _HEADROOM, MEMBERS: keep + _HEADROOM, UNKNOWN: 32},
        stored_per_event={MEMBERS: 20, UNKNOWN: 2},
    )


def _contribution(event: SsmEvent) -> Contribution | None:
    call, region = event.call, event.record.aws_region
    if isinstance(call, ParameterReadCall):
        found = [f"{NAME}:{region}:{name}" for name in call.names]
        unknown = []
        if call.path is not None:
            if call.path.strip() == ROOT_PATH and call.request.recursive:
                unknown.append(f"every parameter of {region} (path / recursive)")
            else:
                found.append(f"{PATH}:{region}:{call.path}")
        members, reaches = tuple(dict.fromkeys(found)), tuple(unknown)
    elif isinstance(call, DescribeParametersCall):
        members, reaches = (f"{ENUMERATION}:{region}:{event.event_id}",), ()
    else:
        return None
    return Contribution(
        epoch=to_epoch(event.record.event_time),
        event_id=event.event_id,
        members=members,
        unknown=reaches,
        origin=region,
    )


def _read(window: Window) -> list[str]:
    return [m for m in window.members if not m.startswith(f"{ENUMERATION}:")]


def _crosses(window: Window, settings: Settings) -> bool:
    return len(_read(window)) > settings.secret_read_threshold or bool(window.unknown)


def _ends_with_enumeration(window: Window) -> bool:
    end = window.end
    return any(m == f"{ENUMERATION}:{end.origin}:{end.event_id}" for m in window.members)


def is_person(principal: Principal) -> bool:
    """A human or a long-term key, rather than a workload role's temporary credentials."""
    role = principal.role_arn or ""
    return (
        principal.type in _PEOPLE
        or (principal.access_key_id or "").startswith(_LONG_TERM_KEY_PREFIX)
        or any(marker in role for marker in _IDENTITY_CENTER_MARKERS)
    )


def _severity(event: SsmEvent, window: Window) -> tuple[Severity, tuple[str, ...]]:
    person = is_person(event.principal)
    enumerated = any(m.startswith(f"{ENUMERATION}:") for m in window.members)
    reasons = []
    if person:
        reasons.append("raised to HIGH: a person or long-term key, not a workload role")
    if enumerated:
        reasons.append("raised to HIGH: after DescribeParameters enumeration in the window")
    return (Severity.HIGH if person or enumerated else METADATA.severity), tuple(reasons)


def _verdict(event: SsmEvent, settings: Settings, window: Window) -> Verdict:
    account = event.account_id
    read = _read(window)
    names = [m.split(":", 2) for m in read[:_MAX_LISTED]]
    severity, reasons = _severity(event, window)
    partition = partition_of(event.principal.arn or event.principal.role_arn)
    context: dict[str, object] = {
        "distinct_parameters": len(read),
        "window_parameters": [
            f"{value} ({region})" if kind == NAME else f"{value}* by path ({region})"
            for kind, region, value in names
        ],
        "all_parameters_of": list(window.unknown),
        "enumerated": sum(1 for m in window.members if m.startswith(f"{ENUMERATION}:")),
        "threshold": settings.secret_read_threshold,
        "window_start": iso(window.start),
        "window_end": iso(window.end.epoch),
        "source_ip": event.record.source_ip_address,
        "user_agent": event.record.user_agent,
        "contributing_events": window_events(event, window, _MAX_CONTRIBUTING),
    }
    call = event.call
    if isinstance(call, ParameterReadCall) and call.request.oddities:
        context["malformed_fields"] = list(call.request.oddities)
    if window.capped:
        context["state_capped"] = (
            "this principal's read state is at its bound: counts cover its most recent reads "
            "and may be lower than reached"
        )
    resources = tuple(
        _parameter_resource(value, region, account, partition)
        for kind, region, value in names[:20]
        if kind == NAME
    )
    minutes = int(settings.secret_read_window.total_seconds() // 60)
    reach = "every parameter of a region" if window.unknown else f"{len(read)} parameters"
    return Verdict.of_window(
        window,
        summary=f"{event.principal.key} decrypted {reach} within {minutes} minutes",
        severity=severity,
        severity_reasons=reasons,
        resources=resources + principal_resources(event.principal),
        context=context,
    )


def _parameter_resource(name: str, region: str, account: str, partition: str) -> Resource:
    if name.startswith("arn:"):
        return Resource(type=ResourceType.TARGET, id=name, label=name.rsplit(":", 1)[-1])
    path = name if name.startswith("/") else f"/{name}"
    arn = f"arn:{partition}:ssm:{region}:{account}:parameter{path}"
    return Resource(type=ResourceType.TARGET, id=arn, label=name)
