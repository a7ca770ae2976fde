"""Who counts as one actor: the principal key the stateful detections group by.

Panther's `actor_user` and Elastic's current new-terms rule both key on the *role* for assumed
roles, so a role's many sessions are one actor. Identity Center permission-set roles are shared
by many people, so there the human behind the session counts. A permission-set role is one
under the path `aws-reserved/sso.amazonaws.com/`, which only Identity Center can create; its
name starts `AWSReservedSSO_`, but anyone can name an ordinary role that way, and keying such a
look-alike by session would let session-name rotation split its fan-out, so the name alone is
an ordinary role.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ssm_detect.models.bounds import MAX_KEY_PART_BYTES
from ssm_detect.models.cloudtrail import CloudTrailRecord
from ssm_detect.models.identity import (
    AssumedRoleIdentity,
    AWSAccountIdentity,
    AWSServiceIdentity,
    FederatedUserIdentity,
    IAMUserIdentity,
    IdentityCenterUserIdentity,
    RootIdentity,
)

# Sources Elastic's rule excludes as AWS acting on its own (State Manager, Fleet Manager's GUI
# connect, Inspector). CloudTrail writes these; a caller cannot choose them.
AWS_SERVICE_SOURCES = frozenset(
    {"ssm.amazonaws.com", "ssm-guiconnect.amazonaws.com", "inspector2.amazonaws.com"}
)
_IDENTITY_CENTER_ROLE_PATH = ":role/aws-reserved/sso.amazonaws.com/"
_SERVICE_LINKED_ROLE_PATH = ":role/aws-service-role/"
# The key is part of state and ledger keys (`<kind>#<account>#<principal key>`), which DynamoDB
# caps at 2,048 bytes. Real keys are well under this (IAM names are at most 64 characters and
# paths 512; see models/bounds.py); a longer one is a corrupted or forged record, and failing
# here makes it bad input instead of a DynamoDB ValidationException that Lambda would retry.
MAX_PRINCIPAL_KEY_BYTES = MAX_KEY_PART_BYTES


class PrincipalKeying(StrEnum):
    """`role`: one actor per IAM role (default). `session`: one per role session."""

    ROLE = "role"
    SESSION = "session"


@dataclass(frozen=True, slots=True)
class Principal:
    key: str
    """Normalised actor, unique within an account (an ARN or a `kind:` prefixed name)."""
    type: str
    arn: str | None
    """As CloudTrail names it: the session ARN for assumed roles."""
    role_arn: str | None = None
    session_name: str | None = None
    access_key_id: str | None = None
    is_aws_service: bool = False


def principal_of(record: CloudTrailRecord, keying: PrincipalKeying) -> Principal:
    """The normalised principal of a record under the configured keying; raises ValueError
    when the key would be longer than `MAX_PRINCIPAL_KEY_BYTES`."""
    identity = record.user_identity
    account = identity.account_id or record.account_id
    session_name = _session_name(identity.arn)
    role_arn = None
    match identity:
        case AssumedRoleIdentity():
            issuer = identity.session_context.session_issuer if identity.session_context else None
            role_arn = issuer.arn if issuer else None
            key = _assumed_role_key(identity.arn, role_arn, session_name, keying)
        case IAMUserIdentity():
            key = identity.arn or f"arn:aws:iam::{account}:user/{identity.user_name}"
        case RootIdentity():
            key = identity.arn or f"arn:aws:iam::{account}:root"
        case FederatedUserIdentity():
            key = identity.arn or f"federated:{identity.principal_id}"
        case AWSServiceIdentity():
            key = f"service:{identity.invoked_by or record.source_ip_address}"
        case IdentityCenterUserIdentity():
            behalf = identity.on_behalf_of
            key = (
                f"{behalf.identity_store_arn}/user/{behalf.user_id}"
                if behalf and behalf.user_id
                else f"identity-center:{identity.credential_id or identity.principal_id}"
            )
        case AWSAccountIdentity():
            key = f"account:{identity.account_id}:{identity.principal_id}"
        case _:
            key = identity.arn or f"principal:{identity.principal_id}"
    size = len(key.encode("utf-8", "surrogatepass"))
    if size > MAX_PRINCIPAL_KEY_BYTES:
        # The key is not quoted: reasons reach logs, and it is exactly the oversized part.
        raise ValueError(
            f"principal key of {size} bytes exceeds the bound of {MAX_PRINCIPAL_KEY_BYTES}"
        )
    return Principal(
        key=key,
        type=identity.type or "Unknown",
        arn=identity.arn,
        role_arn=role_arn,
        session_name=session_name,
        access_key_id=identity.access_key_id,
        is_aws_service=_is_aws_service(record, role_arn),
    )


def _assumed_role_key(
    session_arn: str | None, role_arn: str | None, session: str | None, keying: PrincipalKeying
) -> str:
    if keying is PrincipalKeying.SESSION or role_arn is None:
        return session_arn or f"role-session:{role_arn}/{session}"
    shared_by_people = _IDENTITY_CENTER_ROLE_PATH in role_arn
    if shared_by_people and session:
        return f"{role_arn}/{session}"
    return role_arn


def _session_name(arn: str | None) -> str | None:
    # arn:aws:sts::111122223333:assumed-role/RoleName/session-name
    if arn and ":assumed-role/" in arn:
        return arn.rsplit("/", 1)[-1]
    return None


def _is_aws_service(record: CloudTrailRecord, role_arn: str | None) -> bool:
    identity = record.user_identity
    return (
        isinstance(identity, AWSServiceIdentity)
        or identity.invoked_by in AWS_SERVICE_SOURCES
        or record.source_ip_address in AWS_SERVICE_SOURCES
        or (role_arn is not None and _SERVICE_LINKED_ROLE_PATH in role_arn)
    )
