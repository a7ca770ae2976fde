"""AWS.SSM.CreatedDocumentExecuted: a document from a rare creator, then run with SendCommand.

Ours, beyond the seeds: seed 000's attack chain is "create a Command document as a principal
who never does, then run it across instances". Each seed rule sees one half; this detection
links them. State per (account, document name) holds the creations the rare-creator detection
flagged and the executions of customer documents (AWS-owned documents such as
AWS-RunShellScript cannot be created by customers, so they are never recorded). Both halves
are recorded, so the chain is found whichever event arrives first.

Severity HIGH; CRITICAL when the execution was also a fan-out (the distributed-command
detection fired on it), or when the creation's content already showed malicious commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from detections import members
from detections.base import (
    CLOUD_ADMINISTRATION_COMMAND,
    NO_PRIOR,
    Detection,
    DetectionMetadata,
    Prior,
    Verdict,
)
from detections.distributed_command import METADATA as FANOUT
from detections.rare_document_creator import METADATA as RARE_CREATOR
from detections.resources import (
    document_resource,
    instance_resource,
    partition_of,
    principal_resources,
)
from ssm_detect.findings import Severity
from ssm_detect.models.event_time import to_epoch
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import CreateDocumentCall, SendCommandCall, SsmEvent
from ssm_detect.state import StatePrune, StateSnapshot, StateUpdate

CREATIONS = "rare_creations"  # "<epoch>|<event id>|<severity>|<creator key>"
EXECUTIONS = "executions"  # "<epoch>|<event id>|<fan-out 1/0>|<executor key>|<ids, or ?>"
LATENESS = timedelta(days=1)
_AWS_OWNED_PREFIXES = ("AWS-", "AWSEC2-", "AWSSupport-", "AmazonCloudWatch-", "AWSFleetManager-")
_MAX_IDS = 20
_PRUNE_AT_STALE = 32

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


@dataclass(frozen=True, order=True)
class _Creation:
    epoch: int
    event_id: str
    severity: str
    creator: str

    @classmethod
    def decode(cls, member: tuple[int, str]) -> _Creation:
        event_id, severity, creator = [*member[1].split("|", 2), "", ""][:3]
        return cls(member[0], event_id, severity, creator)


@dataclass(frozen=True, order=True)
class _Execution:
    epoch: int
    event_id: str
    fanout: bool
    executor: str
    instance_ids: tuple[str, ...]

    @classmethod
    def decode(cls, member: tuple[int, str]) -> _Execution:
        event_id, fanout, rest = [*member[1].split("|", 2), "", ""][:3]
        executor, _, ids = rest.rpartition("|")
        instance_ids = tuple(i for i in ids.split(",") if i and i != "?")
        return cls(member[0], event_id, fanout == "1", executor, instance_ids)


@dataclass(frozen=True)
class _Link:
    creation: _Creation
    execution: _Execution


class CreatedDocumentExecutedDetection(Detection):
    metadata: ClassVar[DetectionMetadata] = METADATA

    def applies_to(self, event: SsmEvent, settings: Settings) -> bool:
        del settings
        call = event.call
        if not event.record.succeeded or not isinstance(call, SendCommandCall | CreateDocumentCall):
            return False
        name = document_key(call.document_name)
        if name is None:
            return False
        return not isinstance(call, CreateDocumentCall) or call.is_command_document

    def state_update(
        self, event: SsmEvent, settings: Settings, prior: Prior = NO_PRIOR
    ) -> StateUpdate | None:
        epoch = to_epoch(event.record.event_time)
        if isinstance(event.call, CreateDocumentCall):
            creation = prior.get(RARE_CREATOR.id)
            if creation is None:
                return None  # only flagged creations start a chain
            value = f"{event.event_id}|{creation.severity}|{event.principal.key}"
            added = {CREATIONS: frozenset({members.encode(epoch, value)})}
        else:
            fanout = "1" if FANOUT.id in prior else "0"
            ids = ",".join(_instance_ids(event)[:_MAX_IDS]) or "?"
            value = f"{event.event_id}|{fanout}|{event.principal.key}|{ids}"
            added = {EXECUTIONS: frozenset({members.encode(epoch, value)})}
        return StateUpdate(
            key=_state_key(event), add=added, retention=settings.chain_window + LATENESS
        )

    def evaluate(
        self, event: SsmEvent, settings: Settings, state: StateSnapshot, prior: Prior = NO_PRIOR
    ) -> Verdict | None:
        del prior
        link = _link(event, settings, state)
        if link is None:
            return None
        severity, reasons = _severity(link)
        record = event.record
        partition = partition_of(event.principal.arn or event.principal.role_arn)
        name = document_key(event.call.document_name if event.call else None) or "?"
        creation, execution = link.creation, link.execution
        resources = [
            instance_resource(i, record.aws_region, event.account_id, partition)
            for i in execution.instance_ids
        ]
        resources.append(document_resource(name, record.aws_region, event.account_id, partition))
        minutes = (execution.epoch - creation.epoch) // 60
        return Verdict(
            summary=(
                f"document {name} created by {creation.creator} was run by {execution.executor} "
                f"{minutes} minutes later"
            ),
            decisive_event_id=execution.event_id,
            event_ids=(creation.event_id, execution.event_id),
            first_seen=_datetime(creation.epoch),
            last_seen=_datetime(execution.epoch),
            severity=severity,
            severity_reasons=reasons,
            resources=(*resources, *principal_resources(event.principal)),
            context={
                "document_name": name,
                "creation_event_id": creation.event_id,
                "creator": creation.creator,
                "execution_event_id": execution.event_id,
                "executor": execution.executor,
                "instance_ids": list(execution.instance_ids),
                "execution_was_fanout": execution.fanout,
                "minutes_from_creation_to_execution": minutes,
                "chain_window_hours": settings.chain_window.total_seconds() / 3600,
            },
        )

    def state_prune(
        self, event: SsmEvent, settings: Settings, state: StateSnapshot
    ) -> StatePrune | None:
        newest = max((members.decode(m)[0] for held in state.values() for m in held), default=0)
        horizon = newest - int((settings.chain_window + LATENESS).total_seconds())
        remove = {name: members.stale(held, horizon) for name, held in state.items()}
        if sum(len(v) for v in remove.values()) < _PRUNE_AT_STALE:
            return None
        return StatePrune(key=_state_key(event), remove={k: v for k, v in remove.items() if v})


def document_key(name: str | None) -> str | None:
    """A customer document's name (ARNs reduced to the name); None for AWS-owned ones."""
    if not name:
        return None
    short = name.rsplit("/", 1)[-1] if name.startswith("arn:") else name
    return None if short.startswith(_AWS_OWNED_PREFIXES) else short


