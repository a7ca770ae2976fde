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
    `.*\\S.*` pattern) and single-line.

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
from ssm_detect.render.escape import ELLIPSIS, as_text, one_line, truncate

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
PRODUCT_FIELD_PREFIX = "ssm-detect/"
CONTEXT_PREFIX = "ssm-detect/context/"

INITIAL_ACCESS = "TA0001"
TYPE_EXECUTION = "TTPs/Execution"
TYPE_INITIAL_ACCESS = "TTPs/Initial Access"

# The API call behind each detection's decisive event.
_API_BY_DETECTION = {
    "AWS.SSM.SendCommand": "SendCommand",
    "AWS.SSM.DistributedCommand": "SendCommand",
    "AWS.SSM.RareCommandDocumentCreator": "CreateDocument",
}
_PRINCIPAL_TYPES = (ResourceType.IAM_ROLE, ResourceType.IAM_USER, ResourceType.ACCESS_KEY)
_ASFF_TYPE = {
    ResourceType.EC2_INSTANCE: "AwsEc2Instance",
    ResourceType.SSM_DOCUMENT: "Other",
    ResourceType.IAM_ROLE: "AwsIamRole",
    ResourceType.IAM_USER: "AwsIamUser",
    ResourceType.ACCESS_KEY: "AwsIamAccessKey",
    ResourceType.TARGET: "Other",
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
    types = [TYPE_EXECUTION]
    if any(tag.tactic == INITIAL_ACCESS for tag in finding.mitre):
        types.append(TYPE_INITIAL_ACCESS)
    return types


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
        document["Remediation"] = {
            "Recommendation": _recommendation(finding.runbook, finding.references)
        }
    if finding.event_ids:
        document["SourceUrl"] = cloudtrail_event_url(finding.region, finding.event_ids[-1])
    return _fit(document, MAX_FINDING_BYTES)


def asff_size(document: dict[str, Any]) -> int:
    """Bytes of the document as JSON with non-ASCII escaped (never smaller than UTF-8)."""
    return len(json.dumps(document, separators=(",", ":"), ensure_ascii=True))


def _text(value: object, limit: int) -> str:
    return one_line(as_text(value), limit) or "-"


def _recommendation(runbook: str, references: tuple[str, ...]) -> dict[str, str]:
    recommendation = {"Text": _text(runbook, MAX_RECOMMENDATION)}
    urls = [r for r in references if r.startswith("https://") and " " not in r]
    if urls:
        recommendation["Url"] = urls[0]
    return recommendation


def _resources(finding: Finding, account: str) -> list[dict[str, Any]]:
    # Who acted and what ran come before the instances, so the cap drops instances first.
    def rank(resource: Resource) -> int:
        if resource.type in _PRINCIPAL_TYPES:
            return 0
        return 1 if resource.type is not ResourceType.EC2_INSTANCE else 2

    ordered = sorted(finding.resources, key=rank)
    resources: list[dict[str, Any]] = []
    if finding.account_id != account:
        resources.append(
            {
                "Type": "AwsAccount",
                "Id": f"AWS::::Account:{finding.account_id}",
                "Partition": partition_of_region(finding.region),
            }
        )
    resources.extend(
        _resource(r, finding.region) for r in ordered[: MAX_RESOURCES - len(resources)]
    )
    return resources


def _resource(resource: Resource, region: str) -> dict[str, Any]:
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
    if entry["Type"] == "Other":
        kind = "SsmDocument" if resource.type is ResourceType.SSM_DOCUMENT else "SsmTarget"
        other = {"ssm-detect/kind": kind}
        if resource.label:
            other["ssm-detect/name"] = _text(resource.label, 1023)
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
        "FirstSeen": iso_ms(finding.first_seen),
        "LastSeen": iso_ms(finding.last_seen),
    }
    api = _API_BY_DETECTION.get(finding.detection_id)
    if api is None:
        api = "SendCommand" if "command_id" in finding.context else None
    if api:
        call["Api"] = api[:MAX_API]
    caller = _caller(finding.source_ip)
    call.update(caller)
    return {"ActionType": "AWS_API_CALL", "AwsApiCallAction": call}


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
    fields = {
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
        "count": str(count),
        "severity_reasons": "; ".join(finding.severity_reasons),
        "mitre": ", ".join(f"{t.tactic}/{t.technique}" for t in finding.mitre),
    }
    product = {
        f"{PRODUCT_FIELD_PREFIX}{key}": _field_value(value)
        for key, value in fields.items()
        if value is not None and as_text(value).strip()
    }
    for key in sorted(finding.context):
        if len(product) >= MAX_PRODUCT_FIELDS:
            break
        text = as_text(finding.context[key])
        if text.strip():
            name = truncate(f"{CONTEXT_PREFIX}{one_line(key, 100)}", MAX_PRODUCT_FIELD_KEY)
            product[name] = _field_value(text)
    return product


def _field_value(value: object) -> str:
    return one_line(as_text(value), MAX_PRODUCT_FIELD_VALUE) or "-"


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
