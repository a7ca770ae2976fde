"""AWS.SSM.CreatedDocumentExecuted: a document from a rare creator, then run with SendCommand.

Ours, beyond the seeds: seed 000's attack chain is "create a Command document as a principal
who never does, then run it across instances". Each seed rule sees one half; this detection
links them through the correlate-through-resource block (`ssm_detect.state.correlate`), keyed by
the document: account + region + name (documents are regional: `X` in us-west-2 is not the `X`
created in us-east-1; an ARN `documentName` names its own region and account). The first half is
a creation the rare-creator detection flagged; the second, any successful SendCommand of a
customer document (AWS-owned documents such as AWS-RunShellScript cannot be created by
customers, so they are never recorded). Both halves are recorded, so the chain is found whichever
arrives first, and every run within the window gets its finding whatever the order (several runs
that arrive before the creation each get theirs when it arrives).

The finding is the execution's: its id, principal, account and region are the executor's and the
run's whichever half arrived second, so both arrival orders give the same finding; both actors
are in `context["actors"]` (creator, executor) and each event in `contributing_events`.

Severity HIGH; CRITICAL when the execution was also a fan-out (the distributed-command
detection fired on it), or when the creation's content already showed malicious commands.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from detections.base import (
    CLOUD_ADMINISTRATION_COMMAND,
    DetectionMetadata,
    Prior,
    Verdict,
)
from detections.context import reached_instances
from detections.distributed_command import METADATA as FANOUT
from detections.evidence import Actor, contributing_event
from detections.rare_document_creator import METADATA as RARE_CREATOR
from detections.resources import (
    actor_resources,
    document_resource,
    instance_resource,
    partition_of,
    regional_name,
)
from detections.stateful import Observed, StatefulDetection
from ssm_detect.findings import Resource, Severity
from ssm_detect.models.event_time import to_epoch
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import CreateDocumentCall, SendCommandCall, SsmEvent
from ssm_detect.state.block import StateKey
from ssm_detect.state.correlate import CorrelateThroughResource, Correlation, Mention, Pair, Side

_AWS_OWNED_PREFIXES = ("AWS-", "AWSEC2-", "AWSSupport-", "AmazonCloudWatch-", "AWSFleetManager-")
# The attribute names deployed items use for the two halves.
_SETS = {Side.FIRST: "rare_creations", Side.SECOND: "executions"}
_MAX_IDS = 20

METADATA = DetectionMetadata(
    id="AWS.SSM.CreatedDocumentExecuted",
    title="SSM document created by a rare principal was executed with SendCommand",
    description=(
        "A Command document created by a principal that does not normally create documents "
        "was run with SendCommand shortly after: the attack chain of seed 000, creation then "
        "execution, rather than either half alone."
    ),
    severity=Severity.HIGH,
    attack=(CLOUD_ADMINISTRATION_COMMAND,),
    seed="ours: the attack chain of seed 000 (Elastic advisory, steps 2 to 8)",
    references=(
        "https://attack.mitre.org/techniques/T1651/",
        "https://stratus-red-team.cloud/attack-techniques/AWS/aws.execution.ssm-send-command/",
    ),
    false_positives=(
        "A new automation role that creates a document and runs it as part of a deployment.",
    ),
    runbook=(
        "Treat as an active intrusion until shown otherwise: fetch the document "
        "(ssm:GetDocument), list the command's invocations and output "
        "(ssm:ListCommandInvocations), isolate the instances it ran on, and revoke the sessions "
        "of both the creator and the executor."
    ),
)


class CreatedDocumentExecutedDetection(StatefulDetection[Mention, Correlation]):
    metadata: ClassVar[DetectionMetadata] = METADATA

    def applies_to(self, event: SsmEvent, settings: Settings) -> bool:
        del settings
        call = event.call
        if not event.record.succeeded or not isinstance(call, SendCommandCall | CreateDocumentCall):
            return False
        if document_key(call.document_name) is None:
            return False
        return not isinstance(call, CreateDocumentCall) or call.is_command_document

    def block(self, settings: Settings) -> CorrelateThroughResource:
        return CorrelateThroughResource(settings.chain_window, names=_SETS)

    def observe(
        self, event: SsmEvent, settings: Settings, prior: Prior
    ) -> Observed[Mention] | None:
        del settings
        call = event.call
        key = _document_state_key(event)
        if key is None or not isinstance(call, SendCommandCall | CreateDocumentCall):
            return None
        data: dict[str, Any] = Actor.of(event).as_data()
        if isinstance(call, CreateDocumentCall):
            creation = prior.get(RARE_CREATOR.id)
            if creation is None:
                return None  # only flagged creations start a chain
            side = Side.FIRST
            data["severity"] = str(creation.severity)
        else:
            side = Side.SECOND
            data["fanout"] = FANOUT.id in prior
            data["instance_ids"] = list(reached_instances(call)[0][:_MAX_IDS])
        epoch = to_epoch(event.record.event_time)
        return Observed(key, Mention(epoch, event.event_id, side, data))

    def judge(
        self, event: SsmEvent, settings: Settings, reading: Correlation, prior: Prior
    ) -> tuple[Verdict, ...]:
        del prior
        key = _document_state_key(event)
        if key is None:
            return ()
        return tuple(_verdict(pair, key, settings, capped=reading.capped) for pair in reading.pairs)


def _document_state_key(event: SsmEvent) -> StateKey | None:
    """The document's key: account + region + name (an ARN names its own); None for none or
    an AWS-owned document."""
    call = event.call
    if not isinstance(call, SendCommandCall | CreateDocumentCall) or not call.document_name:
        return None
    account, region, name = regional_name(
        call.document_name, event.record.aws_region, event.account_id
    )
    if document_key(name) is None:
        return None
    return StateKey("document", account, name, region=region)


def document_key(name: str | None) -> str | None:
    """A customer document's name (ARNs reduced to the name); None for AWS-owned ones."""
    if not name:
        return None
    short = name.rsplit("/", 1)[-1] if name.startswith("arn:") else name
    return None if short.startswith(_AWS_OWNED_PREFIXES) else short


