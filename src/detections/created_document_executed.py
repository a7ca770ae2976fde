"""AWS.SSM.CreatedDocumentExecuted: a flagged document, created or changed, then run.

Ours, beyond the seeds: seed 000's attack chain is "create a Command document as a principal
who never does, then run it across instances"; issue 12 adds its twin, "add a malicious version
to a trusted document, make it the default or run it". Each seed rule sees one half; this
detection links them through the correlate-through-resource block (`ssm_detect.state.correlate`),
keyed by the document: account + region + name (documents are regional: `X` in us-west-2 is not
the `X` created in us-east-1; an ARN names its own region and account).

**One chain model, one detection id, for created and modified documents.** What a first half
and a second half are, and which version a run runs, is `detections.document_chain`: the first
half is a creation or a new version (`UpdateDocument`) that an earlier detection flagged on the
same event (a rare creator of any document type, the content inspector, a principal new to the
document); the second, a run by any path (SendCommand, associations, Automation, StartSession,
UpdateDocumentDefaultVersion). A modified-document chain is NOT a sibling id: both kinds share
one state item per document, so a run pairs with the latest flagged change before it (the
version it most likely ran) and raises ONE finding, not one per kind; a sibling on the same key
would need a second state round trip per run and would alert twice for "created, then changed,
then run". The id keeps its name (its findings, suppression and allowlists in deployed
accounts stay valid); `context["change"]` says `created` or `new version`, and the title says
"created or changed". AWS-owned documents are never recorded.

Both halves are recorded, so the chain is found whichever arrives first, and every run within
the window gets its finding whatever the order (several runs that arrive before the change
each get theirs when it arrives). The finding is the run's: its id, principal, account and
region are the runner's whichever half arrived second, so both arrival orders give the same
finding; both actors are in `context["actors"]` (`creator` or `changer`, and `executor`) and
each event in `contributing_events`.

Severity HIGH; CRITICAL when the run was also a fan-out (the distributed-command detection fired
on it, or it targets `*`, a tag or a resource group), or when the change's content was already
malicious (its flag was HIGH or more). One step lower when the run asked for the default version
and the flagged version was not known to be the default (`document_chain.version_link`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from detections.base import (
    CLOUD_ADMINISTRATION_COMMAND,
    DetectionMetadata,
    Prior,
    Verdict,
)
from detections.distributed_command import METADATA as FANOUT
from detections.document_chain import (
    CREATED,
    MADE_DEFAULT,
    VersionLink,
    change_of,
    customer_document,
    is_change,
    run_of,
    state_name,
    version_link,
)
from detections.evidence import Actor, pair_events
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
from ssm_detect.ssm_event import SsmEvent
from ssm_detect.state.block import StateKey
from ssm_detect.state.correlate import CorrelateThroughResource, Correlation, Mention, Pair, Side

# The attribute names deployed items use for the two halves (`rare_creations` now holds every
# flagged change, versions included: the name is kept so deployed items keep their history).
_SETS = {Side.FIRST: "rare_creations", Side.SECOND: "executions"}

METADATA = DetectionMetadata(
    id="AWS.SSM.CreatedDocumentExecuted",
    title="SSM document flagged at its creation or change was then run",
    description=(
        "A document whose creation or new version was flagged (a rare creator, a principal new "
        "to the document, or malicious content) was run shortly after, by SendCommand, an "
        "association, an Automation execution or a session, or made the default version: the "
        "attack chain of seed 000, change then execution, rather than either half alone."
    ),
    severity=Severity.HIGH,
    attack=(CLOUD_ADMINISTRATION_COMMAND,),
    seed="ours: the attack chain of seed 000 (Elastic advisory, steps 2 to 8), issue 12 point 1",
    references=(
        "https://attack.mitre.org/techniques/T1651/",
        "https://stratus-red-team.cloud/attack-techniques/AWS/aws.execution.ssm-send-command/",
        "https://docs.aws.amazon.com/systems-manager/latest/userguide/documents-version.html",
    ),
    false_positives=(
        "A new automation role that creates a document and runs it as part of a deployment.",
        "An engineer new to a document who adds a version and runs it while testing.",
    ),
    runbook=(
        "Treat as an active intrusion until shown otherwise: fetch the document version that "
        "ran (ssm:GetDocument with the version), list the command's or execution's invocations "
        "and output, isolate the instances it ran on, restore the previous default version, and "
        "revoke the sessions of both the author of the change and the runner."
    ),
)


class CreatedDocumentExecutedDetection(StatefulDetection[Mention, Correlation]):
    metadata: ClassVar[DetectionMetadata] = METADATA

    def applies_to(self, event: SsmEvent, settings: Settings) -> bool:
        del settings
        if not event.record.succeeded:
            return False
        return is_change(event) or run_of(event) is not None

    def block(self, settings: Settings) -> CorrelateThroughResource:
        return CorrelateThroughResource(settings.chain_window, names=_SETS)

    def observe(
        self, event: SsmEvent, settings: Settings, prior: Prior
    ) -> Observed[Mention] | None:
        del settings
        data: dict[str, Any] = Actor.of(event).as_data()
        if is_change(event):
            change = change_of(event, prior)
            if change is None:
                return None  # only flagged changes start a chain
            side, document = Side.FIRST, change.document
            data |= change.as_data()
        else:
            run = run_of(event)
            if run is None:
                return None
            side, document = Side.SECOND, run.document
            data |= run.as_data(fanout=FANOUT.id in prior)
        key = _state_key(event, document)
        epoch = to_epoch(event.record.event_time)
        return Observed(key, Mention(epoch, event.event_id, side, data))

    def judge(
        self, event: SsmEvent, settings: Settings, reading: Correlation, prior: Prior
    ) -> tuple[Verdict, ...]:
        del prior
        key = _state_key(event, _document_of(event) or "")
        found = []
        for pair in reading.pairs:
            link = version_link(pair.first.data, pair.second.data)
            if link.linked:
                found.append(_verdict(key, pair, settings, link, capped=reading.capped))
        return tuple(found)


def _state_key(event: SsmEvent, document: str) -> StateKey:
    """The document's key: account + region + name (an ARN names its own)."""
    account, region, name = regional_name(document, event.record.aws_region, event.account_id)
    return StateKey("document", account, state_name(name), region=region)


