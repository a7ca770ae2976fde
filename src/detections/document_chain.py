"""The chain model for documents (issue 12 points 1 and 6): a flagged change, then a run.

One model for created and modified documents. The first half is a **change** of a customer
document that an earlier detection flagged on the same event (`prior`):
- a creation (version 1) flagged by a rare-creator detection (Command documents: the seed's
  AWS.SSM.RareCommandDocumentCreator; Automation and Session documents: the one beside it) or
  by the content inspector (AWS.SSM.MaliciousDocumentContent);
- a new version (`UpdateDocument`) flagged by the content inspector or made by a principal that
  does not usually change this document (AWS.SSM.DocumentVersionByNewPrincipal).
The second half is a **run** of that document by any path: `SendCommand`, a State Manager
association (`CreateAssociation`, `UpdateAssociation`, `CreateAssociationBatch`), an Automation
execution or change request, a `StartSession` (a Session document's shell profile runs at every
session start), or `UpdateDocumentDefaultVersion` (made default: every later `$DEFAULT` run,
scheduled associations included, runs it).

Which version a run runs (`version_link`): `$LATEST` runs the newest version, so it runs the
flagged one (or a later one built on it); an explicit version runs the flagged one or a later
one when it is not older; `$DEFAULT` (what an absent version means) runs the flagged one only
once it is the default: always for a creation, for a new version when the change showed it as
the default, otherwise not known from the pair (linked, one step lower, and said so: an
`UpdateDocumentDefaultVersion` to it raises its own chain finding). A run of an older version,
or a default made of an older version (a rollback), is not linked.

Pure: what the detection records in the correlate block, and how a recorded pair is judged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from detections.base import Prior
from detections.context import reached_instances
from detections.execution_paths import Reach, is_aws_owned, reach_of, short_name
from ssm_detect.execution_calls import (
    AssociationCall,
    AutomationCall,
    RunbookStart,
    UpdateDefaultVersionCall,
    UpdateDocumentCall,
)
from ssm_detect.findings import Severity
from ssm_detect.ssm_event import CreateDocumentCall, SendCommandCall, SsmEvent, StartSessionCall

CREATED = "created"
NEW_VERSION = "new version"
LATEST = "$LATEST"
DEFAULT = "$DEFAULT"
MADE_DEFAULT = "UpdateDocumentDefaultVersion"
MAX_IDS = 20
# Detections whose verdict on a creation or a new version makes it a chain's first half. Ids,
# not imports: the rare creators and the version detection import nothing from here.
CREATION_FLAGS = (
    "AWS.SSM.RareCommandDocumentCreator",
    "AWS.SSM.RareAutomationOrSessionDocumentCreator",
    "AWS.SSM.MaliciousDocumentContent",
)
VERSION_FLAGS = ("AWS.SSM.DocumentVersionByNewPrincipal", "AWS.SSM.MaliciousDocumentContent")
_ID_PARAMETERS = frozenset({"instanceid", "instanceids"})


@dataclass(frozen=True)
class DocumentChange:
    """A flagged creation or new version: the first half."""

    document: str
    kind: str
    """`CREATED` or `NEW_VERSION`."""
    version: str | None
    default_version: str | None
    flagged_by: tuple[str, ...]
    severity: Severity
    """The strongest flag's severity (HIGH or more: the content was already malicious)."""

    def as_data(self) -> dict[str, Any]:
        return {
            "change": self.kind,
            "version": self.version,
            "default_version": self.default_version,
            "flagged_by": list(self.flagged_by),
            "severity": str(self.severity),
        }


@dataclass(frozen=True)
class DocumentRun:
    """A run of a document by one path: the second half."""

    document: str
    path: str
    """The event name: SendCommand, CreateAssociation, StartAutomationExecution, ..."""
    version: str | None
    """The version asked for (`$LATEST`, `$DEFAULT`, a number); None: the default."""
    instance_ids: tuple[str, ...] = ()
    unknown_reach: tuple[str, ...] = ()
    """Tag, resource-group and `*` targets: a fan-out of unknown size."""

    def as_data(self, *, fanout: bool) -> dict[str, Any]:
        return {
            "path": self.path,
            "asked_version": self.version,
            "fanout": fanout or bool(self.unknown_reach),
            "instance_ids": list(self.instance_ids[:MAX_IDS]),
            "unknown_reach": list(self.unknown_reach[:MAX_IDS]),
        }


def customer_document(name: str | None) -> str | None:
    """The document as named when a customer owns it; None for none or an AWS-owned one (AWS
    documents cannot be created or changed by customers, so they are never recorded)."""
    return name if name and not is_aws_owned(name) else None


def change_of(event: SsmEvent, prior: Prior) -> DocumentChange | None:
    """The event as a first half: a creation or new version some detection flagged."""
    call = event.call
    flags: tuple[str, ...]
    version: str | None
    default: str | None
    if isinstance(call, CreateDocumentCall):
        kind, flags, version, default = CREATED, CREATION_FLAGS, "1", "1"
    elif isinstance(call, UpdateDocumentCall):
        described = call.response.document_description
        kind, flags, version = NEW_VERSION, VERSION_FLAGS, call.new_version
        default = described.default_version if described else None
    else:
        return None
    document = customer_document(call.document_name)
    flagged = tuple(f for f in flags if f in prior)
    if document is None or not flagged:
        return None
    severity = max((prior[f].severity for f in flagged), key=lambda s: s.rank)
    return DocumentChange(document, kind, version, default, flagged, severity)


