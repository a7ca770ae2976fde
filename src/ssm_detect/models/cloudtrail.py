"""A CloudTrail record, and the EventBridge envelope that carries one to Lambda."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ssm_detect.event_names import SSM_EVENT_SOURCE as SSM_EVENT_SOURCE  # noqa: PLC0414 - re-export
from ssm_detect.models.bounds import AccountId
from ssm_detect.models.event_time import EventTime
from ssm_detect.models.identity import UserIdentity


class CloudTrailRecord(BaseModel):
    """The fields the detections read; every other field is kept as an extra."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True, defer_build=True)

    # CloudTrail event ids are GUIDs (36 characters). Each one is a member of the bounded state
    # sets, which count members, not bytes: a longer id would let a set outgrow its item.
    event_id: str = Field(alias="eventID", min_length=1, max_length=64)
    event_time: EventTime = Field(alias="eventTime")
    event_source: str = Field(alias="eventSource", min_length=1)
    event_name: str = Field(alias="eventName", min_length=1)
    # Every resource ARN in a finding repeats it, so an unbounded one makes an ASFF document no
    # trimming can fit; real names are lowercase letters, digits and hyphens (`us-gov-west-1`).
    aws_region: str = Field(default="", alias="awsRegion", pattern=r"^[a-z0-9-]{0,64}$")
    # Part of every state key: 12 digits, or the field is left out and named (models/repair.py).
    recipient_account_id: AccountId | None = Field(default=None, alias="recipientAccountId")
    user_identity: UserIdentity = Field(alias="userIdentity")
    source_ip_address: str | None = Field(default=None, alias="sourceIPAddress")
    user_agent: str | None = Field(default=None, alias="userAgent")
    error_code: str | None = Field(default=None, alias="errorCode")
    error_message: str | None = Field(default=None, alias="errorMessage")
    request_parameters: dict[str, Any] | None = Field(default=None, alias="requestParameters")
    response_elements: dict[str, Any] | None = Field(default=None, alias="responseElements")

    @property
    def succeeded(self) -> bool:
        """Sigma's definition: `errorCode` absent, null, or the literal "Success"."""
        return self.error_code is None or self.error_code == "Success"

    @property
    def account_id(self) -> str:
        """The account the call was made in; CloudTrail always names it one way or another."""
        return self.recipient_account_id or self.user_identity.account_id or "unknown"


class EventBridgeEnvelope(BaseModel):
    """EventBridge's `AWS API Call via CloudTrail` event.

    Powertools ships an `EventBridgeModel`, but importing its parser models costs about 180 ms
    of cold start here (it loads every event model); these five fields are all we need.
    """

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True, defer_build=True)

    id: str
    detail_type: str = Field(alias="detail-type")
    source: str
    account: str | None = None
    region: str | None = None
    detail: dict[str, Any]