def document_key(name: str | None) -> str | None:
    """A customer document's name (ARNs reduced to the name); None for AWS-owned ones."""
    document = customer_document(name)
    return state_name(document) if document else None


def _verdict(
    key: StateKey, pair: Pair, settings: Settings, link: VersionLink, *, capped: bool
) -> Verdict:
    name = key.name
    created = pair.first.data.get("change", CREATED) == CREATED
    author_role = "creator" if created else "changer"
    author = Actor.from_data(dict(pair.first.data))
    executor = Actor.from_data(dict(pair.second.data))
    severity, reasons = _severity(pair, link)
    minutes = (pair.second.epoch - pair.first.epoch) // 60
    instance_ids = [str(i) for i in pair.second.data.get("instance_ids") or ()]
    path = str(pair.second.data.get("path") or "SendCommand")
    context: dict[str, Any] = {
        "document_name": name,
        "change": "created" if created else "new version",
        "change_version": pair.first.data.get("version"),
        "flagged_by": list(pair.first.data.get("flagged_by") or ()),
        "creation_event_id": pair.first.event_id,
        "creator": author.principal_key,
        "execution_event_id": pair.second.event_id,
        "executor": executor.principal_key,
        "execution_path": path,
        "asked_version": pair.second.data.get("asked_version"),
        "version_link": link.note,
        "instance_ids": instance_ids,
        "unknown_reach": list(pair.second.data.get("unknown_reach") or ()),
        "execution_was_fanout": pair.second.data.get("fanout") is True,
        "minutes_from_creation_to_execution": minutes,
        "chain_window_hours": settings.chain_window.total_seconds() / 3600,
        "actors": {author_role: author.as_context(), "executor": executor.as_context()},
        "contributing_events": pair_events(pair, author, executor),
    }
    if capped:
        context["state_capped"] = (
            "this document's chain state is at its bound: its oldest halves are dropped, so "
            "runs long before a late change may not be linked"
        )
    verb = "made default" if path == MADE_DEFAULT else f"run ({path})"
    what = "created" if created else f"given version {pair.first.data.get('version') or '?'}"
    return Verdict.of_pair(
        pair,
        summary=(
            f"document {name} {what} by {author.principal_key} was {verb} by "
            f"{executor.principal_key} {minutes} minutes later"
        ),
        severity=severity,
        severity_reasons=reasons,
        resources=_resources(key, author, executor, instance_ids),
        context=context,
        subject=executor,
    )


def _document_of(event: SsmEvent) -> str | None:
    run = run_of(event)
    if run is not None:
        return run.document
    call = event.call
    return call.document_name if call is not None else None


def _resources(
    key: StateKey, author: Actor, executor: Actor, instance_ids: list[str]
) -> tuple[Resource, ...]:
    """The run's instances (the executor's region and account) and the document (its own),
    then the executor's and the author's role or user and access key."""
    partition = partition_of(executor.arn or executor.role_arn)
    found = [
        instance_resource(i, executor.region, executor.account_id, partition) for i in instance_ids
    ]
    found.append(document_resource(key.name, key.region or "", key.account, partition))
    found.extend(actor_resources(executor))
    found.extend(actor_resources(author))
    return tuple(dict.fromkeys(found))


def _severity(pair: Pair, link: VersionLink) -> tuple[Severity, tuple[str, ...]]:
    reasons: list[str] = []
    severity = METADATA.severity
    if pair.second.data.get("fanout") is True:
        severity = Severity.CRITICAL
        reasons.append("raised to CRITICAL: the execution was also a fan-out")
    else:
        change = pair.first.data.get("severity")
        if change in (Severity.HIGH, Severity.CRITICAL):
            severity = Severity.CRITICAL
            what = "creation" if pair.first.data.get("change", CREATED) == CREATED else "version"
            reasons.append(
                f"raised to CRITICAL: the {what} was already {change} (malicious content)"
            )
    if not link.certain:
        severity = severity.lowered()
        reasons.append(f"lowered one step: {link.note}")
    return severity, tuple(reasons)
