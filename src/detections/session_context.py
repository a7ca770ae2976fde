"""Context and resources shared by the detections that fire on StartSession."""

from __future__ import annotations

from typing import Any

from detections.resources import (
    document_resource,
    instance_resource,
    partition_of,
    principal_resources,
)
from ssm_detect.findings import Resource, ResourceType
from ssm_detect.ssm_event import SsmEvent, StartSessionCall

MAX_SHOWN_VALUE_CHARS = 300
MAX_SHOWN_VALUES = 5


def session_context(event: SsmEvent, call: StartSessionCall) -> dict[str, Any]:
    """What a responder needs about one session: where, how, which parameters, who from."""
    shown = {
        name: [value[:MAX_SHOWN_VALUE_CHARS] for value in values[:MAX_SHOWN_VALUES]]
        for name, values in call.request.parameter_values.items()
    }
    context: dict[str, Any] = {
        "target": call.target,
        "document_name": call.document_name,
        "session_id": call.session_id,
        "reason": call.request.reason,
        "session_parameters": shown,
        "source_ip": event.record.source_ip_address,
        "user_agent": event.record.user_agent,
    }
    if call.request.truncated_fields:
        context["nesting_truncated"] = list(call.request.truncated_fields)
    return context


def target_resource(target: str, region: str, account: str, partition: str) -> Resource:
    """An EC2 instance (`i-`), a hybrid managed node (`mi-`), or whatever else was named (an
    ECS task's `ecs:` target, say), in the session's own region."""
    if target.startswith(("i-", "mi-")):
        return instance_resource(target, region, account, partition).model_copy(
            update={"region": region}
        )
    return Resource(type=ResourceType.TARGET, id=target[:256], label=target[:256], region=region)


def session_resources(
    event: SsmEvent, call: StartSessionCall, targets: tuple[str, ...] = ()
) -> tuple[Resource, ...]:
    """The session's target (or `targets`), its document and the principal behind it."""
    record = event.record
    partition = partition_of(event.principal.arn or event.principal.role_arn)
    named = targets or ((call.target,) if call.target else ())
    found = [target_resource(t, record.aws_region, event.account_id, partition) for t in named]
    found.append(
        document_resource(call.document_name, record.aws_region, event.account_id, partition)
    )
    return (*found, *principal_resources(event.principal))
