"""Context shared by the detections that fire on SendCommand."""

from __future__ import annotations

from typing import Any

from detections.resources import document_resource, instance_resource, partition_of
from ssm_detect.findings import Resource
from ssm_detect.ssm_event import SendCommandCall, SsmEvent

MAX_LISTED_INSTANCES = 50
_EXPLICIT_TARGET_KEY = "instanceids"
WILDCARD = "*"


def reached_instances(call: SendCommandCall) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(explicit instance ids, descriptions of targets that reach an unknown number): tag and
    resource-group targets, and the wildcard `*` (in `instanceIds` or an InstanceIds target),
    which is every managed node, not one instance."""
    explicit = [i for i in call.instance_ids if i != WILDCARD]
    unbounded = [f"instanceIds={WILDCARD}"] if WILDCARD in call.instance_ids else []
    for target in call.targets:
        if target.key.lower() == _EXPLICIT_TARGET_KEY and WILDCARD not in target.values:
            explicit.extend(target.values)
        else:
            unbounded.append(f"{target.key}={','.join(target.values)}"[:256])
    return tuple(dict.fromkeys(explicit)), tuple(dict.fromkeys(unbounded))


def send_command_context(event: SsmEvent, call: SendCommandCall) -> dict[str, Any]:
    command = call.response.command
    request = call.request
    explicit = [i for i in call.instance_ids if i != WILDCARD]
    return {
        "document_name": call.document_name,
        "document_version": request.document_version
        or (command.document_version if command else None),
        "command_id": call.command_id,
        "instance_ids": list(explicit[:MAX_LISTED_INSTANCES]),
        # explicit ids only: `*` reaches an unknown number (listed under its targets)
        "instance_count": len(explicit),
        "unknown_size_targets": list(reached_instances(call)[1]),
        "targets": [{"key": t.key, "values": list(t.values[:10])} for t in call.targets],
        "comment": request.comment or (command.comment if command else None),
        "output_s3_bucket": request.output_s3_bucket_name
        or (command.output_s3_bucket_name if command else None),
        "source_ip": event.record.source_ip_address,
        "user_agent": event.record.user_agent,
    }


def send_command_resources(
    event: SsmEvent, call: SendCommandCall, instance_ids: tuple[str, ...]
) -> tuple[Resource, ...]:
    record = event.record
    partition = partition_of(event.principal.arn or event.principal.role_arn)
    found = [
        instance_resource(i, record.aws_region, event.account_id, partition)
        for i in instance_ids[:MAX_LISTED_INSTANCES]
        if i != "*"
    ]
    if call.document_name:
        found.append(
            document_resource(call.document_name, record.aws_region, event.account_id, partition)
        )
    return tuple(found)
