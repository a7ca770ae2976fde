"""A finding as an ASFF document for `securityhub:BatchImportFindings` (pure: no boto3, no clock).

Cross-account choice: import under the account that calls Security Hub.
    With the default product ARN (`arn:<partition>:securityhub:<region>:<account>:product/
    <account>/default`) Security Hub only accepts a finding whose `AwsAccountId` is the calling
    account. When the stack runs in a central security account and the activity happened in a
    member account, `AwsAccountId` is therefore the security (importing) account, and the member
    account is named where analysts look for it:
    - `ProductFields["ssm-detect/member_account"]` (and `.../member_region`), always present;
    - `Resources`: the instance, document and principal ARNs carry the member account and the
      member region, and an `AwsAccount` resource (`AWS::::Account:<member>`) is added when the
      member differs from the importing account.
    The alternative, assuming a role in each member account and importing there, needs a role and
    Security Hub in every member account and a second trust path for the detector; importing
    centrally keeps one writer and one place to look. Its cost: filters on `AwsAccountId` show
    the security account, so filter on `ResourceId` or the `member_account` product field.

Limits enforced (AWS Security Hub API reference and user guide):
    `Title` <= 256 characters, `Description` <= 1024, `Resources` <= 32 entries, `Resource.Type`
    <= 256 and `Resource.Region` <= 16, `ProductFields` <= 50 entries with keys <= 128 and values
    <= 2048 characters, `Types` <= 50, `Remediation.Recommendation.Text` <= 512,
    `AwsApiCallAction.Api` <= 128, and the whole finding <= 240 KB (measured here as 240,000
    bytes of ASCII-escaped JSON, the strictest reading). Every string is non-blank (the API's
    `.*\\S.*` pattern) and single-line. Context values keep their JSON kind in text: `true`,
    `24` (not Python's `True`, `24.0`).

Severity and types go both to the top level (required fields) and to `FindingProviderFields`,
which is what Security Hub reads on updates. Severity reasons go to `ProductFields`, not to
`Note` or `UserDefinedFields`: those two are the customers' workflow fields, which
`BatchImportFindings` does not update once the finding exists, so a later re-import with new
reasons would be silently dropped.
"""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ssm_detect.findings import Finding, Resource, ResourceType
from ssm_detect.render import evidence
from ssm_detect.render.escape import ELLIPSIS, as_text, one_line, truncate
from ssm_detect.render.evidence import CONTENT_KEY
from ssm_detect.render.facts import (
    ACTORS,
    CONTRIBUTING_EVENTS,
    Actor,
    actors,
    contributing_events,
    event_place,
)

SCHEMA_VERSION = "2018-10-08"
MAX_FINDING_BYTES = 240_000
MAX_TITLE = 256
MAX_DESCRIPTION = 1024
MAX_RESOURCES = 32
MAX_RESOURCE_ID = 512
MAX_REGION = 16
MAX_PRODUCT_FIELDS = 50
MAX_PRODUCT_FIELD_KEY = 128
MAX_PRODUCT_FIELD_VALUE = 2048
MAX_RECOMMENDATION = 512
MAX_API = 128
MAX_RELATED_FINDINGS = 10
MIN_CONTEXT_FIELDS = 10
"""Product fields kept for the detection's context after the fixed and actor fields."""
PRODUCT_FIELD_PREFIX = "ssm-detect/"
CONTEXT_PREFIX = "ssm-detect/context/"

