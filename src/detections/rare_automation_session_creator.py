"""AWS.SSM.RareAutomationOrSessionDocumentCreator: the rare-creator rule for the document types
that run code without being Command documents.

Beside the seed, not instead of it (issue 12 point 6): AWS.SSM.RareCommandDocumentCreator stays
exactly Elastic's rule (Command documents only). Automation runbooks run code through
`aws:runCommand`, `aws:executeScript`, `aws:runShellScript`/`aws:runPowerShellScript` steps, and
a Session document runs its shell profile (`curl ... | bash`) at every session start, or the
commands of an `InteractiveCommands` session. Same new-terms semantics as the seed: the
first-seen block keyed by account + principal, one history per document type
(`creator-automation`, `creator-session`), so an author of runbooks is not new to runbooks and
a principal's first Session document is judged on its own.

A first creation fires when the document can run code: its content is hidden (CloudTrail's
default; fail toward detection: it may), does not parse, has a code-running step or a shell
profile or command session, or trips the content inspector. A visible document that runs no
code (a port-forwarding Session document, a runbook that only snapshots volumes) does not fire;
it still counts as history. Severity MEDIUM, as the seed, raised by the inspector. A flagged
creation is a first half of AWS.SSM.CreatedDocumentExecuted's chain: a customer runbook is
judged by its creation content when it is later started.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from detections.base import (
    CLOUD_ADMINISTRATION_COMMAND,
    DetectionMetadata,
    Prior,
    Verdict,
)
from detections.content_inspection import parse_document
from detections.rare_document_creator import (
    content_context,
    document_verdict,
    inspect_document,
    visible_content,
)
from detections.stateful import Observed, StatefulDetection, caller_key, counts_caller, sighting
from ssm_detect.findings import Severity
from ssm_detect.settings import Settings
from ssm_detect.ssm_event import CreateDocumentCall, SsmEvent
from ssm_detect.state.first_seen import FirstSeen, FirstSeenReading, Sighting

TYPES = ("automation", "session")
"""Document types (lower case) judged here; Command is the seed's."""
CREATIONS = "created"
MAX_MEMBERS = 64
CODE_ACTIONS = frozenset(
    {
        "aws:runcommand",
        "aws:executescript",
        "aws:runshellscript",
        "aws:runpowershellscript",
        "aws:invokelambdafunction",
    }
)
"""Steps that run caller-supplied code (on instances, in the Automation service, in Lambda)."""
COMMAND_SESSIONS = frozenset({"interactivecommands", "noninteractivecommands"})
_MAX_NODES = 10_000

METADATA = DetectionMetadata(
    id="AWS.SSM.RareAutomationOrSessionDocumentCreator",
    title="SSM Automation or Session document that can run code created by a rare principal",
    description=(
        "A principal that has not created an SSM document of this type (Automation or Session) "
        "within the history window created one that can run code: a runbook step that runs "
        "commands or scripts, a Session document's shell profile or commands, or content "
        "CloudTrail hides."
    ),
    severity=Severity.MEDIUM,
    attack=(CLOUD_ADMINISTRATION_COMMAND,),
    seed=(
        "ours (issue 12 point 6): Elastic's new-terms rule 'AWS SSM Command Document Created by "
        "Rare User' (seed 000) applied to Automation and Session documents"
    ),
    references=(
        "https://docs.aws.amazon.com/systems-manager/latest/userguide/automation-action-executeScript.html",
        "https://docs.aws.amazon.com/systems-manager/latest/userguide/session-preferences-shell-config.html",
        "https://attack.mitre.org/techniques/T1651/",
    ),
    false_positives=(
        "A platform engineer's first runbook or Session document.",
        "Infrastructure-as-code deploying runbooks under a fresh role.",
    ),
    runbook=(
        "Read the document (ssm:GetDocument): its script steps, or its shell profile and "
        "commands. Look for StartAutomationExecution or StartSession calls that use it, and "
        "confirm the principal's owner expected it; restrict ssm:CreateDocument."
    ),
)


class RareAutomationOrSessionDocumentCreatorDetection(
    StatefulDetection[Sighting, FirstSeenReading]
):
    metadata: ClassVar[DetectionMetadata] = METADATA

    def applies_to(self, event: SsmEvent, settings: Settings) -> bool:
        call = event.call
        return (
            isinstance(call, CreateDocumentCall)
            and call.document_type.lower() in TYPES
            and event.record.succeeded
            and counts_caller(event, settings)
        )

    def block(self, settings: Settings) -> FirstSeen:
        return FirstSeen(settings.history_window, keep=MAX_MEMBERS, attribute=CREATIONS)

    def observe(
        self, event: SsmEvent, settings: Settings, prior: Prior
    ) -> Observed[Sighting] | None:
        del settings, prior
        call = event.call
        if not isinstance(call, CreateDocumentCall):
            return None
        kind = f"creator-{call.document_type.lower()}"
        return Observed(caller_key(event, kind), sighting(event))

    def judge(
        self, event: SsmEvent, settings: Settings, reading: FirstSeenReading, prior: Prior
    ) -> tuple[Verdict, ...]:
        del prior
        call = event.call
        if not isinstance(call, CreateDocumentCall) or not reading.first:
            return ()
        report = inspect_document(call)
        why = runs_code(call, hits=bool(report and report.hits))
        if why is None:
            return ()
        days = settings.history_window.days
        summary = (
            f"{event.principal.key} created {call.document_type} document "
            f"{call.document_name!s} ({why}) and had created none in the previous {days} days"
        )
        return (
            document_verdict(
                event,
                call.document_name,
                summary,
                (METADATA.severity, report),
                _context(call, why, days),
            ),
        )


def runs_code(call: CreateDocumentCall, *, hits: bool) -> str | None:
    """Why the document can run code; None when its visible content shows it cannot."""
    content = visible_content(call)
    if content is None:
        return "content hidden by CloudTrail: it may run code"
    if hits:
        return "the content inspector flagged it"
    document = parse_document(content)
    if document is None:
        return "content that does not parse: it may run code"
    if call.document_type.lower() == "session":
        return _session_code(document)
    actions = sorted({a for a in _actions(document) if a in CODE_ACTIONS})
    return f"steps {', '.join(actions)}" if actions else None


def _session_code(document: dict[str, object]) -> str | None:
    inputs = document.get("inputs")
    inputs = inputs if isinstance(inputs, dict) else {}
    profile = inputs.get("shellProfile")
    if isinstance(profile, dict) and any(
        isinstance(v, str) and v.strip() for v in profile.values()
    ):
        return "a shell profile that runs at every session start"
    session_type = str(document.get("sessionType") or "").lower()
    if session_type in COMMAND_SESSIONS:
        return f"a {document.get('sessionType')} session that runs commands"
    return None


def _actions(node: object) -> Iterator[str]:
    """Every `action` value in the document (steps may nest: aws:loop, aws:branch)."""
    stack = [node]
    seen = 0
    while stack and seen < _MAX_NODES:
        current = stack.pop()
        seen += 1
        if isinstance(current, dict):
            action = current.get("action")
            if isinstance(action, str):
                yield action.strip().lower()
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)


def _context(call: CreateDocumentCall, why: str, days: int) -> dict[str, Any]:
    request = call.request
    return {
        "document_name": call.document_name,
        "document_type": call.document_type,
        "document_format": request.document_format,
        "runs_code": why,
        "tags": request.tags,
        **content_context(call),
        "history_window_days": days,
    }