def is_change(event: SsmEvent) -> bool:
    """Whether the event may be a first half (before any verdict is known)."""
    call = event.call
    return isinstance(call, CreateDocumentCall | UpdateDocumentCall) and (
        customer_document(call.document_name) is not None
    )


def run_of(event: SsmEvent) -> DocumentRun | None:
    """The event as a second half: a run of a customer document, by whichever path."""
    call = event.call
    path = event.record.event_name
    if isinstance(call, SendCommandCall):
        explicit, unknown = reached_instances(call)
        command = call.response.command
        version = call.request.document_version or (command.document_version if command else None)
        return _run(call.document_name, path, version, explicit, unknown)
    if isinstance(call, AssociationCall):
        return _association_run(call, path)
    if isinstance(call, AutomationCall):
        return _automation_run(call, path)
    if isinstance(call, UpdateDefaultVersionCall):
        return _run(call.document_name, path, call.version, (), ())
    if isinstance(call, StartSessionCall):
        target = (call.target,) if call.target else ()
        return _run(call.document_name, path, None, target, ())
    return None


def _association_run(call: AssociationCall, path: str) -> DocumentRun | None:
    """The first association of a customer document (a batch rarely mixes documents; one
    state round trip per event, so one document per event)."""
    association = next((a for a in call.associations if customer_document(a.name)), None)
    if association is None:
        return None
    named = (association.instance_id,) if association.instance_id else ()
    reach = reach_of(association.targets, named)
    return _run(association.name, path, association.document_version, *_split(reach))


def _automation_run(call: AutomationCall, path: str) -> DocumentRun | None:
    runbook = next((r for r in call.runbooks if customer_document(r.document_name)), None)
    if runbook is None:
        return None
    reach = reach_of(runbook.targets, _parameter_instances(runbook))
    return _run(runbook.document_name, path, runbook.document_version, *_split(reach))


def _run(
    document: str | None,
    path: str,
    version: str | None,
    instance_ids: Iterable[str],
    unknown: Iterable[str],
) -> DocumentRun | None:
    name = customer_document(document)
    if name is None:
        return None
    return DocumentRun(name, path, version or None, tuple(instance_ids), tuple(unknown))


def _split(reach: Reach) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return reach.instance_ids, reach.unknown


def _parameter_instances(runbook: RunbookStart) -> tuple[str, ...]:
    """Instance ids a runbook is given as parameters (`InstanceId(s)` or the parameter its
    `TargetParameterName` names): where an Automation runs when it has no `targets`."""
    parameters = runbook.parameters
    if not isinstance(parameters, dict):
        return ()
    names = _ID_PARAMETERS | {(runbook.target_parameter_name or "").lower()}
    found: list[str] = []
    for name, value in list(parameters.items())[:64]:
        if str(name).lower() in names:
            values = value if isinstance(value, list) else [value]
            found += [v for v in values[:MAX_IDS] if isinstance(v, str)]
    return tuple(found)


@dataclass(frozen=True)
class VersionLink:
    linked: bool
    certain: bool
    note: str


def version_link(first: Mapping[str, Any], second: Mapping[str, Any]) -> VersionLink:
    """Whether the run (second) runs the flagged change's version (first), from what each half
    recorded (module docstring). Halves recorded before versions were (older members) read as a
    creation and a default run: linked, as before."""
    flagged = _text(first.get("version"))
    asked = _text(second.get("asked_version"))
    made_default = second.get("path") == MADE_DEFAULT
    if made_default or (asked and asked not in (LATEST, DEFAULT)):
        verb = "made version" if made_default else "ran version"
        if _older(asked, flagged):
            return VersionLink(
                linked=False, certain=True, note=f"{verb} {asked}, older than flagged {flagged}"
            )
        return VersionLink(linked=True, certain=True, note=f"{verb} {asked or '(unknown)'}")
    if asked == LATEST:
        return VersionLink(
            linked=True, certain=True, note="ran $LATEST (the flagged version or later)"
        )
    if first.get("change", CREATED) == CREATED or (
        flagged is not None and _text(first.get("default_version")) == flagged
    ):
        return VersionLink(
            linked=True, certain=True, note="ran the default version, the flagged one"
        )
    return VersionLink(
        linked=True,
        certain=False,
        note=(
            f"the run asked for the default version; flagged version {flagged or '(unknown)'} "
            "was not the default when it was added, and whether it was made default since is "
            "not known here"
        ),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _older(asked: str | None, flagged: str | None) -> bool:
    """Numeric versions only: a name or an unknown version is never called older."""
    if asked is None or flagged is None or not (asked.isdigit() and flagged.isdigit()):
        return False
    return int(asked) < int(flagged)


def state_name(document: str) -> str:
    """The name part of the chain's key (ARNs reduced to the name)."""
    return short_name(document) or document
