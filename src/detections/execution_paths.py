"""What the execution-path detections (associations, automation, maintenance windows, document
changes) share: which documents run code, how far a set of targets reaches, what the visible
parameters say, and the parts of a verdict every one of them fills the same way."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from detections.content_inspection import ContentReport, escalate, hits_context, inspect_content
from detections.resources import document_resource, partition_of, principal_resources
from ssm_detect.findings import Resource, ResourceType, Severity
from ssm_detect.models.ssm_calls import HIDDEN, Target
from ssm_detect.ssm_event import SsmEvent

SHELL_DOCUMENTS = frozenset(
    {
        "AWS-RunShellScript",
        "AWS-RunPowerShellScript",
        "AWS-RunRemoteScript",
        "AWS-RunDocument",
        "AWS-ApplyAnsiblePlaybooks",
        "AWS-RunAnsiblePlaybook",
        "AWS-RunSaltState",
        "AWS-StartInteractiveCommand",
    }
)
"""AWS-owned documents that run whatever commands, scripts or playbooks they are given."""
AWS_OWNED_PREFIXES: tuple[str, ...] = (
    *("AWS-", "AWSSupport-", "AWSEC2-", "AmazonCloudWatch-", "AWSFleetManager-"),
    *("AWSConfigRemediation-", "AWSSSO-", "AWSQuickSetup", "AWSResilienceHub-"),
)
"""Name prefixes of documents AWS owns (customers cannot create names with them)."""
ALL_INSTANCES = "*"
_ID_KEYS = frozenset({"instanceids", "instanceid"})
_COMMAND_KEYS = frozenset(
    {"commands", "command", "script", "scriptbody", "inlinescript", "runcommand", "sourceinfo"}
)
"""Parameter names that carry code (AWS-RunShellScript `commands`, executeScript `Script`,
AWS-RunRemoteScript `sourceInfo`)."""
_MAX_LISTED = 10

Judged = tuple[Severity, tuple[str, ...], dict[str, Any]]
"""One item of a call judged alone (an association of a batch, a runbook of a change request):
its severity, the reasons for it, and its part of the finding's context."""


def short_name(document: str | None) -> str | None:
    """A document's name, ARNs reduced to it (`arn:aws:ssm:r:a:document/X` -> `X`)."""
    if not document:
        return None
    return document.rsplit("/", 1)[-1] if document.startswith("arn:") else document


def owner_account(document: str | None) -> str | None:
    """The account an ARN names the document in; None for a plain name."""
    if not document or not document.startswith("arn:"):
        return None
    parts = document.split(":")
    return parts[4] if len(parts) > 5 and parts[4] else None


def is_aws_owned(document: str | None) -> bool:
    name = short_name(document)
    return bool(name) and name.startswith(AWS_OWNED_PREFIXES)  # type: ignore[union-attr]


@dataclass(frozen=True)
class CodeRunner:
    """Why a document is judged to run code: an AWS shell runner, or a customer document whose
    content we cannot see here (it may run anything)."""

    document: str
    reason: str
    certain: bool
    """True for the AWS shell runners; False for customer documents (content unknown here)."""


def code_runner(document: str | None) -> CodeRunner | None:
    name = short_name(document)
    if not name or not document:
        return None
    if name in SHELL_DOCUMENTS:
        return CodeRunner(document, f"{name} runs the commands it is given", certain=True)
    if not is_aws_owned(name):
        return CodeRunner(document, f"customer document {name} may run any command", certain=False)
    return None


@dataclass(frozen=True)
class Reach:
    """Where something runs: explicit instances, and targets of unknown size."""

    instance_ids: tuple[str, ...]
    unknown: tuple[str, ...]
    """Tag, resource-group and wildcard targets, as `key=values` for the finding."""

    @property
    def describe(self) -> str:
        parts = []
        if self.instance_ids:
            parts.append(f"{len(self.instance_ids)} instance(s)")
        parts += list(self.unknown)
        return ", ".join(parts) or "no target named"

    @property
    def wide(self) -> bool:
        """Every instance, or every instance a tag or group selects: fleet-wide."""
        return bool(self.unknown)