def _link(event: SsmEvent, settings: Settings, state: StateSnapshot) -> _Link | None:
    """The creation/execution pair this event completes, if any."""
    window = int(settings.chain_window.total_seconds())
    now = to_epoch(event.record.event_time)
    creations = [_Creation.decode(m) for m in members.decode_all(state.get(CREATIONS, ()))]
    executions = [_Execution.decode(m) for m in members.decode_all(state.get(EXECUTIONS, ()))]
    if isinstance(event.call, SendCommandCall):
        mine = next((e for e in executions if e.event_id == event.event_id), None)
        earlier = [c for c in creations if now - window <= c.epoch <= now]
        return _Link(max(earlier), mine) if mine and earlier else None
    own = next((c for c in creations if c.event_id == event.event_id), None)
    later = [e for e in executions if now <= e.epoch <= now + window]
    return _Link(own, min(later)) if own and later else None


def _severity(link: _Link) -> tuple[Severity, tuple[str, ...]]:
    if link.execution.fanout:
        return Severity.CRITICAL, ("raised to CRITICAL: the execution was also a fan-out",)
    if link.creation.severity in (Severity.HIGH, Severity.CRITICAL):
        return Severity.CRITICAL, (
            f"raised to CRITICAL: the creation was already {link.creation.severity} "
            "(malicious content)",
        )
    return METADATA.severity, ()


def _instance_ids(event: SsmEvent) -> list[str]:
    call = event.call
    return [i for i in call.instance_ids if i != "*"] if isinstance(call, SendCommandCall) else []


def _state_key(event: SsmEvent) -> str:
    name = document_key(event.call.document_name if event.call else None)
    return f"document#{event.account_id}#{name}"


def _datetime(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)
