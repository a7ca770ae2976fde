"""The findings of a SendCommand an AWS service issued for a configuration (issue 12 points 3-5):
what each half remembers in the correlate block, and the verdict with and without the person
who configured it. How the halves are found and linked: `detections.service_attribution`."""

from __future__ import annotations

from typing import Any, NamedTuple

from detections.base import Verdict
from detections.context import reached_instances, send_command_resources
from detections.evidence import Actor, contributing_event
from detections.resources import (
    actor_resources,
    document_resource,
    instance_resource,
    partition_of,
    principal_resources,
)
from detections.service_attribution import (
    KINDS,
    ConfigRef,
    actor_data,
    actor_from,
    epoch_of,
    strings,
)
from ssm_detect.findings import Resource, Severity
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import SendCommandCall, SsmEvent
from ssm_detect.state.block import StateKey
from ssm_detect.state.correlate import Mention, Pair, Side

# A run remembers at most this many instance ids, unknown-size targets and reasons: the
# correlate block keeps members small (state/correlate.py), and the finding lists the same.
MAX_IDS = 10
MAX_TARGETS = 5
MAX_REASONS = 4


class Assessment(NamedTuple):
    """What a SendCommand shows by itself: its severity, the reasons, its context."""

    severity: Severity
    reasons: tuple[str, ...]
    context: dict[str, Any]


def run_mention(
    event: SsmEvent, call: SendCommandCall, ref: ConfigRef, assessment: Assessment
) -> Mention:
    """The service's run, as the configuration's item keeps it: enough for the whole finding."""
    explicit, unknown = reached_instances(call)
    context = assessment.context
    data = actor_data(event) | {
        "via": ref.via,
        "document": call.document_name,
        "document_version": context.get("document_version"),
        "command_id": call.command_id,
        "output_s3_bucket": context.get("output_s3_bucket"),
        "instance_ids": list(explicit[:MAX_IDS]),
        "unknown_targets": list(unknown[:MAX_TARGETS]),
        "severity": str(assessment.severity),
        "reasons": list(assessment.reasons[:MAX_REASONS]),
    }
    return Mention(epoch_of(event), event.event_id, Side.SECOND, data)


def configuration_mention(event: SsmEvent, document: str | None) -> Mention:
    data = actor_data(event) | {"document": document, "event_name": event.record.event_name}
    return Mention(epoch_of(event), event.event_id, Side.FIRST, data)


def unattributed(
    event: SsmEvent,
    call: SendCommandCall,
    ref: ConfigRef,
    assessment: Assessment,
    settings: Settings,
) -> Verdict:
    """The run before (or without) its configuration: one step lower, so that the attributed
    firing, when the configuration arrives, leads the same finding whatever the order."""
    days = settings.attribution_window.total_seconds() / 86400
    reasons = (
        *assessment.reasons,
        f"lowered one step: issued by an AWS service for {ref.label}, whose configuration was "
        f"not seen within {days:g} days before it (who set it up is not known)",
    )
    context = assessment.context | {
        "issued_for": _issued_for(ref.kind, ref.id, ref.via),
        "actors": {"issued_by": Actor.of(event).as_context()},
    }
    explicit, unknown = reached_instances(call)
    return Verdict.of_event(
        event,
        summary=(
            f"an AWS service ({event.principal.key}) ran {call.document_name} for {ref.label} "
            f"on {_reach(list(explicit), list(unknown))}; who configured it was not seen"
        ),
        severity=assessment.severity.lowered(),
        severity_reasons=reasons,
        resources=send_command_resources(event, call, call.instance_ids)
        + principal_resources(event.principal),
        context=context,
    )


def attributed(pair: Pair, key: StateKey, *, capped: bool) -> Verdict:
    """The run with who configured it, built from the two halves alone, so it is the same
    finding whichever half arrived second."""
    config, run = pair.first, pair.second
    configurer = actor_from(config.data, config.event_id, config.epoch, key)
    issuer = actor_from(run.data, run.event_id, run.epoch, key)
    kind, _, config_id = key.name.partition("/")
    label = f"{KINDS.get(kind, kind)} {config_id}"
    data = run.data
    document = _text(data.get("document"))
    ids, unknown = (
        strings(data.get("instance_ids") or (), MAX_IDS),
        strings(data.get("unknown_targets") or (), MAX_TARGETS),
    )
    severity = _severity(data.get("severity"))
    reasons = (
        *strings(data.get("reasons") or (), MAX_REASONS),
        f"not lowered for the AWS service: it ran {label}, configured by "
        f"{configurer.principal_key}",
    )
    context: dict[str, Any] = {
        "document_name": document,
        "document_version": data.get("document_version"),
        "command_id": data.get("command_id"),
        "instance_ids": ids,
        "instance_count": len(ids),
        "unknown_size_targets": unknown,
        "output_s3_bucket": data.get("output_s3_bucket"),
        "source_ip": issuer.source_ip,
        "user_agent": issuer.user_agent,
        "issued_for": _issued_for(kind, config_id, _text(data.get("via"))),
        "configured_by": configurer.principal_key,
        "configuration_event_id": config.event_id,
        "configuration_event_name": config.data.get("event_name"),
        "configured_document": config.data.get("document"),
        "minutes_from_configuration_to_run": (run.epoch - config.epoch) // 60,
        "actors": {"configured_by": configurer.as_context(), "issued_by": issuer.as_context()},
        "contributing_events": [
            contributing_event(m.event_id, m.epoch, key.region or "", key.account)
            for m in (config, run)
        ],
    }
    if capped:
        context["state_capped"] = (
            "this configuration's state is at its bound: its oldest runs are dropped, so runs "
            "long before a late configuration may not be attributed"
        )
    return Verdict.of_pair(
        pair,
        summary=(
            f"{label}, configured by {configurer.principal_key}, made an AWS service "
            f"({issuer.principal_key}) run {document or 'a document'} on {_reach(ids, unknown)}"
        ),
        severity=severity,
        severity_reasons=reasons,
        resources=_resources(key, document, ids, issuer, configurer),
        context=context,
        subject=issuer,
        api_call="SendCommand",
    )


def _resources(
    key: StateKey, document: str | None, ids: list[str], issuer: Actor, configurer: Actor
) -> tuple[Resource, ...]:
    partition = partition_of(issuer.arn or issuer.role_arn or configurer.arn)
    region = key.region or ""
    found = [instance_resource(i, region, key.account, partition) for i in ids]
    if document:
        found.append(document_resource(document, region, key.account, partition))
    found.extend(actor_resources(issuer))
    found.extend(actor_resources(configurer))
    return tuple(dict.fromkeys(found))


def _issued_for(kind: str, config_id: str, via: str | None) -> dict[str, str | None]:
    return {"kind": kind, "id": config_id, "named_by": via}


def _reach(ids: list[str], unknown: list[str]) -> str:
    if unknown:
        return f"an unknown number of instances ({', '.join(unknown)[:200]})"
    return f"{len(ids)} target(s)"


def _severity(value: object) -> Severity:
    try:
        return Severity(str(value))
    except ValueError:
        return Severity.HIGH  # a member written by hand: the rule's own level


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