def _verdict(pair: Pair, key: StateKey, settings: Settings, *, capped: bool) -> Verdict:
    name = key.name
    creator, executor = (
        Actor.from_data(dict(pair.first.data)),
        Actor.from_data(dict(pair.second.data)),
    )
    severity, reasons = _severity(pair)
    minutes = (pair.second.epoch - pair.first.epoch) // 60
    instance_ids = [str(i) for i in pair.second.data.get("instance_ids") or ()]
    context: dict[str, Any] = {
        "document_name": name,
        "creation_event_id": pair.first.event_id,
        "creator": creator.principal_key,
        "execution_event_id": pair.second.event_id,
        "executor": executor.principal_key,
        "instance_ids": instance_ids,
        "execution_was_fanout": pair.second.data.get("fanout") is True,
        "minutes_from_creation_to_execution": minutes,
        "chain_window_hours": settings.chain_window.total_seconds() / 3600,
        "actors": {"creator": creator.as_context(), "executor": executor.as_context()},
        "contributing_events": [
            contributing_event(m.event_id, m.epoch, a.region, a.account_id)
            for m, a in ((pair.first, creator), (pair.second, executor))
        ],
    }
    if capped:
        context["state_capped"] = (
            "this document's chain state is at its bound: its oldest halves are dropped, so "
            "runs long before a late creation may not be linked"
        )
    return Verdict(
        summary=(
            f"document {name} created by {creator.principal_key} was run by "
            f"{executor.principal_key} {minutes} minutes later"
        ),
        decisive_event_id=pair.second.event_id,
        event_ids=(pair.first.event_id, pair.second.event_id),
        first_seen=_datetime(pair.first.epoch),
        last_seen=_datetime(pair.second.epoch),
        severity=severity,
        severity_reasons=reasons,
        resources=_resources(key, creator, executor, instance_ids),
        context=context,
        subject=executor,
    )


def _resources(
    key: StateKey, creator: Actor, executor: Actor, instance_ids: list[str]
) -> tuple[Resource, ...]:
    """The run's instances (the executor's region and account) and the document (its own),
    then the executor's and the creator's role or user and access key."""
    partition = partition_of(executor.arn or executor.role_arn)
    found = [
        instance_resource(i, executor.region, executor.account_id, partition) for i in instance_ids
    ]
    found.append(document_resource(key.name, key.region or "", key.account, partition))
    found.extend(actor_resources(executor))
    found.extend(actor_resources(creator))
    return tuple(dict.fromkeys(found))


def _severity(pair: Pair) -> tuple[Severity, tuple[str, ...]]:
    if pair.second.data.get("fanout") is True:
        return Severity.CRITICAL, ("raised to CRITICAL: the execution was also a fan-out",)
    creation = pair.first.data.get("severity")
    if creation in (Severity.HIGH, Severity.CRITICAL):
        return Severity.CRITICAL, (
            f"raised to CRITICAL: the creation was already {creation} (malicious content)",
        )
    return METADATA.severity, ()


def _datetime(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)
