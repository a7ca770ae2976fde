"""The finding: one model, rendered for Security Hub, SNS and the terminal by the sinks.

Fields follow `shared/spec/findings.md`. A finding's id is deterministic (detection, account,
principal, decisive event) so that processing the same events again updates it, never adds one.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    INFORMATIONAL = "INFORMATIONAL"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        return _SEVERITY_ORDER.index(self)

    def raised(self, steps: int = 1) -> Severity:
        return _SEVERITY_ORDER[min(self.rank + steps, len(_SEVERITY_ORDER) - 1)]

    def lowered(self, steps: int = 1) -> Severity:
        return _SEVERITY_ORDER[max(self.rank - steps, 0)]


_SEVERITY_ORDER = tuple(Severity)


class ResourceType(StrEnum):
    EC2_INSTANCE = "AwsEc2Instance"
    SSM_DOCUMENT = "Other"
    IAM_ROLE = "AwsIamRole"
    IAM_USER = "AwsIamUser"
    ACCESS_KEY = "AwsIamAccessKey"
    TARGET = "Other:SsmTarget"
    MANAGED_INSTANCE = "Other:SsmManagedInstance"
    """A hybrid node (`mi-*`): not an EC2 instance; its ARN is SSM's `managed-instance/`."""


class Resource(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    type: ResourceType
    id: str
    """An ARN where one can be formed, else the name or id CloudTrail gives."""
    label: str | None = None
    region: str | None = None
    """The region the resource lives in; None means the finding's own region."""
    account_id: str | None = None
    """The account the resource lives in; None means the finding's own account."""


class MitreTag(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    tactic: str
    technique: str


class PrincipalRef(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    key: str
    type: str
    arn: str | None = None
    role_arn: str | None = None
    session_name: str | None = None
    access_key_id: str | None = None
    is_aws_service: bool = False


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    id: str
    detection_id: str
    title: str
    description: str
    severity: Severity
    severity_reasons: tuple[str, ...] = ()
    account_id: str
    region: str
    principal: PrincipalRef
    source_ip: str | None = None
    user_agent: str | None = None
    event_ids: tuple[str, ...]
    first_seen: datetime
    last_seen: datetime
    count: int = Field(default=1, ge=1)
    resources: tuple[Resource, ...] = ()
    context: dict[str, Any] = Field(default_factory=dict)
    mitre: tuple[MitreTag, ...] = ()
    references: tuple[str, ...] = ()
    runbook: str = ""
    api_call: str | None = None
    """The decisive event's API call (CloudTrail `eventName`), for the ASFF action."""
    recorded_at: datetime | None = None
    """Wall-clock time ssm-detect first recorded the open finding (Security Hub's CreatedAt)."""
    updated_at: datetime | None = None
    """The suppression window's clock after this firing's claim (Security Hub's UpdatedAt):
    strictly increasing per finding id in the ledger's order of claims (ledger/base.py)."""
    related_ids: tuple[str, ...] = ()
    """Ids of the findings raised by the same event (Security Hub's RelatedFindings)."""


def finding_id(detection_id: str, account_id: str, principal_key: str, event_id: str) -> str:
    """Stable across retries and replays: the same decision always gets the same id."""
    material = "\x1f".join((detection_id, account_id, principal_key, event_id))
    digest = hashlib.sha256(material.encode()).hexdigest()[:32]
    return f"ssm-detect/{detection_id}/{digest}"
