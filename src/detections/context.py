"""Context shared by the detections that fire on SendCommand."""

from __future__ import annotations

from typing import Any

from detections.resources import document_resource, instance_resource, partition_of
from ssm_detect.findings import Resource
from ssm_detect.ssm_event import SendCommandCall, SsmEvent

MAX_LISTED_INSTANCES = 50


def send_command_context(event: SsmEvent, call: SendCommandCall) -> dict[str, Any]:
    command = call.response.command
    request = call.request
    return {
        "document_name": call.document_name,
        "document_version": request.document_version
        or (command.document_version if command else None),
        "command_id": call.command_id,
        "instance_ids": list(call.instance_ids[:MAX_LISTED_INSTANCES]),
        "instance_count": len(call.instance_ids),
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
