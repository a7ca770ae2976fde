"""ASFF-style resources named in findings, built from what CloudTrail says."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ssm_detect.findings import Resource, ResourceType
from ssm_detect.principal import Principal
from ssm_detect.ssm_event import SsmEvent

if TYPE_CHECKING:
    from detections.evidence import Actor

# Documents AWS owns and shares with every account have no account in their ARN.
_AWS_OWNED_PREFIXES = ("AWS-", "AWSSupport-", "AWSEC2-", "AmazonCloudWatch-", "AWSFleetManager-")


def partition_of(arn: str | None) -> str:
    if arn and arn.startswith("arn:"):
        return arn.split(":", 2)[1] or "aws"
    return "aws"


def instance_resource(instance_id: str, region: str, account: str, partition: str) -> Resource:
    if instance_id.startswith("mi-"):
        # A hybrid (on-premises) node registered with SSM: not an EC2 instance.
        arn = f"arn:{partition}:ssm:{region}:{account}:managed-instance/{instance_id}"
        return Resource(type=ResourceType.MANAGED_INSTANCE, id=arn, label=instance_id)
    arn = f"arn:{partition}:ec2:{region}:{account}:instance/{instance_id}"
    return Resource(
        type=ResourceType.EC2_INSTANCE,
        id=arn,
        label=instance_id,
        region=region or None,
        account_id=account,
    )


def document_resource(name: str, region: str, account: str, partition: str) -> Resource:
    """The document a call names, in its own region and account (an ARN names its own)."""
    if name.startswith("arn:"):
        owner_account, owner_region, short = regional_name(name, region, account)
        return Resource(
            type=ResourceType.SSM_DOCUMENT,
            id=name,
            label=short,
            region=owner_region or None,
            account_id=owner_account or None,
        )
    owner = "" if name.startswith(_AWS_OWNED_PREFIXES) else account
    arn = f"arn:{partition}:ssm:{region}:{owner}:document/{name}"
    return Resource(
        type=ResourceType.SSM_DOCUMENT,
        id=arn,
        label=name,
        region=region or None,
        account_id=owner or None,
    )


def regional_name(name: str, region: str, account: str) -> tuple[str, str, str]:
    """(account, region, name) of a regional resource a call names: a plain name lives in the
    call's own account and region; an ARN (`arn:aws:ssm:us-west-2:111122223333:document/X`,
    a document shared from another account, say) names its own. An ARN part left empty
    keeps the call's."""
    if not name.startswith("arn:"):
        return account, region, name
    parts = name.split(":", 5)
    if len(parts) < 6:  # not an ARN after all: the name as written
        return account, region, name
    return parts[4] or account, parts[3] or region, parts[5].rsplit("/", 1)[-1]


def principal_resources(principal: Principal) -> tuple[Resource, ...]:
    """The role or user behind the call, and its access key (what a responder disables)."""
    found: list[Resource] = []
    if principal.role_arn:
        found.append(Resource(type=ResourceType.IAM_ROLE, id=principal.role_arn))
    elif principal.arn and ":user/" in principal.arn:
        found.append(Resource(type=ResourceType.IAM_USER, id=principal.arn))
    if principal.access_key_id:
        found.append(Resource(type=ResourceType.ACCESS_KEY, id=principal.access_key_id))
    return tuple(found)


def actor_resources(actor: Actor) -> tuple[Resource, ...]:
    """`principal_resources` for an actor a state block remembered."""
    return principal_resources(actor.principal())


def created_document_resources(event: SsmEvent, document_name: str | None) -> tuple[Resource, ...]:
    """The document a CreateDocument made (when named) and the principal that made it."""
    found = principal_resources(event.principal)
    if not document_name:
        return found
    partition = partition_of(event.principal.arn or event.principal.role_arn)
    region, account = event.record.aws_region, event.account_id
    return (document_resource(document_name, region, account, partition), *found)