TYPE_EXECUTION = "TTPs/Execution"
# ASFF's TTPs categories by ATT&CK tactic id.
_TACTIC_TYPES = {
    "TA0001": "TTPs/Initial Access",
    "TA0002": TYPE_EXECUTION,
    "TA0003": "TTPs/Persistence",
    "TA0004": "TTPs/Privilege Escalation",
    "TA0005": "TTPs/Defense Evasion",
    "TA0006": "TTPs/Credential Access",
    "TA0007": "TTPs/Discovery",
    "TA0008": "TTPs/Lateral Movement",
    "TA0009": "TTPs/Collection",
    "TA0011": "TTPs/Command and Control",
}
SEED_ONLY_TECHNIQUES = frozenset({"T1566.002"})
"""Techniques a seed rule tags that an SSM API call is not (Sigma 38e7f511 tags phishing)."""
# Where an analyst reads what to do with a principal that ran commands it should not have:
# AWS's guidance on remediating potentially compromised credentials (revoke sessions,
# deactivate keys, review what they did). A rule's source is a reference, not guidance.
REMEDIATION_URL = "https://docs.aws.amazon.com/guardduty/latest/ug/compromised-creds.html"

# The API call behind each detection's decisive event.
_API_BY_DETECTION = {
    "AWS.SSM.SendCommand": "SendCommand",
    "AWS.SSM.DistributedCommand": "SendCommand",
    "AWS.SSM.RareCommandDocumentCreator": "CreateDocument",
    "AWS.SSM.MaliciousDocumentContent": "CreateDocument",
    "AWS.SSM.CreatedDocumentExecuted": "SendCommand",
    "AWS.SSM.RareAutomationOrSessionDocumentCreator": "CreateDocument",
    "AWS.SSM.DocumentVersionByNewPrincipal": "UpdateDocument",
    # Issue 12: the call each detection reads first (the finding's own `api_call`, when set,
    # names the one that fired: UpdateAssociation, StartChangeRequestExecution, ...).
    "AWS.SSM.SessionLoggingDisabled": "UpdateDocument",
    "AWS.SSM.DocumentShared": "ModifyDocumentPermission",
    "AWS.SSM.PublicSharingBlockDisabled": "UpdateServiceSetting",
    "AWS.SSM.AssociationRunsCode": "CreateAssociation",
    "AWS.SSM.AutomationRunsCode": "StartAutomationExecution",
    "AWS.SSM.MaintenanceWindowTaskRunsCode": "RegisterTaskWithMaintenanceWindow",
    "AWS.SSM.SendCommandProbing": "SendCommand",
    "AWS.SSM.SessionTunnel": "StartSession",
    "AWS.SSM.InteractiveSessionCommand": "StartSession",
    "AWS.SSM.SessionFanout": "StartSession",
    "AWS.SSM.SecureStringHarvesting": "GetParameters",
    "AWS.SSM.HybridActivation": "CreateActivation",
    "AWS.SSM.SessionAfterLoggingTampering": "StartSession",
}
_PRINCIPAL_TYPES = (ResourceType.IAM_ROLE, ResourceType.IAM_USER, ResourceType.ACCESS_KEY)
_ASFF_TYPE = {
    ResourceType.EC2_INSTANCE: "AwsEc2Instance",
    ResourceType.SSM_DOCUMENT: "Other",
    ResourceType.IAM_ROLE: "AwsIamRole",
    ResourceType.IAM_USER: "AwsIamUser",
    ResourceType.ACCESS_KEY: "AwsIamAccessKey",
    ResourceType.TARGET: "Other",
    ResourceType.MANAGED_INSTANCE: "Other",
}
_OTHER_KIND = {
    ResourceType.SSM_DOCUMENT: "SsmDocument",
    ResourceType.TARGET: "SsmTarget",
    ResourceType.MANAGED_INSTANCE: "SsmManagedInstance",
}
_GLOBAL_TYPES = frozenset(_PRINCIPAL_TYPES)