def reach_of(targets: Iterable[Target], instance_ids: Iterable[str] = ()) -> Reach:
    ids: list[str] = []
    unknown: list[str] = []
    for instance in instance_ids:
        (unknown if instance == ALL_INSTANCES else ids).append(instance)
    for target in targets:
        if target.key.lower() in _ID_KEYS:
            for value in target.values:
                (unknown if value == ALL_INSTANCES else ids).append(value)
        else:
            unknown.append(f"{target.key}={','.join(target.values[:5])}")
    shown = ["all instances" if u == ALL_INSTANCES else u for u in unknown]
    return Reach(tuple(dict.fromkeys(ids)), tuple(dict.fromkeys(shown)))


def visible(parameters: object) -> bool:
    return isinstance(parameters, dict | list)


def inspect_parameters(parameters: object) -> ContentReport | None:
    """The inspector over parameters CloudTrail shows; None when hidden or absent."""
    if not visible(parameters):
        return None
    return inspect_content(json.dumps(parameters, default=str))


def code_parameters(parameters: object) -> dict[str, Any]:
    """The visible parameters that carry code, for the finding (values cut short)."""
    if not isinstance(parameters, dict):
        return {}
    return {
        str(name): _shown(value)
        for name, value in parameters.items()
        if str(name).lower() in _COMMAND_KEYS
    }


def _shown(value: object) -> object:
    if isinstance(value, list):
        return [str(item)[:200] for item in value[:10]]
    return str(value)[:200]


def with_content_evidence(
    severity: Severity, reasons: list[str], context: dict[str, Any], parameters: object
) -> Severity:
    """Raise by what the visible parameters show (the severity model), noting it in context."""
    report = inspect_parameters(parameters)
    if report is None:
        if parameters == HIDDEN:
            context["parameters"] = HIDDEN
        return severity
    raised, why = escalate(severity, report)
    reasons.extend(why)
    if report.hits:
        context["parameter_findings"] = hits_context(report)
    shown = code_parameters(parameters)
    if shown:
        context["code_parameters"] = shown
    return raised


def ssm_resource(event: SsmEvent, kind: str, name: str, label: str | None = None) -> Resource:
    """An SSM resource of the event's own account and region (association, automation
    execution, maintenance window): regional, so its ARN names both."""
    record = event.record
    partition = partition_of(event.principal.arn or event.principal.role_arn)
    arn = f"arn:{partition}:ssm:{record.aws_region}:{event.account_id}:{kind}/{name}"
    return Resource(type=ResourceType.SSM_DOCUMENT, id=arn, label=label or name)


def document_and_principal(event: SsmEvent, document: str | None) -> tuple[Resource, ...]:
    found = list(principal_resources(event.principal))
    if document:
        partition = partition_of(event.principal.arn or event.principal.role_arn)
        record = event.record
        found.insert(0, document_resource(document, record.aws_region, event.account_id, partition))
    return tuple(found)


def base_context(event: SsmEvent, malformed: tuple[str, ...]) -> dict[str, Any]:
    context: dict[str, Any] = {
        "event_name": event.record.event_name,
        "source_ip": event.record.source_ip_address,
        "user_agent": event.record.user_agent,
    }
    if malformed:
        context["malformed_fields"] = list(malformed)
    return context


def service_lowered(event: SsmEvent, severity: Severity, reasons: list[str]) -> Severity:
    """Calls an AWS service made on its own (not on a person's behalf) are service activity."""
    if not event.principal.is_aws_service:
        return severity
    reasons.append("lowered to LOW: made by an AWS service principal")
    return min(severity, Severity.LOW, key=lambda s: s.rank)


def strongest(
    event: SsmEvent,
    malformed: tuple[str, ...],
    judged: list[Judged],
    listed_as: str,
    call_facts: dict[str, Any] | None = None,
) -> Judged:
    """The finding of a call that carries several items, each judged alone: the most severe
    item's, after the call's own context (`call_facts` follow the item's), every item listed
    under `listed_as` when there is more than one, lowered when an AWS service made the call."""
    severity, reasons, context = max(judged, key=lambda j: j[0].rank)
    context = {**base_context(event, malformed), **context, **(call_facts or {})}
    if len(judged) > 1:
        context[listed_as] = [j[2] for j in judged[:_MAX_LISTED]]
    reason_list = list(reasons)
    severity = service_lowered(event, severity, reason_list)
    return severity, tuple(reason_list), context
