"""ASFF-style resources named in findings, built from what CloudTrail says."""

from __future__ import annotations

from ssm_detect.findings import Resource, ResourceType
from ssm_detect.principal import Principal
from ssm_detect.ssm_event import SsmEvent

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
    return Resource(type=ResourceType.EC2_INSTANCE, id=arn, label=instance_id)


def document_resource(name: str, region: str, account: str, partition: str) -> Resource:
    if name.startswith("arn:"):
        return Resource(type=ResourceType.SSM_DOCUMENT, id=name, label=name.rsplit("/", 1)[-1])
    owner = "" if name.startswith(_AWS_OWNED_PREFIXES) else account
    arn = f"arn:{partition}:ssm:{region}:{owner}:document/{name}"
    return Resource(type=ResourceType.SSM_DOCUMENT, id=arn, label=name)


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


def created_document_resources(event: SsmEvent, document_name: str | None) -> tuple[Resource, ...]:
    """The document a CreateDocument made (when named) and the principal that made it."""
    found = principal_resources(event.principal)
    if not document_name:
        return found
    partition = partition_of(event.principal.arn or event.principal.role_arn)
    region, account = event.record.aws_region, event.account_id
    return (document_resource(document_name, region, account, partition), *found)