def partition_of_region(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def default_product_arn(region: str, account: str) -> str:
    partition = partition_of_region(region)
    return f"arn:{partition}:securityhub:{region}:{account}:product/{account}/default"


def console_base(region: str, *, regional_host: bool = True) -> str:
    """The AWS console's address for a region's partition."""
    partition = partition_of_region(region)
    if partition == "aws-cn":
        return "https://console.amazonaws.cn"
    if partition == "aws-us-gov":
        return "https://console.amazonaws-us-gov.com"
    return (
        f"https://{region}.console.aws.amazon.com"
        if regional_host
        else ("https://console.aws.amazon.com")
    )


def cloudtrail_event_url(region: str, event_id: str, *, regional_host: bool = True) -> str:
    """The CloudTrail console's Event history page for one event (in the account it happened)."""
    base = console_base(region, regional_host=regional_host)
    return f"{base}/cloudtrailv2/home?region={region}#/events/{quote(event_id, safe='')}"


def securityhub_finding_url(region: str, finding_id: str, *, regional_host: bool = True) -> str:
    """The Security Hub console's findings page filtered on one finding id."""
    base = console_base(region, regional_host=regional_host)
    search = quote(f"Id={finding_id}", safe="")
    return f"{base}/securityhub/home?region={region}#/findings?search={search}"


def iso_ms(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and `Z`, as Security Hub documents its timestamps."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: ASFF timestamps need a timezone")
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def finding_types(finding: Finding) -> list[str]:
    """ASFF types by what the finding is: execution (T1651) for every detection that names it,
    first; other tactics the detection itself evidences (credential access, say) are added; a
    detection that is not about execution (a secret read, a tunnel's lateral movement alone) is
    typed by its own tactics only. Tags a seed carries that do not describe the activity (the
    Sigma seed's T1566.002 Phishing) are listed as the seed's tags in `ProductFields`, not
    typed."""
    executes = any(tag.tactic == "TA0002" for tag in finding.mitre)
    types = [TYPE_EXECUTION] if executes else []
    for tag in finding.mitre:
        name = _TACTIC_TYPES.get(tag.tactic)
        if name and tag.technique not in SEED_ONLY_TECHNIQUES and name not in types:
            types.append(name)
    return types or [TYPE_EXECUTION]


def seed_tags(finding: Finding) -> list[str]:
    """The finding's ATT&CK tags that only its seed rule carries, as `tactic/technique`."""
    return [
        f"{t.tactic}/{t.technique}" for t in finding.mitre if t.technique in SEED_ONLY_TECHNIQUES
    ]


def format_asff(
    finding: Finding,
    *,
    product_arn: str | None,
    region: str,
    account: str,
    updated_at: datetime,
    created_at: datetime,
    count: int,
) -> dict[str, Any]:
    """The ASFF document for one finding, imported into `account` in `region`.

    `created_at` is when the finding was first imported and `updated_at` this import's time
    (equal on creation; Security Hub ignores an update whose `UpdatedAt` is not newer). `count`
    is the occurrences so far, which may exceed `finding.count` after suppressed repeats.
    """
    if updated_at < created_at:
        raise ValueError("updated_at is earlier than created_at")
    if count < 1:
        raise ValueError("count must be at least 1")
    severity = {"Label": finding.severity.value, "Original": finding.severity.value}
    types = finding_types(finding)
    document: dict[str, Any] = {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": finding.id,
        "ProductArn": product_arn or default_product_arn(region, account),
        "ProductName": "ssm-detect",
        "GeneratorId": finding.detection_id,
        "AwsAccountId": account,
        # Where the activity happened. Security Hub documents that it fills `Region` itself (the
        # importing region) and may overwrite this; the member region also travels in
        # `ProductFields` and in each resource's `Region`.
        "Region": finding.region if 0 < len(finding.region) <= MAX_REGION else region,
        "Types": types,
        "CreatedAt": iso_ms(created_at),
        "UpdatedAt": iso_ms(updated_at),
        "FirstObservedAt": iso_ms(finding.first_seen),
        "LastObservedAt": iso_ms(finding.last_seen),
        "Severity": severity,
        "FindingProviderFields": {"Severity": dict(severity), "Types": list(types)},
        "Title": _text(finding.title, MAX_TITLE),
        "Description": _text(finding.description, MAX_DESCRIPTION),
        "Resources": _resources(finding, account),
        "Action": _action(finding),
        "ProductFields": _product_fields(finding, count),
        "RecordState": "ACTIVE",
    }
    if finding.related_ids:
        # The findings raised by the same event. Providers set it through
        # FindingProviderFields, which is what Security Hub reads on updates.
        related = [
            {"ProductArn": document["ProductArn"], "Id": related_id}
            for related_id in finding.related_ids[:MAX_RELATED_FINDINGS]
        ]
        document["RelatedFindings"] = related
        document["FindingProviderFields"]["RelatedFindings"] = [dict(r) for r in related]
    if finding.runbook.strip():
        document["Remediation"] = {"Recommendation": _recommendation(finding.runbook)}
    if finding.event_ids:
        decisive = event_place(finding, finding.event_ids[-1])
        document["SourceUrl"] = cloudtrail_event_url(decisive.region, decisive.event_id)
    return _fit(document, MAX_FINDING_BYTES)


def asff_size(document: dict[str, Any]) -> int:
    """Bytes of the document as JSON with non-ASCII escaped (never smaller than UTF-8)."""
    return len(json.dumps(document, separators=(",", ":"), ensure_ascii=True))


def _text(value: object, limit: int) -> str:
    return one_line(as_text(value), limit) or "-"


def _recommendation(runbook: str) -> dict[str, str]:
    return {"Text": _text(runbook, MAX_RECOMMENDATION), "Url": REMEDIATION_URL}


def _resources(finding: Finding, account: str) -> list[dict[str, Any]]:
    """Who acted and what ran come before the instances, so the cap drops instances first;
    each member account other than the importing one is named as an `AwsAccount`."""

    def rank(resource: Resource) -> int:
        if resource.type in _PRINCIPAL_TYPES:
            return 0
        return 1 if resource.type is not ResourceType.EC2_INSTANCE else 2

    listed = [*finding.resources, *_actor_resources(finding)]
    ordered = sorted(dict.fromkeys(listed), key=rank)
    resources = [
        {
            "Type": "AwsAccount",
            "Id": f"AWS::::Account:{member}",
            "Partition": partition_of_region(finding.region),
        }
        for member in _member_accounts(finding, account)
    ]
    seen = {entry["Id"] for entry in resources}
    for resource in ordered:
        if len(resources) >= MAX_RESOURCES:
            break
        entry = _resource(resource, finding)
        if entry["Id"] not in seen:
            seen.add(entry["Id"])
            resources.append(entry)
    if not resources:
        # Security Hub rejects a finding without resources (InvalidInput), which would fail the
        # whole batch: a finding always names at least the account the activity happened in.
        resources.append(
            {
                "Type": "AwsAccount",
                "Id": f"AWS::::Account:{_text(finding.account_id, 64)}",
                "Partition": partition_of_region(finding.region),
            }
        )
    return resources


def _member_accounts(finding: Finding, account: str) -> list[str]:
    """Accounts the activity touched, other than the importing one, in first-mention order."""
    found = [finding.account_id]
    found += [r.account_id for r in finding.resources if r.account_id]
    found += [a.account_id for a in actors(finding) if a.account_id]
    found += [p.account_id for p in contributing_events(finding)]
    return [a for a in dict.fromkeys(found) if a != account and a.strip()][:4]


def _actor_resources(finding: Finding) -> list[Resource]:
    """The role or user and the access key of each actor of a multi-actor finding."""
    found: list[Resource] = []
    for actor in actors(finding):
        found += _principal_of(actor)
    return found


def _principal_of(actor: Actor) -> list[Resource]:
    place = {"account_id": actor.account_id, "label": actor.role}
    found: list[Resource] = []
    key, arn = actor.principal_key or "", actor.arn or ""
    if ":role/" in key:
        found.append(Resource(type=ResourceType.IAM_ROLE, id=key, **place))
    elif ":user/" in arn:
        found.append(Resource(type=ResourceType.IAM_USER, id=arn, **place))
    elif ":user/" in key:
        found.append(Resource(type=ResourceType.IAM_USER, id=key, **place))
    if actor.access_key_id:
        found.append(Resource(type=ResourceType.ACCESS_KEY, id=actor.access_key_id, **place))
    return found


def _resource(resource: Resource, finding: Finding) -> dict[str, Any]:
    region = resource.region or finding.region
    identifier = resource.id
    if resource.type is ResourceType.ACCESS_KEY and not identifier.startswith("AWS::"):
        identifier = f"AWS::IAM::AccessKey:{identifier}"
    entry: dict[str, Any] = {
        "Type": _ASFF_TYPE[resource.type],
        "Id": _text(identifier, MAX_RESOURCE_ID),
        "Partition": _partition_of_arn(resource.id) or partition_of_region(region),
    }
    if resource.type not in _GLOBAL_TYPES and 0 < len(region) <= MAX_REGION:
        entry["Region"] = region
    kind = _OTHER_KIND.get(resource.type)
    if kind is not None:
        other = {"ssm-detect/kind": kind}
        if resource.label:
            other["ssm-detect/name"] = _text(resource.label, 1023)
        if resource.account_id:
            other["ssm-detect/account"] = _text(resource.account_id, 64)
        entry["Details"] = {"Other": other}
    return entry


def _partition_of_arn(identifier: str) -> str | None:
    if identifier.startswith("arn:"):
        partition = identifier.split(":", 2)[1]
        if partition in {"aws", "aws-cn", "aws-us-gov"}:
            return partition
    return None


def _action(finding: Finding) -> dict[str, Any]:
    call: dict[str, Any] = {
        "ServiceName": "ssm.amazonaws.com",
        "Api": api_call(finding)[:MAX_API],
        "FirstSeen": iso_ms(finding.first_seen),
        "LastSeen": iso_ms(finding.last_seen),
    }
    caller = _caller(finding.source_ip)
    call.update(caller)
    return {"ActionType": "AWS_API_CALL", "AwsApiCallAction": call}


def api_call(finding: Finding) -> str:
    """The API call behind the finding's decisive event, never empty.

    A detection's own mapping first (a chain's decisive call is the execution whichever event
    arrived last), then the event name the pipeline recorded, then what the context shows.
    """
    known = _API_BY_DETECTION.get(finding.detection_id) or finding.api_call
    if known:
        return known
    if "command_id" in finding.context or "instance_ids" in finding.context:
        return "SendCommand"
    if "content_hidden" in finding.context or "document_format" in finding.context:
        return "CreateDocument"
    return "unknown"


def _caller(source_ip: str | None) -> dict[str, Any]:
    """`remoteIp` for an IPv4 address (the only address ASFF's RemoteIpDetails holds), `domain`
    for a service name such as `ssm.amazonaws.com`, nothing otherwise."""
    if not source_ip or not source_ip.strip():
        return {}
    try:
        address = ipaddress.ip_address(source_ip.strip())
    except ValueError:
        name = one_line(source_ip, 253)
        if "." in name and " " not in name:
            return {"CallerType": "domain", "DomainDetails": {"Domain": name}}
        return {}
    if address.version == 4:
        return {"CallerType": "remoteIp", "RemoteIpDetails": {"IpAddressV4": str(address)}}
    return {"CallerType": "remoteIp"}


def _product_fields(finding: Finding, count: int) -> dict[str, str]:
    principal = finding.principal
    fields: dict[str, object] = {
        "detection_id": finding.detection_id,
        "principal_key": principal.key,
        "principal_type": principal.type,
        "principal_arn": principal.arn,
        "role_arn": principal.role_arn,
        "session_name": principal.session_name,
        "access_key_id": principal.access_key_id,
        "source_ip": finding.source_ip,
        "user_agent": finding.user_agent,
        "event_ids": ",".join(finding.event_ids),
        "member_account": finding.account_id,
        "member_region": finding.region,
        "count": count,
        "severity_reasons": "; ".join(finding.severity_reasons),
        "mitre": ", ".join(f"{t.tactic}/{t.technique}" for t in finding.mitre),
        "seed_tags": ", ".join(seed_tags(finding)),
        "contributing_events": _places_text(finding),
    }
    # Actors before context, yet never more than the API's 50 fields: a finding with many
    # actors keeps their first fields (the identity first) and still imports.
    room = MAX_PRODUCT_FIELDS - len(fields) - MIN_CONTEXT_FIELDS
    for actor in actors(finding):
        for name, text in actor.items()[: max(room, 0)]:
            fields[f"actor/{actor.role}/{name}"] = text
            room -= 1
    product = {
        truncate(f"{PRODUCT_FIELD_PREFIX}{one_line(key, 100)}", MAX_PRODUCT_FIELD_KEY): (
            _field_value(value)
        )
        for key, value in fields.items()
        if value is not None and as_text(value).strip()
    }
    for key in sorted(set(finding.context) - {ACTORS, CONTRIBUTING_EVENTS}):
        if len(product) >= MAX_PRODUCT_FIELDS:
            break
        value = _content_excerpt(finding) if key == CONTENT_KEY else finding.context[key]
        if as_text(value).strip():
            name = truncate(f"{CONTEXT_PREFIX}{one_line(key, 100)}", MAX_PRODUCT_FIELD_KEY)
            product[name] = _field_value(value)
    return product


def _content_excerpt(finding: Finding) -> str | None:
    """The document content around what matched, within a product field's 2,048 characters,
    saying how much of it is shown (padding cannot push a payload out of the finding)."""
    content = evidence.content_of(finding)
    if content is None:
        return None
    total = evidence.content_total(finding, content)
    head = "[shown: 0000000 of 0000000 characters] "
    room = MAX_PRODUCT_FIELD_VALUE - len(head)
    shown = evidence.excerpt(content, evidence.hits(finding), room - 80, total)
    return f"[{shown.note}] {shown.text}"


def _places_text(finding: Finding) -> str | None:
    """`event-id region/account time` per contributing event, only when there are several."""
    places = contributing_events(finding)
    if len(places) < 2:
        return None
    return "; ".join(
        f"{p.event_id} {p.region}/{p.account_id}" + (f" {p.event_time}" if p.event_time else "")
        for p in places
    )


def scalar_text(value: object) -> str:
    """A context value as Security Hub shows it: JSON's `true`/`false`, whole numbers without
    `.0`, lists and mappings as JSON; text as it is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(scalar_text(v) for v in value)
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return as_text(value)


def _field_value(value: object) -> str:
    return one_line(scalar_text(value), MAX_PRODUCT_FIELD_VALUE) or "-"


def _fit(document: dict[str, Any], limit: int) -> dict[str, Any]:
    """Keep the document under `limit` bytes: context product fields go first (largest first),
    then the remaining product-field values are shortened; the required fields never change."""
    if asff_size(document) <= limit:
        return document
    fields: dict[str, str] = document["ProductFields"]
    context_keys = sorted(
        (k for k in fields if k.startswith(CONTEXT_PREFIX)), key=lambda k: -len(fields[k])
    )
    for key in context_keys:
        del fields[key]
        fields["ssm-detect/context_dropped"] = "true"
        if asff_size(document) <= limit:
            return document
    for key in sorted(fields, key=lambda k: -len(fields[k])):
        fields[key] = truncate(fields[key], 64, ELLIPSIS)
        if asff_size(document) <= limit:
            return document
    raise ValueError(f"ASFF finding {document['Id']} exceeds {limit} bytes even when trimmed")
