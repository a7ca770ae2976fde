"""`userIdentity`: who made a CloudTrail call, one model per identity type.

The union is tagged by `type`; a type we do not know yet parses as `UnknownIdentity` instead of
failing, because AWS adds identity types over time and an unknown caller is exactly what a
detector must still see.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from ssm_detect.models.bounds import AccountId

# IAM's documented maximum for an ARN. The principal key built from ARNs and ids has its own,
# tighter bound (principal.MAX_PRINCIPAL_KEY_BYTES); this one keeps the ARNs a finding shows
# (the session ARN, the role ARN) from being arbitrarily large.
MAX_ARN_CHARS = 2048


class _Lenient(BaseModel):
    """CloudTrail adds fields without notice: keep them, never reject them."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True, defer_build=True)


class SessionIssuer(_Lenient):
    type: str | None = None
    principal_id: str | None = Field(default=None, alias="principalId")
    arn: str | None = Field(default=None, max_length=MAX_ARN_CHARS)
    # Not read (the role ARN carries the account): a malformed one costs nothing, so it is
    # not a reason to drop the event.
    account_id: str | None = Field(default=None, alias="accountId")
    user_name: str | None = Field(default=None, alias="userName")


class SessionContext(_Lenient):
    session_issuer: SessionIssuer | None = Field(default=None, alias="sessionIssuer")
    source_identity: str | None = Field(default=None, alias="sourceIdentity")
    attributes: dict[str, Any] | None = None


class OnBehalfOf(_Lenient):
    """The Identity Center user a call was made for."""

    user_id: str | None = Field(default=None, alias="userId")
    identity_store_arn: str | None = Field(default=None, alias="identityStoreArn")


class _IdentityBase(_Lenient):
    principal_id: str | None = Field(default=None, alias="principalId")
    arn: str | None = Field(default=None, max_length=MAX_ARN_CHARS)
    # The record's account when `recipientAccountId` is absent, so part of state keys.
    account_id: AccountId | None = Field(default=None, alias="accountId")
    access_key_id: str | None = Field(default=None, alias="accessKeyId")
    user_name: str | None = Field(default=None, alias="userName")
    invoked_by: str | None = Field(default=None, alias="invokedBy")
    session_context: SessionContext | None = Field(default=None, alias="sessionContext")


class IAMUserIdentity(_IdentityBase):
    type: Literal["IAMUser"] = "IAMUser"


class AssumedRoleIdentity(_IdentityBase):
    type: Literal["AssumedRole"] = "AssumedRole"


class RootIdentity(_IdentityBase):
    type: Literal["Root"] = "Root"


class FederatedUserIdentity(_IdentityBase):
    type: Literal["FederatedUser"] = "FederatedUser"


class AWSServiceIdentity(_IdentityBase):
    type: Literal["AWSService"] = "AWSService"


class AWSAccountIdentity(_IdentityBase):
    """A principal of another account (cross-account call); only its account is named."""

    type: Literal["AWSAccount"] = "AWSAccount"


class IdentityCenterUserIdentity(_IdentityBase):
    type: Literal["IdentityCenterUser"] = "IdentityCenterUser"
    on_behalf_of: OnBehalfOf | None = Field(default=None, alias="onBehalfOf")
    credential_id: str | None = Field(default=None, alias="credentialId")


class UnknownIdentity(_IdentityBase):
    type: str | None = None


_KNOWN_TYPES = frozenset(
    {
        "IAMUser",
        "AssumedRole",
        "Root",
        "FederatedUser",
        "AWSService",
        "AWSAccount",
        "IdentityCenterUser",
    }
)


def _identity_tag(value: object) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if isinstance(kind, str) and kind in _KNOWN_TYPES else "Unknown"


UserIdentity = Annotated[
    Annotated[IAMUserIdentity, Tag("IAMUser")]
    | Annotated[AssumedRoleIdentity, Tag("AssumedRole")]
    | Annotated[RootIdentity, Tag("Root")]
    | Annotated[FederatedUserIdentity, Tag("FederatedUser")]
    | Annotated[AWSServiceIdentity, Tag("AWSService")]
    | Annotated[AWSAccountIdentity, Tag("AWSAccount")]
    | Annotated[IdentityCenterUserIdentity, Tag("IdentityCenterUser")]
    | Annotated[UnknownIdentity, Tag("Unknown")],
    Discriminator(_identity_tag),
]
